/*
 * mailwarden -- the milter daemon: a thin libmilter layer over the
 * session library (lib/mw_session.h).  Each callback turns libmilter's
 * arguments and macros into one session call, and the verdict into
 * smfi_setreply() + SMFIS_*, and the header changes into
 * smfi_insheader()/smfi_chgheader()/smfi_addheader().
 *
 *	mailwarden [-f] [-c file]	run (foreground with -f, log to stderr)
 *	mailwarden -t [-c file]		check the configuration and exit
 *
 * Threads: libmilter runs one thread per SMTP connection and one signal
 * thread of its own.  libmilter's signal thread stops the milter on
 * SIGHUP, so we run smfi_main() in a second thread and keep the main
 * thread in sigwait(): the kernel hands a process-directed signal to
 * the main thread first when it is waiting for it, so SIGHUP reloads
 * the configuration and SIGTERM/SIGINT stop cleanly.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include <libmilter/mfapi.h>

#include "mw_config.h"
#include "mw_log.h"
#include "mw_session.h"
#include "mw_text.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif
#define DEFAULT_CONFIG	SYSCONFDIR "/mailwarden/mailwarden.ini"
/* libmilter's MILTER_MDS_1M (mfdef.h defines it only with _FFR_MDS_NEGOTIATE) */
#define MW_MILTER_MAX_DATA	(1024 * 1024 - 1)

/* The live context; replaced on SIGHUP.  Sessions hold a reference. */
static struct mw_ctx *current_ctx;
static pthread_mutex_t ctx_lock = PTHREAD_MUTEX_INITIALIZER;

static struct mw_ctx *
ctx_get(void)
{
	struct mw_ctx *ctx;

	pthread_mutex_lock(&ctx_lock);
	ctx = mw_ctx_ref(current_ctx);
	pthread_mutex_unlock(&ctx_lock);
	return ctx;
}

static struct mw_session *
session_of(SMFICTX *ctx)
{
	return smfi_getpriv(ctx);
}

static sfsistat
answer(SMFICTX *ctx, const struct mw_verdict *v)
{
	char code[8], text[sizeof(v->text)];

	switch (v->kind) {
	case MW_CONTINUE:
	case MW_ACCEPT:
		return SMFIS_CONTINUE;
	case MW_TEMPFAIL:
	case MW_REJECT:
		snprintf(code, sizeof(code), "%d", v->code);
		mw_milter_text(text, sizeof(text), v->text);
		if (smfi_setreply(ctx, code, v->xcode[0] ? (char *)v->xcode :
		    NULL, text) != MI_SUCCESS)
			mw_log(LOG_WARNING, "smfi_setreply(%s %s) failed",
			    code, v->xcode);
		return v->kind == MW_REJECT ? SMFIS_REJECT : SMFIS_TEMPFAIL;
	}
	return SMFIS_CONTINUE;
}

static sfsistat
tempfail_nomem(SMFICTX *ctx)
{
	smfi_setreply(ctx, "451", "4.3.0", "Temporary local problem");
	return SMFIS_TEMPFAIL;
}

static void
note_queue_id(SMFICTX *ctx, struct mw_session *s)
{
	const char *qid = smfi_getsymval(ctx, "i");

	if (qid != NULL)
		mw_session_set_queue_id(s, qid);
}

static sfsistat
cb_negotiate(SMFICTX *ctx, unsigned long f0, unsigned long f1,
    unsigned long f2, unsigned long f3, unsigned long *pf0,
    unsigned long *pf1, unsigned long *pf2, unsigned long *pf3)
{
	(void)ctx;
	(void)f2;
	(void)f3;
	*pf0 = f0 & (SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_QUARANTINE);
	/*
	 * Header values exactly as received (leading space included): the
	 * DKIM verifier needs the original bytes.
	 */
	*pf1 = f1 & SMFIP_HDR_LEADSPC;
	*pf2 = 0;
	*pf3 = 0;
	return SMFIS_CONTINUE;
}

