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
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
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
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include <libmilter/mfapi.h>

#include "mw_config.h"
#include "mw_log.h"
#include "mw_session.h"
#include "mw_text.h"
#include "mw_stats.h"
#include "mw_http.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif
#define DEFAULT_CONFIG	SYSCONFDIR "/mailwarden/mailwarden.ini"
/* libmilter's MILTER_MDS_1M (mfdef.h defines it only with _FFR_MDS_NEGOTIATE) */
#define MW_MILTER_MAX_DATA	(1024 * 1024 - 1)

/* The live context; replaced on SIGHUP.  Sessions hold a reference. */
static struct mw_ctx *current_ctx;
static pthread_mutex_t ctx_lock = PTHREAD_MUTEX_INITIALIZER;
/*
 * Open milter connections against the descriptor limit, to warn before
 * the limit is reached (idle connections used to exhaust it).  Written
 * only by the connect/close callbacks.
 */
static atomic_ulong n_sessions;
/*
 * [stats]: counters (NULL when listen is empty), the listening socket
 * (opened as root before daemon()) and the HTTP server of the worker.
 */
static struct mw_stats *stats;
static int http_fd = -1;
static struct mw_http *http;
static atomic_int near_limit_warned;
static unsigned long nofile_limit;

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

/*
 * The TLS macros we ask for at HELO ([tls]).  Postfix's default
 * milter_helo_macros and Sendmail's default Milter.macros.helo send all
 * but {verify}; an MTA that lets the milter choose (SMFIF_SETSYMLIST,
 * Postfix 2.6 and later, Sendmail 8.14) gets this list.
 */
#define MW_HELO_MACROS \
	"{tls_version} {cipher} {cipher_bits} {cert_subject} {cert_issuer} " \
	"{verify}"

/* Pass the TLS macros the MTA sent (none: plaintext) to the session. */
static void
note_tls(SMFICTX *ctx, struct mw_session *s)
{
	struct mw_tls_info t;

	t.version = smfi_getsymval(ctx, "{tls_version}");
	t.cipher = smfi_getsymval(ctx, "{cipher}");
	t.bits = smfi_getsymval(ctx, "{cipher_bits}");
	t.cert_subject = smfi_getsymval(ctx, "{cert_subject}");
	t.cert_issuer = smfi_getsymval(ctx, "{cert_issuer}");
	t.verify = smfi_getsymval(ctx, "{verify}");
	mw_session_set_tls(s, &t);
}

static sfsistat
cb_negotiate(SMFICTX *ctx, unsigned long f0, unsigned long f1,
    unsigned long f2, unsigned long f3, unsigned long *pf0,
    unsigned long *pf1, unsigned long *pf2, unsigned long *pf3)
{
	(void)f2;
	(void)f3;
	*pf0 = f0 & (SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_QUARANTINE |
	    SMFIF_SETSYMLIST);
	if ((f0 & SMFIF_SETSYMLIST) != 0 &&
	    smfi_setsymlist(ctx, SMFIM_HELO, MW_HELO_MACROS) != MI_SUCCESS)
		mw_log(LOG_WARNING, "smfi_setsymlist failed: relying on the "
		    "MTA's default HELO macros");
	/*
	 * Header values exactly as received (leading space included): the
	 * DKIM verifier needs the original bytes.
	 */
	*pf1 = f1 & SMFIP_HDR_LEADSPC;
	*pf2 = 0;
	*pf3 = 0;
	return SMFIS_CONTINUE;
}

/*
 * Count open sessions; warn once when they use most of the descriptor
 * limit (each needs its milter connection and DNS/Redis sockets), and
 * again after they dropped well below it.
 */
static void
count_session(int delta)
{
	unsigned long n;

	if (delta > 0)
		n = atomic_fetch_add(&n_sessions, 1) + 1;
	else
		n = atomic_fetch_sub(&n_sessions, 1) - 1;
	if (nofile_limit == 0)
		return;
	if (n >= nofile_limit * 3 / 8 &&
	    atomic_exchange(&near_limit_warned, 1) == 0)
		mw_log(LOG_WARNING, "%lu open milter connections, near the "
		    "open files limit (%lu): raise LimitNOFILE, or lower "
		    "[milter] timeout to close idle connections sooner", n,
		    nofile_limit);
	else if (n < nofile_limit / 4)
		atomic_store(&near_limit_warned, 0);
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
	} else
		count_session(1);
	mctx = ctx_get();
	s = mw_session_new(mctx);
	mw_ctx_unref(mctx);
	if (s == NULL) {
		count_session(-1);
		return tempfail_nomem(ctx);
	}
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
	/* After STARTTLS the client says EHLO again: the macros are new. */
	note_tls(ctx, s);
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
		count_session(-1);
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

