/*
 * mlat -- milter-protocol load client: speaks the milter protocol
 * (version 6) to a milter the way Postfix's smtpd does, and measures
 * how long the milter keeps the MTA waiting per message.
 *
 *	mlat -s SOCKET [-n MSGS] [-c CONNS] [-m FILE.eml] [-f FROM]
 *	     [-r RCPT] [-H HELO] [-a CLIENT_IP] [-N CLIENT_NAME]
 *	     [-w HOLD_S] [-T TIMEOUT_S] [-v] [-D]
 *
 * SOCKET is libmilter's syntax: unix:/path or inet:port@host.  MSGS
 * messages (default 1000) are sent over CONNS concurrent connections
 * (default 20), one milter connection per message as Postfix opens one
 * per SMTP session: connect, OPTNEG, CONNECT, HELO, MAIL, RCPT, DATA,
 * each header, EOH, the body in 64 kB chunks, EOM, QUIT.  Steps the
 * milter negotiated away (SMFIP_NO*) are not sent, replies it asked
 * not to give (SMFIP_NR_*) are not waited for, a SKIP reply ends the
 * body early, as an MTA does.  Macros are sent as Postfix does for the
 * ones milters commonly read (j, i, {mail_addr}, {rcpt_addr}, ...).
 *
 * The message is read from FILE by lib/mw_message.c (LF or CRLF line
 * ends; headers, an empty line, body; an mbox "From " line skipped, as
 * Postfix does); header values are passed from after the colon,
 * with the leading space when the milter negotiated
 * SMFIP_HDR_LEADSPC, folded lines joined with "\n" as Postfix does;
 * the body is sent with CRLF line ends.  Without -m a small message is
 * made up.
 *
 * The latency of one message is the time from connect() to the final
 * reply to EOM.  Printed at the end, one line, key=value:
 *	mlat: socket=... conns=20 msgs=1000 ok=1000 reject=0 tempfail=0
 *	    other=0 error=0 secs=1.234 msgs_per_s=810.4 p50_ms=...
 *	    p90_ms=... p99_ms=... max_ms=...
 * ok counts CONTINUE/ACCEPT at the end; reject and tempfail count
 * r/t/y replies at any step (a "y" reply with a 4xx code is a
 * tempfail).
 *
 * -w HOLD_S: every connection stops mid-transaction (after EOH, before
 * the body) until all CONNS connections got there, then "mlat: holding
 * N connections" is printed (and flushed) and they are held HOLD_S
 * seconds before they finish; for reading the milter's memory with
 * that many sessions open.  With -w, MSGS is set to CONNS.
 * -v: print the header changes (h, i, m) of the first message to
 * stderr, to see what the milter concluded.
 *
 * Build: cc -O2 -pthread -o bench/mlat bench/mlat.c
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libmilter/mfdef.h>

#include "mw_message.h"

#define REPLY_MAX	(1024 * 1024)	/* largest reply packet we accept */

/* Options and the message, read-only once the threads run. */
static const char *opt_socket;
static long opt_msgs = 1000;
static int opt_conns = 20;
static const char *opt_file;
static const char *opt_from = "sender@bench.example";
static const char *opt_rcpt = "rcpt@sink.test";
static const char *opt_helo = "mx.bench.example";
static const char *opt_ip = "127.0.0.1";
static const char *opt_name = "mx.bench.example";
static int opt_hold = -1;
static int opt_timeout = 30;
static int opt_verbose;
static int opt_nodelay;

static struct mw_message msg;	/* fields, CRLF body (lib/mw_message.c) */

static int use_unix;
static struct sockaddr_un sun_addr;
static struct sockaddr_storage sin_addr;
static socklen_t sin_len;

/* Shared counters. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static long next_msg;
static long n_ok, n_reject, n_tempfail, n_other, n_error;
static double *lat;		/* ms, one per finished message */
static long nlat;
static int arrived, released;	/* -w barrier */
static int verbose_done;
static int first_error_shown;