static sfsistat
cb_connect(SMFICTX *ctx, char *hostname, _SOCK_ADDR *sa)
{
	struct mw_ctx *mctx;
	struct mw_session *s = session_of(ctx);
	char ip[INET6_ADDRSTRLEN] = "";
	int port = 0;

	/* A second CONNECT on one milter connection: start over. */
	if (s != NULL) {
		smfi_setpriv(ctx, NULL);
		mw_session_free(s);
	}
	mctx = ctx_get();
	s = mw_session_new(mctx);
	mw_ctx_unref(mctx);
	if (s == NULL)
		return tempfail_nomem(ctx);
	smfi_setpriv(ctx, s);
	if (sa != NULL && sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)sa;

		inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
		port = ntohs(in->sin_port);
	} else if (sa != NULL && sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)sa;

		inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
		port = ntohs(in6->sin6_port);
	}
	/* Postfix says "unknown" when the name did not verify. */
	if (hostname != NULL && strcmp(hostname, "unknown") == 0)
		hostname = NULL;
	return answer(ctx, mw_session_connect(s, ip[0] ? ip : NULL, hostname,
	    port));
}

static sfsistat
cb_helo(SMFICTX *ctx, char *helo)
{
	struct mw_session *s = session_of(ctx);

	if (s == NULL)
		return tempfail_nomem(ctx);
	return answer(ctx, mw_session_helo(s, helo));
}

static size_t
count_args(char **argv)
{
	size_t n = 0;

	while (argv != NULL && argv[n] != NULL)
		n++;
	return n;
}

static sfsistat
cb_envfrom(SMFICTX *ctx, char **argv)
{
	struct mw_session *s = session_of(ctx);
	size_t n = count_args(argv);

	if (s == NULL || n == 0)
		return tempfail_nomem(ctx);
	note_queue_id(ctx, s);
	mw_session_set_auth(s, smfi_getsymval(ctx, "{auth_authen}"));
	return answer(ctx, mw_session_mail(s, argv[0], argv + 1, n - 1));
}

static sfsistat
cb_envrcpt(SMFICTX *ctx, char **argv)
{
	struct mw_session *s = session_of(ctx);
	size_t n = count_args(argv);

	if (s == NULL || n == 0)
		return tempfail_nomem(ctx);
	return answer(ctx, mw_session_rcpt(s, argv[0], argv + 1, n - 1));
}

static sfsistat
cb_data(SMFICTX *ctx)
{
	struct mw_session *s = session_of(ctx);

	if (s == NULL)
		return tempfail_nomem(ctx);
	note_queue_id(ctx, s);
	return SMFIS_CONTINUE;
}

static sfsistat
cb_header(SMFICTX *ctx, char *name, char *value)
{
	struct mw_session *s = session_of(ctx);

	if (s == NULL)
		return tempfail_nomem(ctx);
	return answer(ctx, mw_session_header(s, name, value));
}

static sfsistat
cb_eoh(SMFICTX *ctx)
{
	struct mw_session *s = session_of(ctx);

	if (s == NULL)
		return tempfail_nomem(ctx);
	return answer(ctx, mw_session_eoh(s));
}

static sfsistat
cb_body(SMFICTX *ctx, unsigned char *buf, size_t len)
{
	struct mw_session *s = session_of(ctx);

	if (s == NULL)
		return tempfail_nomem(ctx);
	return answer(ctx, mw_session_body(s, buf, len));
}

/* Header values we add start with a space: we negotiated LEADSPC. */
static int
apply_changes(SMFICTX *ctx, struct mw_session *s)
{
	const struct mw_hdr_change *c;
	size_t i, n = mw_session_changes(s, &c);
	int r = MI_SUCCESS;

	for (i = 0; i < n && r == MI_SUCCESS; i++) {
		char *v = NULL;

		if (c[i].value != NULL) {
			size_t len = strlen(c[i].value) + 2;

			if ((v = malloc(len)) == NULL)
				return MI_FAILURE;
			snprintf(v, len, " %s", c[i].value);
		}
		switch (c[i].op) {
		case MW_HDR_DELETE:
			r = smfi_chgheader(ctx, (char *)c[i].name, c[i].index,
			    NULL);
			break;
		case MW_HDR_INSERT:
			r = smfi_insheader(ctx, c[i].index, (char *)c[i].name,
			    v);
			break;
		case MW_HDR_ADD:
			r = smfi_addheader(ctx, (char *)c[i].name, v);
			break;
		}
		free(v);
	}
	return r;
}

