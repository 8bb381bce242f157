/*
 * noop_milter -- a milter that does nothing: the cost of libmilter's
 * protocol alone, the baseline the benchmark (bench/run.sh) compares
 * mailwarden with.
 *
 *	noop_milter -s SOCKET [-m MODE] [-a] [-n]
 *
 * SOCKET is libmilter's syntax (unix:/path, inet:port@host); MODE the
 * permissions of a unix socket in octal (default 0666, so Postfix's
 * smtpd can connect).  Runs in the foreground until SIGTERM/SIGINT.
 *
 * -a adds one header field at end-of-message, as every filter that
 * writes Authentication-Results does; -n leaves TCP_NODELAY off.  The
 * two together show what TCP_NODELAY is worth: the header and the
 * final reply are two small writes in a row, and without it the second
 * waits for the MTA's delayed ACK (40 ms on Linux).
 *
 * To be a fair baseline it takes part in exactly the protocol steps
 * mailwarden takes part in: every callback is registered (DATA and
 * UNKNOWN included), each returns SMFIS_CONTINUE, the negotiation asks
 * for no "no reply" shortcuts, and the inet listener gets TCP_NODELAY
 * as milter/mailwarden.c sets it (without it, and without a DATA
 * callback, each message waits on two 40 ms delayed-ACK stalls).
 *
 * Build: cc -O2 -o bench/noop_milter bench/noop_milter.c -lmilter -lpthread
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libmilter/mfapi.h>

static int add_header;

static sfsistat
cb_negotiate(SMFICTX *ctx, unsigned long f0, unsigned long f1,
    unsigned long f2, unsigned long f3, unsigned long *pf0,
    unsigned long *pf1, unsigned long *pf2, unsigned long *pf3)
{
	(void)ctx;
	(void)f0;
	(void)f2;
	(void)f3;
	/* What mailwarden asks for, minus the actions it does not use. */
	*pf0 = add_header ? (f0 & SMFIF_ADDHDRS) : 0;
	*pf1 = f1 & SMFIP_HDR_LEADSPC;
	*pf2 = 0;
	*pf3 = 0;
	return SMFIS_CONTINUE;
}

static sfsistat
cb_connect(SMFICTX *ctx, char *host, _SOCK_ADDR *sa)
{
	(void)ctx;
	(void)host;
	(void)sa;
	return SMFIS_CONTINUE;
}

static sfsistat
cb_str(SMFICTX *ctx, char *s)
{
	(void)ctx;
	(void)s;
	return SMFIS_CONTINUE;
}

static sfsistat
cb_unknown(SMFICTX *ctx, const char *cmd)
{
	(void)ctx;
	(void)cmd;
	return SMFIS_CONTINUE;
}

static sfsistat
cb_argv(SMFICTX *ctx, char **argv)
{
	(void)ctx;
	(void)argv;
	return SMFIS_CONTINUE;
}

static sfsistat
cb_header(SMFICTX *ctx, char *name, char *value)
{
	(void)ctx;
	(void)name;
	(void)value;
	return SMFIS_CONTINUE;
}

static sfsistat
cb_body(SMFICTX *ctx, unsigned char *buf, size_t len)
{
	(void)ctx;
	(void)buf;
	(void)len;
	return SMFIS_CONTINUE;
}

static sfsistat
cb_none(SMFICTX *ctx)
{
	(void)ctx;
	return SMFIS_CONTINUE;
}

static sfsistat
cb_eom(SMFICTX *ctx)
{
	if (add_header)
		smfi_addheader(ctx, "X-Noop", " seen");
	return SMFIS_CONTINUE;
}

static struct smfiDesc desc = {
	.xxfi_name = "noop",
	.xxfi_version = SMFI_VERSION,
	.xxfi_flags = 0,
	.xxfi_connect = cb_connect,
	.xxfi_helo = cb_str,
	.xxfi_envfrom = cb_argv,
	.xxfi_envrcpt = cb_argv,
	.xxfi_header = cb_header,
	.xxfi_eoh = cb_none,
	.xxfi_body = cb_body,
	.xxfi_eom = cb_eom,
	.xxfi_abort = cb_none,
	.xxfi_close = cb_none,
	.xxfi_unknown = cb_unknown,
	.xxfi_data = cb_none,
	.xxfi_negotiate = cb_negotiate,
};

/*
 * libmilter does not hand out its listening socket: find it among our
 * fds (a listening TCP socket) and set TCP_NODELAY, which Linux copies
 * to the accepted sockets.  The same as milter/mailwarden.c does.
 */
static void
set_nodelay_on_listener(void)
{
	int fd, one = 1;

	for (fd = 0; fd < 1024; fd++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		int acc = 0;
		socklen_t al = sizeof(acc);

		if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &al) != 0 ||
		    !acc)
			continue;
		if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0 ||
		    (ss.ss_family != AF_INET && ss.ss_family != AF_INET6))
			continue;
		if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
		    sizeof(one)) != 0)
			fprintf(stderr, "noop_milter: TCP_NODELAY: %s\n",
			    strerror(errno));
	}
}

static void
usage(void)
{
	fprintf(stderr, "usage: noop_milter -s SOCKET [-m MODE] [-a] [-n]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	const char *spec = NULL, *path = NULL;
	mode_t mode = 0666;
	int ch, nodelay = 1;

	while ((ch = getopt(argc, argv, "s:m:an")) != -1) {
		switch (ch) {
		case 's':
			spec = optarg;
			break;
		case 'm':
			mode = (mode_t)strtol(optarg, NULL, 8);
			break;
		case 'a':
			add_header = 1;
			desc.xxfi_flags |= SMFIF_ADDHDRS;
			break;
		case 'n':
			nodelay = 0;
			break;
		default:
			usage();
		}
	}
	if (spec == NULL)
		usage();
	if (strncmp(spec, "unix:", 5) == 0)
		path = spec + 5;
	else if (strncmp(spec, "local:", 6) == 0)
		path = spec + 6;
	if (path != NULL)
		unlink(path);
	if (smfi_setconn((char *)spec) != MI_SUCCESS ||
	    smfi_register(desc) != MI_SUCCESS) {
		fprintf(stderr, "noop_milter: cannot use %s\n", spec);
		return 1;
	}
	if (smfi_opensocket(1) != MI_SUCCESS) {
		fprintf(stderr, "noop_milter: cannot open %s\n", spec);
		return 1;
	}
	if (path != NULL && chmod(path, mode) != 0)
		fprintf(stderr, "noop_milter: chmod %s: %s\n", path,
		    strerror(errno));
	if (nodelay)
		set_nodelay_on_listener();
	return smfi_main() == MI_SUCCESS ? 0 : 1;
}