static void
die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "mlat: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	exit(2);
}

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void *
xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (p == NULL)
		die("out of memory");
	return p;
}

/* ------------------------------------------------------------ message */

static void
load_message(void)
{
	char buf[1024], err[256];
	FILE *fp;

	if (opt_file != NULL) {
		if ((fp = fopen(opt_file, "rb")) == NULL)
			die("%s: %s", opt_file, strerror(errno));
	} else {
		snprintf(buf, sizeof(buf),
		    "From: <%s>\nTo: <%s>\nSubject: mlat\n"
		    "Date: Thu, 01 Jan 2026 00:00:00 +0000\n"
		    "Message-ID: <mlat@bench.example>\n\nHello.\n",
		    opt_from, opt_rcpt);
		if ((fp = fmemopen(buf, strlen(buf), "r")) == NULL)
			die("fmemopen: %s", strerror(errno));
	}
	/* The library's reader: the message as an MTA hands it over. */
	if (mw_message_load(fp, &msg, err, sizeof(err)) == -1)
		die("%s: %s", opt_file != NULL ? opt_file : "message", err);
	fclose(fp);
}

/* ----------------------------------------------------------- protocol */

struct conn {
	int		fd;
	uint32_t	proto;	/* the milter's SMFIP_* flags */
	char		buf[256 * 1024];	/* one outgoing command */
	size_t		len;
	char		out[264 * 1024];	/* commands not yet written */
	size_t		olen;
	char		*rbuf;	/* last reply */
	size_t		rcap;
	uint32_t	rlen;
	char		rcmd;
	int		first;	/* print this message's changes (-v) */
};

enum outcome { OUT_OK, OUT_REJECT, OUT_TEMPFAIL, OUT_OTHER, OUT_ERROR };