static sfsistat
cb_eom(SMFICTX *ctx)
{
	struct mw_session *s = session_of(ctx);
	const struct mw_verdict *v;

	if (s == NULL)
		return tempfail_nomem(ctx);
	note_queue_id(ctx, s);
	v = mw_session_eom(s);
	if (v->kind == MW_REJECT || v->kind == MW_TEMPFAIL)
		return answer(ctx, v);
	if (apply_changes(ctx, s) != MI_SUCCESS) {
		/* Never deliver a message whose forged A-R we could not remove. */
		mw_log(LOG_ERR, "could not change headers; tempfail");
		smfi_setreply(ctx, "451", "4.3.0", "Temporary local problem");
		return SMFIS_TEMPFAIL;
	}
	/* DMARC p=quarantine with quarantine_action = hold. */
	if (mw_session_quarantine(s) != NULL &&
	    smfi_quarantine(ctx, (char *)mw_session_quarantine(s)) != MI_SUCCESS)
		mw_log(LOG_ERR, "smfi_quarantine failed");
	return SMFIS_CONTINUE;
}

static sfsistat
cb_abort(SMFICTX *ctx)
{
	struct mw_session *s = session_of(ctx);

	if (s != NULL)
		mw_session_abort(s);
	return SMFIS_CONTINUE;
}

static sfsistat
cb_close(SMFICTX *ctx)
{
	struct mw_session *s = session_of(ctx);

	if (s != NULL) {
		smfi_setpriv(ctx, NULL);
		mw_session_free(s);
	}
	return SMFIS_CONTINUE;
}

static struct smfiDesc milter_desc = {
	.xxfi_name = "mailwarden",
	.xxfi_version = SMFI_VERSION,
	.xxfi_flags = SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_QUARANTINE,
	.xxfi_connect = cb_connect,
	.xxfi_helo = cb_helo,
	.xxfi_envfrom = cb_envfrom,
	.xxfi_envrcpt = cb_envrcpt,
	.xxfi_header = cb_header,
	.xxfi_eoh = cb_eoh,
	.xxfi_body = cb_body,
	.xxfi_eom = cb_eom,
	.xxfi_abort = cb_abort,
	.xxfi_close = cb_close,
	.xxfi_unknown = NULL,
	/* Registered so the MTA does not wait on a delayed ACK (LAB.md). */
	.xxfi_data = cb_data,
	.xxfi_negotiate = cb_negotiate,
};

/*
 * libmilter does not hand out its listening socket.  Find it (a
 * listening TCP socket among our fds) and set TCP_NODELAY: Linux copies
 * it to accepted sockets, which removes two 40 ms Nagle stalls per
 * message.
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
			mw_log(LOG_WARNING, "TCP_NODELAY on fd %d: %s", fd,
			    strerror(errno));
	}
}

static const char *
unix_socket_path(const char *spec)
{
	if (strncmp(spec, "unix:", 5) == 0)
		return spec + 5;
	if (strncmp(spec, "local:", 6) == 0)
		return spec + 6;
	return NULL;
}

static int
open_socket(const struct mw_config *cfg)
{
	const char *path = unix_socket_path(cfg->socket);

	if (smfi_setconn(cfg->socket) != MI_SUCCESS) {
		mw_log(LOG_ERR, "bad socket %s", cfg->socket);
		return -1;
	}
	/* The mode applies to the socket file libmilter is about to make. */
	if (path != NULL)
		umask(0777 & ~cfg->socket_mode);
	if (smfi_opensocket(1) != MI_SUCCESS) {
		mw_log(LOG_ERR, "cannot open socket %s (in use, or directory "
		    "missing?)", cfg->socket);
		return -1;
	}
	umask(022);
	if (path != NULL) {
		if (chmod(path, cfg->socket_mode) != 0)
			mw_log(LOG_WARNING, "chmod %s: %s", path,
			    strerror(errno));
		if (cfg->group[0] != '\0') {
			struct group *gr = getgrnam(cfg->group);

			if (gr == NULL || chown(path, (uid_t)-1, gr->gr_gid) != 0)
				mw_log(LOG_WARNING, "chgrp %s %s failed", path,
				    cfg->group);
		}
	} else
		set_nodelay_on_listener();
	return 0;
}