/* The group for a unix socket, or -1 if none is configured or known. */
static int
socket_gid(const struct mw_config *cfg, gid_t *gid)
{
	if (cfg->group[0] != '\0') {
		struct group *gr = getgrnam(cfg->group);

		if (gr == NULL)
			return -1;
		*gid = gr->gr_gid;
		return 0;
	}
	if (cfg->user[0] != '\0') {
		struct passwd *pw = getpwnam(cfg->user);

		if (pw == NULL)
			return -1;
		*gid = pw->pw_gid;
		return 0;
	}
	return -1;
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
		gid_t gid;

		/*
		 * The socket's group: [milter] group, else the primary group
		 * of [milter] user -- the group Postfix's user is put in.
		 */
		if (socket_gid(cfg, &gid) == 0 &&
		    chown(path, (uid_t)-1, gid) != 0)
			mw_log(LOG_WARNING, "chgrp %s: %s", path,
			    strerror(errno));
	} else
		set_nodelay_on_listener();
	return 0;
}

/* [milter] user and group must exist (checked by -t and at start). */
static int
check_accounts(const struct mw_config *cfg, char *err, size_t errlen)
{
	if (cfg->user[0] != '\0' && getpwnam(cfg->user) == NULL) {
		snprintf(err, errlen, "[milter] user \"%s\" does not exist "
		    "(create it, or set user = to an existing account)",
		    cfg->user);
		return -1;
	}
	if (cfg->group[0] != '\0' && getgrnam(cfg->group) == NULL) {
		snprintf(err, errlen, "[milter] group \"%s\" does not exist",
		    cfg->group);
		return -1;
	}
	return 0;
}

/* Give up root once the socket is open, as [milter] user/group say. */
static int
drop_privileges(const struct mw_config *cfg)
{
	struct passwd *pw;
	gid_t gid;

	if (geteuid() != 0)
		return 0;
	if (cfg->user[0] == '\0') {
		mw_log(LOG_WARNING, "%s: [milter] user is empty: running as "
		    "root (every check then parses hostile input as root; set "
		    "user = mailwarden)", cfg->path);
		return 0;
	}
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
		mw_stats_config(stats, path, 1, 0);
		return;
	}
	if (strcmp(cfg->socket, mw_ctx_config(current_ctx)->socket) != 0)
		mw_log(LOG_WARNING, "reload: [milter] socket changed; it takes "
		    "effect at the next restart");
	if (strcmp(cfg->stats_listen,
	    mw_ctx_config(current_ctx)->stats_listen) != 0)
		mw_log(LOG_WARNING, "reload: [stats] listen changed; it takes "
		    "effect at the next restart");
	if (mw_ctx_new(cfg, &nctx, err, sizeof(err)) == -1) {
		mw_log(LOG_ERR, "reload refused, keeping the running "
		    "configuration: %s", err);
		mw_stats_config(stats, path, 1, 0);
		return;
	}
	cfg = NULL;	/* owned by nctx */
	mw_ctx_set_stats(nctx, stats);
	mw_stats_configure(stats,
	    (size_t)mw_ctx_config(nctx)->stats_history,
	    mw_ctx_config(nctx)->stats_show_addresses);
	mw_http_update(http, mw_ctx_config(nctx));
	mw_stats_config(stats, path, 1, 1);
	pthread_mutex_lock(&ctx_lock);
	old = current_ctx;
	current_ctx = nctx;
	pthread_mutex_unlock(&ctx_lock);
	mw_log_set_level(mw_ctx_config(nctx)->log_level);
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

/*
 * Raise the descriptor limit to the hard limit: every SMTP session is a
 * milter connection, plus its DNS and Redis sockets.
 */