static void
show_error(const char *fmt, ...)
{
	va_list ap;
	int show;

	pthread_mutex_lock(&lock);
	show = first_error_shown++ < 5;
	pthread_mutex_unlock(&lock);
	if (!show)
		return;
	va_start(ap, fmt);
	fprintf(stderr, "mlat: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
}

static int
write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int
read_all(int fd, char *p, size_t n)
{
	while (n > 0) {
		ssize_t r = read(fd, p, n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

static void
cmd_start(struct conn *c, char cmd)
{
	c->len = 4;
	c->buf[c->len++] = cmd;
}

static void
cmd_add(struct conn *c, const void *p, size_t n)
{
	if (c->len + n > sizeof(c->buf))
		die("command too long");
	memcpy(c->buf + c->len, p, n);
	c->len += n;
}

static void
cmd_str(struct conn *c, const char *s)
{
	cmd_add(c, s, strlen(s) + 1);
}

static void
cmd_u32(struct conn *c, uint32_t v)
{
	v = htonl(v);
	cmd_add(c, &v, 4);
}

/*
 * Commands are buffered and written when a reply is awaited, as
 * Postfix's VSTREAM does: a macro packet and the command after it go
 * out in one write.  Two small writes in a row would meet Nagle's
 * algorithm and the milter's delayed ACK (40 ms each time).
 */
static int
flush_out(struct conn *c)
{
	int r = 0;

	if (c->olen > 0)
		r = write_all(c->fd, c->out, c->olen);
	c->olen = 0;
	return r;
}

static int
cmd_send(struct conn *c)
{
	uint32_t n = htonl((uint32_t)(c->len - 4));

	memcpy(c->buf, &n, 4);
	if (c->olen + c->len > sizeof(c->out) && flush_out(c) != 0)
		return -1;
	memcpy(c->out + c->olen, c->buf, c->len);
	c->olen += c->len;
	return 0;
}

/* A large packet (body chunk) straight from the message buffer. */
static int
send_data(struct conn *c, char cmd, const char *p, size_t n)
{
	char hdr[5];
	uint32_t len = htonl((uint32_t)(n + 1));
	struct iovec iov[2];
	size_t left;

	if (flush_out(c) != 0)
		return -1;
	memcpy(hdr, &len, 4);
	hdr[4] = cmd;
	iov[0].iov_base = hdr;
	iov[0].iov_len = 5;
	iov[1].iov_base = (void *)p;
	iov[1].iov_len = n;
	left = 5 + n;
	while (left > 0) {
		ssize_t w = writev(c->fd, iov, 2);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		left -= (size_t)w;
		while (w > 0) {
			int k = iov[0].iov_len ? 0 : 1;
			size_t d = (size_t)w < iov[k].iov_len ? (size_t)w :
			    iov[k].iov_len;

			iov[k].iov_base = (char *)iov[k].iov_base + d;
			iov[k].iov_len -= d;
			w -= (ssize_t)d;
		}
	}
	return 0;
}

static int
read_reply(struct conn *c)
{
	uint32_t n;

	if (flush_out(c) != 0 || read_all(c->fd, (char *)&n, 4) != 0)
		return -1;
	n = ntohl(n);
	if (n < 1 || n > REPLY_MAX)
		return -1;
	if (n > c->rcap) {
		c->rcap = n;
		if ((c->rbuf = realloc(c->rbuf, n)) == NULL)
			die("out of memory");
	}
	if (read_all(c->fd, c->rbuf, n) != 0)
		return -1;
	c->rcmd = c->rbuf[0];
	c->rlen = n - 1;
	return 0;
}

static void
show_change(struct conn *c)
{
	const char *p = c->rbuf + 1, *end = c->rbuf + 1 + c->rlen;
	const char *name, *value;

	if (c->rcmd == SMFIR_INSHEADER || c->rcmd == SMFIR_CHGHEADER)
		p += 4;			/* index */
	if (p >= end)
		return;
	name = p;
	p += strnlen(p, end - p) + 1;
	value = p < end ? p : "";
	if (p < end && memchr(p, '\0', end - p) == NULL)
		return;
	fprintf(stderr, "mlat: %s %s:%s\n", c->rcmd == SMFIR_ADDHEADER ?
	    "add" : c->rcmd == SMFIR_INSHEADER ? "insert" : "change", name,
	    value);
}

/*
 * Wait for the final reply to a command: skip progress, collect (and
 * with -v show) modifications.  Returns the reply letter, 0 on error.
 */
static char
await(struct conn *c)
{
	for (;;) {
		if (read_reply(c) != 0)
			return 0;
		switch (c->rcmd) {
		case SMFIR_PROGRESS:
			continue;
		case SMFIR_ADDHEADER:
		case SMFIR_INSHEADER:
		case SMFIR_CHGHEADER:
			if (c->first)
				show_change(c);
			continue;
		case SMFIR_ADDRCPT:
		case SMFIR_DELRCPT:
		case SMFIR_ADDRCPT_PAR:
		case SMFIR_REPLBODY:
		case SMFIR_CHGFROM:
		case SMFIR_QUARANTINE:
		case SMFIR_SETSYMLIST:
			continue;
		default:
			return c->rcmd;
		}
	}
}

static enum outcome
judge(struct conn *c, char r)
{
	switch (r) {
	case SMFIR_REJECT:
		return OUT_REJECT;
	case SMFIR_TEMPFAIL:
		return OUT_TEMPFAIL;
	case SMFIR_REPLYCODE:
		if (c->first || opt_verbose)
			show_error("reply: %.*s", (int)c->rlen, c->rbuf + 1);
		return c->rlen > 0 && c->rbuf[1] == '4' ? OUT_TEMPFAIL :
		    OUT_REJECT;
	case SMFIR_ACCEPT:
	case SMFIR_CONTINUE:
		return OUT_OK;
	default:
		return OUT_OTHER;
	}
}

/*
 * Send one command (already built in c->buf) and, unless the milter
 * asked for no reply, wait for the verdict.  Returns -1 on error, 1
 * when the transaction ends here (reject, accept, ...), 0 to go on.
 */
static int
step(struct conn *c, uint32_t nr_flag, enum outcome *out)
{
	char r;

	if (cmd_send(c) != 0)
		return -1;
	if (nr_flag && (c->proto & nr_flag))
		return 0;
	if ((r = await(c)) == 0)
		return -1;
	if (r == SMFIR_CONTINUE)
		return 0;
	*out = judge(c, r);
	return 1;
}

static void
macro(struct conn *c, char stage, const char *name, const char *value, ...)
{
	va_list ap;

	cmd_start(c, SMFIC_MACRO);
	cmd_add(c, &stage, 1);
	va_start(ap, value);
	while (name != NULL) {
		cmd_str(c, name);
		cmd_str(c, value);
		name = va_arg(ap, const char *);
		if (name != NULL)
			value = va_arg(ap, const char *);
	}
	va_end(ap);
}

static int
open_conn(struct conn *c)
{
	int one = 1;
	struct timeval tv = { opt_timeout, 0 };

	if (use_unix) {
		if ((c->fd = socket(AF_UNIX, SOCK_STREAM, 0)) < 0)
			return -1;
		if (connect(c->fd, (struct sockaddr *)&sun_addr,
		    sizeof(sun_addr)) != 0)
			goto fail;
	} else {
		if ((c->fd = socket(sin_addr.ss_family, SOCK_STREAM, 0)) < 0)
			return -1;
		/*
		 * No TCP_NODELAY: Postfix's milter client does not set it
		 * either, so Nagle's algorithm meets the milter's delayed
		 * ACKs here as it does there (-D sets it, for comparison).
		 */
		if (opt_nodelay)
			setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one,
			    sizeof(one));
		if (connect(c->fd, (struct sockaddr *)&sin_addr, sin_len) != 0)
			goto fail;
	}
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	return 0;
fail:
	close(c->fd);
	c->fd = -1;
	return -1;
}

static void
hold_barrier(void)
{
	pthread_mutex_lock(&lock);
	arrived++;
	pthread_cond_broadcast(&cond);
	while (!released)
		pthread_cond_wait(&cond, &lock);
	pthread_mutex_unlock(&lock);
}

/* One message over one new milter connection. */
static enum outcome
one_message(struct conn *c, long seq, int *held)
{
	enum outcome out = OUT_OK;
	char qid[32], fam = '4', tmp[600];
	uint16_t port = htons(40000 + (uint16_t)(seq % 20000));
	uint32_t want = SMFIP_NOCONNECT | SMFIP_NOHELO | SMFIP_NOMAIL |
	    SMFIP_NORCPT | SMFIP_NOBODY | SMFIP_NOHDRS | SMFIP_NOEOH |
	    SMFIP_NR_HDR | SMFIP_NOUNKNOWN | SMFIP_NODATA | SMFIP_SKIP |
	    SMFIP_NR_CONN | SMFIP_NR_HELO | SMFIP_NR_MAIL | SMFIP_NR_RCPT |
	    SMFIP_NR_DATA | SMFIP_NR_UNKN | SMFIP_NR_EOH | SMFIP_NR_BODY |
	    SMFIP_HDR_LEADSPC;
	size_t i, off;
	int r = 0;

	snprintf(qid, sizeof(qid), "%lX", 0x100000L + seq);
	if (strchr(opt_ip, ':') != NULL)
		fam = '6';
	if (open_conn(c) != 0) {
		show_error("connect %s: %s", opt_socket, strerror(errno));
		return OUT_ERROR;
	}
	/* OPTNEG: version 6, every action, every protocol option. */
	cmd_start(c, SMFIC_OPTNEG);
	cmd_u32(c, 6);
	cmd_u32(c, 0x1ff);
	cmd_u32(c, want);
	if (cmd_send(c) != 0 || read_reply(c) != 0 ||
	    c->rcmd != SMFIC_OPTNEG || c->rlen < 12) {
		show_error("option negotiation failed");
		out = OUT_ERROR;
		goto done;
	}
	memcpy(&c->proto, c->rbuf + 9, 4);
	c->proto = ntohl(c->proto);

	macro(c, SMFIC_CONNECT, "j", "mx.bench.example", "{daemon_name}",
	    "mlat", "v", "Postfix 3.7", "_", opt_ip, "{client_addr}", opt_ip,
	    "{client_name}", opt_name, NULL);
	if (cmd_send(c) != 0)
		goto err;
	if (!(c->proto & SMFIP_NOCONNECT)) {
		cmd_start(c, SMFIC_CONNECT);
		cmd_str(c, opt_name);
		cmd_add(c, &fam, 1);
		cmd_add(c, &port, 2);
		cmd_str(c, opt_ip);
		if ((r = step(c, SMFIP_NR_CONN, &out)) != 0)
			goto end;
	}
	if (!(c->proto & SMFIP_NOHELO)) {
		cmd_start(c, SMFIC_HELO);
		cmd_str(c, opt_helo);
		if ((r = step(c, SMFIP_NR_HELO, &out)) != 0)
			goto end;
	}
	snprintf(tmp, sizeof(tmp), "<%s>", opt_from);
	macro(c, SMFIC_MAIL, "i", qid, "{mail_mailer}", "smtp",
	    "{mail_host}", "bench.example", "{mail_addr}", opt_from, NULL);
	if (cmd_send(c) != 0)
		goto err;
	if (!(c->proto & SMFIP_NOMAIL)) {
		cmd_start(c, SMFIC_MAIL);
		cmd_str(c, tmp);
		cmd_str(c, "BODY=8BITMIME");
		if ((r = step(c, SMFIP_NR_MAIL, &out)) != 0)
			goto end;
	}
	snprintf(tmp, sizeof(tmp), "<%s>", opt_rcpt);
	macro(c, SMFIC_RCPT, "{rcpt_mailer}", "discard", "{rcpt_host}",
	    "sink.test", "{rcpt_addr}", opt_rcpt, NULL);
	if (cmd_send(c) != 0)
		goto err;
	if (!(c->proto & SMFIP_NORCPT)) {
		cmd_start(c, SMFIC_RCPT);
		cmd_str(c, tmp);
		if ((r = step(c, SMFIP_NR_RCPT, &out)) != 0)
			goto end;
	}
	if (!(c->proto & SMFIP_NODATA)) {
		macro(c, SMFIC_DATA, "i", qid, NULL);
		if (cmd_send(c) != 0)
			goto err;
		cmd_start(c, SMFIC_DATA);
		if ((r = step(c, SMFIP_NR_DATA, &out)) != 0)
			goto end;
	}
	if (!(c->proto & SMFIP_NOHDRS)) {
		for (i = 0; i < msg.n; i++) {
			const char *v = msg.values[i];

			if (!(c->proto & SMFIP_HDR_LEADSPC))
				while (*v == ' ' || *v == '\t')
					v++;
			cmd_start(c, SMFIC_HEADER);
			cmd_str(c, msg.names[i]);
			cmd_str(c, v);
			if ((r = step(c, SMFIP_NR_HDR, &out)) != 0)
				goto end;
		}
	}
	if (!(c->proto & SMFIP_NOEOH)) {
		cmd_start(c, SMFIC_EOH);
		if ((r = step(c, SMFIP_NR_EOH, &out)) != 0)
			goto end;
	}
	if (held != NULL && !*held) {
		*held = 1;
		hold_barrier();
	}
	if (!(c->proto & SMFIP_NOBODY)) {
		for (off = 0; off < msg.bodylen; off += MILTER_CHUNK_SIZE) {
			size_t n = msg.bodylen - off;
			char rr;

			if (n > MILTER_CHUNK_SIZE)
				n = MILTER_CHUNK_SIZE;
			if (send_data(c, SMFIC_BODY, (const char *)msg.body + off,
			    n) != 0)
				goto err;
			if (c->proto & SMFIP_NR_BODY)
				continue;
			if ((rr = await(c)) == 0)
				goto err;
			if (rr == SMFIR_SKIP)
				break;
			if (rr != SMFIR_CONTINUE) {
				out = judge(c, rr);
				goto end;
			}
		}
	}
	cmd_start(c, SMFIC_BODYEOB);
	if ((r = step(c, 0, &out)) < 0)
		goto err;
	/* EOM always ends with a verdict. */
	goto done;
end:
	if (r < 0)
		goto err;
	/* The transaction ended early (reject, accept): tell the milter. */
	cmd_start(c, SMFIC_ABORT);
	cmd_send(c);
	flush_out(c);
	goto done;
err:
	show_error("message %ld: connection failed: %s", seq,
	    errno ? strerror(errno) : "protocol error");
	out = OUT_ERROR;
done:
	if (out != OUT_ERROR) {
		cmd_start(c, SMFIC_QUIT);
		cmd_send(c);
		flush_out(c);
	}
	c->olen = 0;
	close(c->fd);
	c->fd = -1;
	if (held != NULL && !*held) {	/* failed before the hold point */
		*held = 1;
		hold_barrier();
	}
	return out;
}

static void *
worker(void *arg)
{
	struct conn *c = xmalloc(sizeof(*c));
	int held = 0;

	(void)arg;
	memset(c, 0, sizeof(*c));
	c->fd = -1;
	for (;;) {
		long seq;
		double t0, t1;
		enum outcome out;

		pthread_mutex_lock(&lock);
		seq = next_msg < opt_msgs ? next_msg++ : -1;
		if (seq >= 0 && opt_verbose && !verbose_done) {
			verbose_done = 1;
			c->first = 1;
		}
		pthread_mutex_unlock(&lock);
		if (seq < 0)
			break;
		errno = 0;
		t0 = now_ms();
		out = one_message(c, seq, opt_hold >= 0 ? &held : NULL);
		t1 = now_ms();
		c->first = 0;
		pthread_mutex_lock(&lock);
		switch (out) {
		case OUT_OK:
			n_ok++;
			break;
		case OUT_REJECT:
			n_reject++;
			break;
		case OUT_TEMPFAIL:
			n_tempfail++;
			break;
		case OUT_OTHER:
			n_other++;
			break;
		case OUT_ERROR:
			n_error++;
			break;
		}
		if (out != OUT_ERROR)
			lat[nlat++] = t1 - t0;
		pthread_mutex_unlock(&lock);
	}
	free(c->rbuf);
	free(c);
	return NULL;
}

/* ---------------------------------------------------------------- main */

static void
parse_socket(const char *spec)
{
	if (strncmp(spec, "unix:", 5) == 0 || strncmp(spec, "local:", 6) == 0) {
		const char *path = strchr(spec, ':') + 1;

		use_unix = 1;
		if (strlen(path) >= sizeof(sun_addr.sun_path))
			die("socket path too long");
		sun_addr.sun_family = AF_UNIX;
		strcpy(sun_addr.sun_path, path);
	} else if (strncmp(spec, "inet:", 5) == 0 ||
	    strncmp(spec, "inet6:", 6) == 0) {
		char port[16], host[256];
		const char *p = strchr(spec, ':') + 1, *at = strchr(p, '@');
		struct addrinfo hints, *res;

		if (at == NULL || (size_t)(at - p) >= sizeof(port) ||
		    strlen(at + 1) >= sizeof(host))
			die("bad socket %s (inet:PORT@HOST)", spec);
		memcpy(port, p, at - p);
		port[at - p] = '\0';
		strcpy(host, at + 1);
		memset(&hints, 0, sizeof(hints));
		hints.ai_socktype = SOCK_STREAM;
		hints.ai_flags = AI_NUMERICSERV;
		if (getaddrinfo(host, port, &hints, &res) != 0)
			die("cannot resolve %s", spec);
		memcpy(&sin_addr, res->ai_addr, res->ai_addrlen);
		sin_len = res->ai_addrlen;
		freeaddrinfo(res);
	} else {
		die("bad socket %s (unix:/path or inet:PORT@HOST)", spec);
	}
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double
pct(double p)
{
	long i;

	if (nlat == 0)
		return 0;
	i = (long)(p / 100.0 * nlat + 0.5) - 1;
	if (i < 0)
		i = 0;
	if (i >= nlat)
		i = nlat - 1;
	return lat[i];
}

static void
usage(void)
{
	fprintf(stderr, "usage: mlat -s SOCKET [-n MSGS] [-c CONNS] "
	    "[-m FILE.eml] [-f FROM] [-r RCPT] [-H HELO] [-a CLIENT_IP]\n"
	    "            [-N CLIENT_NAME] [-w HOLD_S] [-T TIMEOUT_S] [-v] [-D]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	pthread_t *tids;
	pthread_attr_t attr;
	double t0, t1;
	int ch, i;

	while ((ch = getopt(argc, argv, "s:n:c:m:f:r:H:a:N:w:T:vD")) != -1) {
		switch (ch) {
		case 's': opt_socket = optarg; break;
		case 'n': opt_msgs = atol(optarg); break;
		case 'c': opt_conns = atoi(optarg); break;
		case 'm': opt_file = optarg; break;
		case 'f': opt_from = optarg; break;
		case 'r': opt_rcpt = optarg; break;
		case 'H': opt_helo = optarg; break;
		case 'a': opt_ip = optarg; break;
		case 'N': opt_name = optarg; break;
		case 'w': opt_hold = atoi(optarg); break;
		case 'T': opt_timeout = atoi(optarg); break;
		case 'v': opt_verbose = 1; break;
		case 'D': opt_nodelay = 1; break;
		default: usage();
		}
	}
	if (opt_socket == NULL || opt_msgs < 1 || opt_conns < 1)
		usage();
	if (opt_hold >= 0)
		opt_msgs = opt_conns;
	if (opt_conns > opt_msgs)
		opt_conns = (int)opt_msgs;
	parse_socket(opt_socket);
	load_message();
	lat = xmalloc(sizeof(*lat) * opt_msgs);
	tids = xmalloc(sizeof(*tids) * opt_conns);
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 256 * 1024);

	t0 = now_ms();
	for (i = 0; i < opt_conns; i++)
		if (pthread_create(&tids[i], &attr, worker, NULL) != 0)
			die("cannot start thread %d", i);
	if (opt_hold >= 0) {
		pthread_mutex_lock(&lock);
		while (arrived < opt_conns)
			pthread_cond_wait(&cond, &lock);
		pthread_mutex_unlock(&lock);
		printf("mlat: holding %d connections (errors so far: %ld)\n",
		    opt_conns, n_error);
		fflush(stdout);
		sleep((unsigned)opt_hold);
		pthread_mutex_lock(&lock);
		released = 1;
		pthread_cond_broadcast(&cond);
		pthread_mutex_unlock(&lock);
	}
	for (i = 0; i < opt_conns; i++)
		pthread_join(tids[i], NULL);
	t1 = now_ms();

	qsort(lat, nlat, sizeof(*lat), cmp_double);
	printf("mlat: socket=%s conns=%d msgs=%ld ok=%ld reject=%ld "
	    "tempfail=%ld other=%ld error=%ld secs=%.3f msgs_per_s=%.1f "
	    "p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f\n",
	    opt_socket, opt_conns, opt_msgs, n_ok, n_reject, n_tempfail,
	    n_other, n_error, (t1 - t0) / 1e3,
	    (t1 - t0) > 0 ? (n_ok + n_reject + n_tempfail + n_other) /
	    ((t1 - t0) / 1e3) : 0.0, pct(50), pct(90), pct(99),
	    nlat ? lat[nlat - 1] : 0.0);
	return n_error > 0 ? 1 : 0;
}