/* Give up root once the socket is open, as [milter] user/group say. */
static int
drop_privileges(const struct mw_config *cfg)
{
	struct passwd *pw;
	gid_t gid;

	if (geteuid() != 0 || cfg->user[0] == '\0')
		return 0;
	if ((pw = getpwnam(cfg->user)) == NULL) {
		mw_log(LOG_ERR, "%s: [milter] user \"%s\" does not exist "
		    "(create it, or set user = to an existing account)",
		    cfg->path, cfg->user);
		return -1;
	}
	gid = pw->pw_gid;
	if (cfg->group[0] != '\0') {
		struct group *gr = getgrnam(cfg->group);

		if (gr == NULL) {
			mw_log(LOG_ERR, "%s: [milter] group \"%s\" does not "
			    "exist", cfg->path, cfg->group);
			return -1;
		}
		gid = gr->gr_gid;
	}
	if (setgroups(0, NULL) != 0 || setgid(gid) != 0 ||
	    setuid(pw->pw_uid) != 0) {
		mw_log(LOG_ERR, "cannot drop privileges to %s: %s", cfg->user,
		    strerror(errno));
		return -1;
	}
	if (setuid(0) == 0) {
		mw_log(LOG_ERR, "could regain root after dropping it; stop");
		return -1;
	}
	mw_log(LOG_INFO, "running as user %s", cfg->user);
	return 0;
}

static void *
milter_thread(void *arg)
{
	int *status = arg;

	*status = smfi_main();
	/* Wake the main thread if libmilter stopped on its own. */
	kill(getpid(), SIGTERM);
	return NULL;
}

static void
reload(const char *path)
{
	struct mw_config *cfg;
	struct mw_ctx *nctx, *old;
	char err[1024];

	if (mw_config_load(path, &cfg, err, sizeof(err)) == -1) {
		mw_log(LOG_ERR, "reload refused, keeping the running "
		    "configuration: %s", err);
		return;
	}
	if (strcmp(cfg->socket, mw_ctx_config(current_ctx)->socket) != 0)
		mw_log(LOG_WARNING, "reload: [milter] socket changed; it takes "
		    "effect at the next restart");
	if (mw_ctx_new(cfg, &nctx, err, sizeof(err)) == -1) {
		mw_log(LOG_ERR, "reload refused, keeping the running "
		    "configuration: %s", err);
		return;
	}
	pthread_mutex_lock(&ctx_lock);
	old = current_ctx;
	current_ctx = nctx;
	pthread_mutex_unlock(&ctx_lock);
	mw_log_set_level(cfg->log_level);
	mw_ctx_unref(old);
	mw_log(LOG_INFO, "configuration reloaded from %s", path);
}

static void
usage(void)
{
	fprintf(stderr, "usage: mailwarden [-f] [-c config]\n"
	    "       mailwarden -t [-c config]\n");
	exit(EX_USAGE);
}