static void
raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return;
	if (rl.rlim_cur < rl.rlim_max) {
		rlim_t was = rl.rlim_cur;

		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
			mw_log(LOG_WARNING, "cannot raise the open files limit "
			    "from %llu to %llu: %s", (unsigned long long)was,
			    (unsigned long long)rl.rlim_max, strerror(errno));
			rl.rlim_cur = was;
		}
	}
	nofile_limit = (unsigned long)rl.rlim_cur;
	if (nofile_limit < 4096)
		mw_log(LOG_WARNING, "open files limit is %lu: at most about "
		    "%lu simultaneous SMTP sessions (raise LimitNOFILE / "
		    "ulimit -n)", nofile_limit, nofile_limit / 2);
}

static int
write_pidfile(const char *file)
{
	FILE *fp;

	if (file == NULL || *file == '\0')
		return 0;
	if ((fp = fopen(file, "w")) == NULL) {
		mw_log(LOG_ERR, "pidfile %s: %s", file, strerror(errno));
		return -1;
	}
	fprintf(fp, "%ld\n", (long)getpid());
	if (fclose(fp) != 0) {
		mw_log(LOG_ERR, "pidfile %s: %s", file, strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * The worker: runs libmilter on the socket the parent opened and keeps
 * the main thread in sigwait() (see the top of the file).  Returns the
 * exit status.
 */
static int
run_worker(const char *path)
{
	int status = MI_SUCCESS, sig;
	pthread_t tid;
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	/* Its thread inherits the blocked signals. */
	if (http_fd != -1) {
		char err[256];

		if ((http = mw_http_start(http_fd, mw_ctx_config(current_ctx),
		    stats, err, sizeof(err))) == NULL) {
			mw_log(LOG_ERR, "%s", err);
			return EX_OSERR;
		}
		http_fd = -1;	/* the server owns it now */
		mw_log(LOG_INFO, "metrics and status page on http://%s/",
		    mw_ctx_config(current_ctx)->stats_listen);
	}
	if (pthread_create(&tid, NULL, milter_thread, &status) != 0) {
		mw_log(LOG_ERR, "cannot start the milter thread");
		return EX_OSERR;
	}
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
	mw_http_stop(http);
	http = NULL;
	mw_ctx_unref(current_ctx);
	current_ctx = NULL;
	mw_stats_free(stats);
	stats = NULL;
	return status == MI_SUCCESS ? 0 : EX_SOFTWARE;
}

static pid_t
start_worker(const char *path, const sigset_t *parent_mask)
{
	pid_t parent = getpid(), pid = fork();

	if (pid == 0) {
		/*
		 * The worker goes with its supervisor: a SIGKILLed supervisor
		 * must not leave a worker holding the socket.
		 */
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 ||
		    getppid() != parent)
			_exit(EX_OSERR);
		/* A fresh signal state for the worker. */
		pthread_sigmask(SIG_SETMASK, parent_mask, NULL);
		exit(run_worker(path));
	}
	if (pid == -1)
		mw_log(LOG_ERR, "fork: %s", strerror(errno));
	return pid;
}

/*
 * The supervisor ([milter] auto_restart, like OpenDKIM's AutoRestart):
 * the parent keeps the listening socket and the pristine context, and
 * forks a worker that serves the milter.  If the worker dies (a crash:
 * libmilter 8.17 reads past its macro array on an odd macro list), the
 * sessions it held get the MTA's milter_default_action and a new worker
 * takes the socket over at once -- connections that arrive meanwhile
 * wait in the listen queue.  At most restart_max restarts per
 * restart_period, then the supervisor gives up (and systemd's
 * Restart=on-failure takes over).  SIGHUP and SIGTERM go to the worker.
 */
static int
supervise(const char *path, const struct mw_config *cfg)
{
	time_t *when;
	int n_when = 0, i, sig, st;
	unsigned long restarts = 0;
	sigset_t set, old;
	pid_t worker, pid;
	int stopping = 0, rc = 0;

	if ((when = calloc((size_t)cfg->restart_max, sizeof(*when))) == NULL)
		return EX_OSERR;
	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGCHLD);
	pthread_sigmask(SIG_BLOCK, &set, &old);
	if ((worker = start_worker(path, &old)) == -1) {
		free(when);
		return EX_OSERR;
	}
	for (;;) {
		if (sigwait(&set, &sig) != 0)
			continue;
		if (sig == SIGHUP || sig == SIGTERM || sig == SIGINT) {
			if (sig != SIGHUP)
				stopping = 1;
			if (worker > 0)
				kill(worker, sig);
			continue;
		}
		/* SIGCHLD */
		while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
			time_t now = time(NULL);

			if (pid != worker)
				continue;
			worker = -1;
			if (stopping || (WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
				rc = WIFEXITED(st) ? WEXITSTATUS(st) :
				    EX_SOFTWARE;
				goto out;
			}
			if (WIFSIGNALED(st))
				mw_log(LOG_ERR, "worker %ld killed by signal %d "
				    "(%s)", (long)pid, WTERMSIG(st),
				    strsignal(WTERMSIG(st)));
			else
				mw_log(LOG_ERR, "worker %ld exited with status "
				    "%d", (long)pid, WEXITSTATUS(st));
			/* Restarts within the last period. */
			for (i = 0; i < n_when; i++)
				if (now - when[i] >= cfg->restart_period) {
					memmove(&when[i], &when[i + 1],
					    (size_t)(n_when - i - 1) *
					    sizeof(*when));
					n_when--;
					i--;
				}
			if (n_when >= cfg->restart_max) {
				mw_log(LOG_ERR, "%d restarts within %lds "
				    "([milter] auto_restart_rate): giving up",
				    n_when, cfg->restart_period);
				rc = EX_SOFTWARE;
				goto out;
			}
			when[n_when++] = now;
			restarts++;
			if ((worker = start_worker(path, &old)) == -1) {
				rc = EX_OSERR;
				goto out;
			}
			mw_log(LOG_WARNING, "worker restarted as %ld (restart "
			    "%lu; %d of at most %d within %lds)", (long)worker,
			    restarts, n_when, cfg->restart_max,
			    cfg->restart_period);
		}
	}
out:
	free(when);
	return rc;
}

int
main(int argc, char **argv)
{
	const char *path = DEFAULT_CONFIG;
	const struct mw_config *mc;
	struct mw_config *cfg;
	int ch, foreground = 0, check_only = 0, rc;
	char err[1024], abspath[PATH_MAX], *pidfile = NULL;

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
	if (check_accounts(cfg, err, sizeof(err)) == -1 ||
	    mw_config_socket_host(cfg, err, sizeof(err)) == -1) {
		if (check_only)
			fprintf(stderr, "mailwarden: %s: %s\n", path, err);
		else
			mw_log(LOG_ERR, "%s: %s", path, err);
		mw_config_free(cfg);
		return EX_CONFIG;
	}
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
	mc = mw_ctx_config(current_ctx);
	raise_nofile();
	if (*mc->stats_listen != '\0') {
		if ((stats = mw_stats_new((size_t)mc->stats_history,
		    mc->stats_show_addresses)) == NULL) {
			mw_log(LOG_ERR, "out of memory");
			return EX_OSERR;
		}
		mw_ctx_set_stats(current_ctx, stats);
		mw_stats_config(stats, path, 0, 1);
		/* As root, before daemon(): a port in use stops us here. */
		if ((http_fd = mw_http_listen(mc, err, sizeof(err))) == -1) {
			mw_log(LOG_ERR, "%s: %s", path, err);
			return EX_UNAVAILABLE;
		}
	}
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
	if (smfi_settimeout((int)mc->milter_timeout) != MI_SUCCESS)
		mw_log(LOG_WARNING, "smfi_settimeout(%ld) failed",
		    mc->milter_timeout);
	if (open_socket(mc) == -1)
		return EX_UNAVAILABLE;
	if (drop_privileges(mc) == -1)
		return EX_NOPERM;
	if (!foreground && daemon(0, 0) != 0) {
		mw_log(LOG_ERR, "daemon: %s", strerror(errno));
		return EX_OSERR;
	}
	if (write_pidfile(mc->pidfile) == -1)
		return EX_CANTCREAT;
	mw_log(LOG_INFO, "mailwarden %s started on %s%s", PACKAGE_VERSION,
	    mc->socket, mc->auto_restart ? " (auto_restart)" : "");
	if (mc->pidfile != NULL && (pidfile = strdup(mc->pidfile)) == NULL)
		return EX_OSERR;
	if (mc->auto_restart) {
		rc = supervise(path, mc);
		mw_ctx_unref(current_ctx);
	} else
		rc = run_worker(path);
	if (pidfile != NULL)
		(void)unlink(pidfile);
	free(pidfile);
	return rc;
}