int
main(int argc, char **argv)
{
	const char *path = DEFAULT_CONFIG;
	struct mw_config *cfg;
	int ch, foreground = 0, check_only = 0, status = 0, sig;
	char err[1024], abspath[PATH_MAX];
	pthread_t tid;
	sigset_t set;

	while ((ch = getopt(argc, argv, "c:fthV")) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			break;
		case 'f':
			foreground = 1;
			break;
		case 't':
			check_only = 1;
			break;
		case 'V':
			printf("mailwarden %s\n", PACKAGE_VERSION);
			return 0;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();
	/*
	 * daemon() changes to /: keep the absolute path for SIGHUP reloads.
	 * (A path that does not resolve is reported by the loader below.)
	 */
	if (realpath(path, abspath) != NULL)
		path = abspath;

	if (mw_config_load(path, &cfg, err, sizeof(err)) == -1) {
		fprintf(stderr, "mailwarden: %s\n", err);
		return EX_CONFIG;
	}
	mw_log_open("mailwarden", cfg->log_facility, cfg->log_level,
	    foreground || check_only);
	if (check_only) {
		/* Build everything the daemon would (resolver, keys, ...). */
		if (mw_ctx_new(cfg, &current_ctx, err, sizeof(err)) == -1) {
			fprintf(stderr, "mailwarden: %s: %s\n", path, err);
			return EX_CONFIG;
		}
		mw_config_dump(mw_ctx_config(current_ctx), stdout);
		/* Warn (never fail), e.g. if a signing key's DNS record disagrees. */
		(void)mw_ctx_self_check(current_ctx, stderr);
		printf("\n; %s: configuration OK\n", path);
		mw_ctx_unref(current_ctx);
		return 0;
	}
	if (mw_ctx_new(cfg, &current_ctx, err, sizeof(err)) == -1) {
		mw_log(LOG_ERR, "%s: %s", path, err);
		return EX_CONFIG;
	}
	cfg = NULL;	/* owned by the ctx now */
	if (smfi_register(milter_desc) != MI_SUCCESS) {
		mw_log(LOG_ERR, "smfi_register failed");
		return EX_SOFTWARE;
	}
	/*
	 * Take packets of up to 1 MB: libmilter's default is 64 kB and it
	 * drops the connection on a larger one -- a header field above
	 * 64 kB (Postfix allows 100 kB, header_size_limit) would be
	 * tempfailed by the MTA forever.  (Debian's libmilter is built
	 * without _FFR_MDS_NEGOTIATE: it takes the larger packets but does
	 * not announce SMFIP_MDS_1M in the option negotiation; Sendmail
	 * sends them when its MilterMaxDataSize allows, Postfix sends what
	 * it has.)
	 */
	if (smfi_setmaxdatasize(MW_MILTER_MAX_DATA) == 0)
		mw_log(LOG_WARNING, "libmilter refused a %d-byte data size: "
		    "header fields above 64 kB will fail", MW_MILTER_MAX_DATA);
	if (open_socket(mw_ctx_config(current_ctx)) == -1)
		return EX_UNAVAILABLE;
	if (drop_privileges(mw_ctx_config(current_ctx)) == -1)
		return EX_NOPERM;
	if (!foreground && daemon(0, 0) != 0) {
		mw_log(LOG_ERR, "daemon: %s", strerror(errno));
		return EX_OSERR;
	}
	if (mw_ctx_config(current_ctx)->pidfile != NULL) {
		FILE *fp = fopen(mw_ctx_config(current_ctx)->pidfile, "w");

		if (fp != NULL) {
			fprintf(fp, "%ld\n", (long)getpid());
			fclose(fp);
		}
	}

	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	if (pthread_create(&tid, NULL, milter_thread, &status) != 0) {
		mw_log(LOG_ERR, "cannot start the milter thread");
		return EX_OSERR;
	}
	mw_log(LOG_INFO, "mailwarden %s started on %s", PACKAGE_VERSION,
	    mw_ctx_config(current_ctx)->socket);
	for (;;) {
		if (sigwait(&set, &sig) != 0)
			continue;
		if (sig == SIGHUP) {
			reload(path);
			continue;
		}
		break;
	}
	mw_log(LOG_INFO, "stopping (signal %d)", sig);
	smfi_stop();
	pthread_join(tid, NULL);
	mw_ctx_unref(current_ctx);
	return status == MI_SUCCESS ? 0 : EX_SOFTWARE;
}
