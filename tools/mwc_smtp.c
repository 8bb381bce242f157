/*
 * mwc_smtp -- the --smtp probe of the self-check: connect to the
 * domain's MX like a sending server would and look at what it says.
 *
 *	mwc_smtp_probe(report, ctx, opts, "mx.example.org", "203.0.113.5");
 *
 * Greeting (220, with the MX's own name), EHLO (STARTTLS offered?),
 * MAIL FROM:<> (bounces use the null sender), RCPT TO postmaster@ and
 * abuse@ the domain (RFC 5321 section 4.5.1, RFC 2142), then QUIT.
 * Never DATA: no message is ever sent.  Every read and write is
 * bounded by --smtp-timeout; replies are read line by line into fixed
 * buffers, so a hostile server gets nothing but a failed item.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/socket.h>
#include <netdb.h>
#include <netinet/in.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "mw_buf.h"
#include "mwc.h"

#define LINE_MAX_KEPT	512	/* bytes of a reply line we keep */
#define REPLY_LINES_MAX	64	/* lines of one reply */

struct conn {
	int		fd;
	int		timeout_ms;
	char		buf[4096];
	size_t		len;
	char		err[256];
};

struct reply {
	int		code;		/* 0: no (valid) reply */
	char		first[LINE_MAX_KEPT + 1];	/* first line, no CRLF */
	struct mw_buf	lines;		/* every line, "\n"-separated */
};

static int
wait_fd(struct conn *c, short events)
{
	struct pollfd p = { c->fd, events, 0 };
	int n;

	do
		n = poll(&p, 1, c->timeout_ms);
	while (n == -1 && errno == EINTR);
	if (n == 0) {
		snprintf(c->err, sizeof(c->err), "timed out after %d s",
		    c->timeout_ms / 1000);
		return -1;
	}
	if (n == -1) {
		snprintf(c->err, sizeof(c->err), "%s", strerror(errno));
		return -1;
	}
	return 0;
}

static int
connect_to(struct conn *c, const char *addr, int port)
{
	struct addrinfo hints, *res = NULL;
	char serv[16];
	socklen_t len;
	int rc, soerr = 0;

	memset(&hints, 0, sizeof(hints));
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
	hints.ai_socktype = SOCK_STREAM;
	snprintf(serv, sizeof(serv), "%d", port);
	if ((rc = getaddrinfo(addr, serv, &hints, &res)) != 0) {
		snprintf(c->err, sizeof(c->err), "%s", gai_strerror(rc));
		return -1;
	}
	c->fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0);
	if (c->fd == -1) {
		snprintf(c->err, sizeof(c->err), "%s", strerror(errno));
		freeaddrinfo(res);
		return -1;
	}
	rc = connect(c->fd, res->ai_addr, res->ai_addrlen);
	freeaddrinfo(res);
	if (rc == -1 && errno != EINPROGRESS) {
		snprintf(c->err, sizeof(c->err), "%s", strerror(errno));
		return -1;
	}
	if (rc == -1) {
		if (wait_fd(c, POLLOUT) == -1)
			return -1;
		len = sizeof(soerr);
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) ==
		    -1 || soerr != 0) {
			snprintf(c->err, sizeof(c->err), "%s",
			    strerror(soerr ? soerr : errno));
			return -1;
		}
	}
	return 0;
}

/* One line without CRLF into out (at most outlen-1 bytes kept). */
static int
read_line(struct conn *c, char *out, size_t outlen)
{
	size_t o = 0, i;
	ssize_t n;

	for (;;) {
		for (i = 0; i < c->len; i++)
			if (c->buf[i] == '\n')
				break;
		/* Keep what fits, drop the rest of an over-long line. */
		{
			size_t take = i, k;

			for (k = 0; k < take; k++)
				if (o + 1 < outlen)
					out[o++] = c->buf[k];
			if (i < c->len) {
				memmove(c->buf, c->buf + i + 1, c->len - i - 1);
				c->len -= i + 1;
				break;
			}
			c->len = 0;
		}
		if (wait_fd(c, POLLIN) == -1)
			return -1;
		n = read(c->fd, c->buf, sizeof(c->buf));
		if (n == -1 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0) {
			snprintf(c->err, sizeof(c->err), "%s", n == 0 ?
			    "connection closed by the server" :
			    strerror(errno));
			return -1;
		}
		c->len = (size_t)n;
	}
	if (o > 0 && out[o - 1] == '\r')
		o--;
	out[o] = '\0';
	return 0;
}

/* A whole (multi-line) reply; -1 on I/O error or a malformed line. */
static int
read_reply(struct conn *c, struct reply *r)
{
	char line[LINE_MAX_KEPT + 1];
	int nlines = 0, code;

	r->code = 0;
	r->first[0] = '\0';
	mw_buf_reset(&r->lines);
	for (;;) {
		if (read_line(c, line, sizeof(line)) == -1)
			return -1;
		if (strlen(line) < 3 || line[0] < '2' || line[0] > '5' ||
		    line[1] < '0' || line[1] > '9' || line[2] < '0' ||
		    line[2] > '9' || (line[3] != '\0' && line[3] != ' ' &&
		    line[3] != '-')) {
			snprintf(c->err, sizeof(c->err), "not an SMTP reply: "
			    "\"%.80s\"", line);
			return -1;
		}
		code = atoi(line);
		if (nlines == 0) {
			r->code = code;
			snprintf(r->first, sizeof(r->first), "%s", line);
		}
		mw_buf_printf(&r->lines, "%s\n", line);
		if (line[3] != '-')
			return 0;
		if (++nlines >= REPLY_LINES_MAX) {
			snprintf(c->err, sizeof(c->err), "reply of more than "
			    "%d lines", REPLY_LINES_MAX);
			return -1;
		}
	}
}

static int
send_line(struct conn *c, const char *fmt, ...)
{
	char buf[600];
	size_t len, off = 0;
	ssize_t n;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf) - 2, fmt, ap);
	va_end(ap);
	len = strlen(buf);
	buf[len++] = '\r';
	buf[len++] = '\n';
	while (off < len) {
		if (wait_fd(c, POLLOUT) == -1)
			return -1;
		n = write(c->fd, buf + off, len - off);
		if (n == -1 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0) {
			snprintf(c->err, sizeof(c->err), "%s", strerror(errno));
			return -1;
		}
		off += (size_t)n;
	}
	return 0;
}

/* A command and its reply; -1 on I/O error (item added). */
static int
command(struct mwc_report *r, struct conn *c, struct reply *rp,
    const char *id, const char *what, const char *fmt, const char *arg)
{
	if (send_line(c, fmt, arg) == -1 || read_reply(c, rp) == -1) {
		mwc_item(r, MWC_FAIL, id, "look at the MX's log for why",
		    "%s: %s", what, c->err);
		return -1;
	}
	return 0;
}

/* EHLO keywords, one line: "PIPELINING SIZE STARTTLS ...". */
static void
ehlo_keywords(const struct reply *rp, char *out, size_t outlen, int *tls)
{
	const char *p = mw_buf_str(&rp->lines), *nl;
	size_t o = 0;
	int first = 1;

	*tls = 0;
	out[0] = '\0';
	for (; (nl = strchr(p, '\n')) != NULL; p = nl + 1) {
		size_t n;

		if (first) {
			first = 0;	/* "250-name greets you" */
			continue;
		}
		if (nl - p < 4)
			continue;
		n = strcspn(p + 4, " \n");
		if (n == 8 && strncasecmp(p + 4, "STARTTLS", 8) == 0)
			*tls = 1;
		if (o + n + 2 < outlen) {
			o += (size_t)snprintf(out + o, outlen - o, "%s%.*s",
			    o ? " " : "", (int)n, p + 4);
		}
	}
}

static void
rcpt(struct mwc_report *r, struct conn *c, struct reply *rp, const char *who,
    const char *domain, const char *rfc)
{
	char addr[320], id[32], fix[600];

	snprintf(addr, sizeof(addr), "<%s@%s>", who, domain);
	snprintf(id, sizeof(id), "smtp-%s", who);
	if (command(r, c, rp, id, "RCPT TO", "RCPT TO:%s", addr) == -1)
		return;
	snprintf(fix, sizeof(fix), "accept mail to %s@%s (%s): an alias to "
	    "a mailbox someone reads", who, domain, rfc);
	if (rp->code / 100 == 2)
		mwc_item(r, MWC_PASS, id, NULL, "RCPT TO:%s is accepted", addr);
	else
		mwc_item(r, rp->code / 100 == 4 ? MWC_WARN : MWC_FAIL, id, fix,
		    "RCPT TO:%s is refused: %s", addr, rp->first);
	mwc_detail(r, "<- %s", rp->first);
}

void
mwc_smtp_probe(struct mwc_report *r, struct mw_ctx *ctx,
    const struct mwc_opts *o, const char *mx, const char *addr)
{
	struct conn *c;
	struct reply rp = { 0, "", MW_BUF_INIT(16 * 1024) };
	char name[256], ehlo[256], kw[1024], fix[600], where[300];
	int tls, mail_ok;
	size_t n;

	(void)ctx;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return;
	c->fd = -1;
	c->timeout_ms = o->smtp_timeout * 1000;
	snprintf(where, sizeof(where), "%s [%s]:%d", mx, addr, o->smtp_port);
	if (connect_to(c, addr, o->smtp_port) == -1) {
		snprintf(fix, sizeof(fix), "let TCP port %d in to the MX, and "
		    "check that the MTA runs", o->smtp_port);
		mwc_item(r, MWC_FAIL, "smtp-connect", fix, "cannot connect to "
		    "%s: %s", where, c->err);
		goto out;
	}
	mwc_item(r, MWC_PASS, "smtp-connect", NULL, "connected to %s", where);

	/* Greeting: "220 mx.example.org ESMTP ..." */
	if (read_reply(c, &rp) == -1) {
		mwc_item(r, MWC_FAIL, "smtp-greeting", "look at the MX's log "
		    "for why", "no greeting: %s", c->err);
		goto out;
	}
	if (rp.code != 220) {
		mwc_item(r, MWC_FAIL, "smtp-greeting", "look at the MX's log "
		    "for why", "the MX does not greet with 220: %s", rp.first);
		goto quit;
	}
	n = strcspn(rp.first + 4, " ");
	snprintf(name, sizeof(name), "%.*s", (int)(n < sizeof(name) ? n :
	    sizeof(name) - 1), rp.first + 4);
	snprintf(fix, sizeof(fix), "make the MX greet with its own name, %s "
	    "(Postfix: myhostname = %s)", mx, mx);
	if (strcasecmp(name, mx) == 0)
		mwc_item(r, MWC_PASS, "smtp-greeting", NULL, "the greeting "
		    "names the MX: %s", name);
	else
		mwc_item(r, MWC_WARN, "smtp-greeting", fix, "the greeting "
		    "names %s, not the MX name %s", name[0] ? name : "nothing",
		    mx);
	mwc_detail(r, "<- %s", rp.first);

	/* EHLO with the name given, else this host's name. */
	if (o->helo != NULL)
		snprintf(ehlo, sizeof(ehlo), "%s", o->helo);
	else if (gethostname(ehlo, sizeof(ehlo)) != 0 || ehlo[0] == '\0')
		snprintf(ehlo, sizeof(ehlo), "mailwarden-check.invalid");
	ehlo[sizeof(ehlo) - 1] = '\0';
	if (command(r, c, &rp, "smtp-ehlo", "EHLO", "EHLO %s", ehlo) == -1)
		goto out;
	if (rp.code != 250) {
		mwc_item(r, MWC_FAIL, "smtp-starttls", "let the MX take EHLO "
		    "(ESMTP): TLS and every extension need it", "EHLO %s is "
		    "refused: %s", ehlo, rp.first);
		goto quit;
	}
	ehlo_keywords(&rp, kw, sizeof(kw), &tls);
	if (tls)
		mwc_item(r, MWC_PASS, "smtp-starttls", NULL, "STARTTLS is "
		    "offered");
	else
		mwc_item(r, MWC_FAIL, "smtp-starttls", "turn TLS on (Postfix: "
		    "smtpd_tls_cert_file, smtpd_tls_key_file, "
		    "smtpd_tls_security_level = may)", "no STARTTLS: mail to "
		    "%s travels in clear text, and receivers such as Gmail "
		    "flag it", o->domain);
	mwc_detail(r, "EHLO keywords: %s", kw[0] ? kw : "none");

	/* The null sender: bounces come from it. */
	if (command(r, c, &rp, "smtp-null-sender", "MAIL FROM", "MAIL FROM:%s",
	    "<>") == -1)
		goto out;
	mail_ok = rp.code / 100 == 2;
	if (mail_ok)
		mwc_item(r, MWC_PASS, "smtp-null-sender", NULL, "MAIL FROM:<> "
		    "(the null sender of bounces) is accepted");
	else
		mwc_item(r, rp.code / 100 == 4 ? MWC_WARN : MWC_FAIL,
		    "smtp-null-sender", "accept the null sender: bounces and "
		    "delivery reports use it (RFC 5321 section 4.5.5)",
		    "MAIL FROM:<> is refused: %s", rp.first);
	mwc_detail(r, "<- %s", rp.first);
	if (mail_ok) {
		rcpt(r, c, &rp, "postmaster", o->domain, "RFC 5321 section "
		    "4.5.1");
		rcpt(r, c, &rp, "abuse", o->domain, "RFC 2142");
	}
quit:
	/* Never DATA: QUIT, and do not wait long for the goodbye. */
	if (send_line(c, "QUIT") == 0) {
		c->timeout_ms = c->timeout_ms < 2000 ? c->timeout_ms : 2000;
		(void)read_reply(c, &rp);
	}
out:
	if (c->fd != -1)
		close(c->fd);
	mw_buf_free(&rp.lines);
	free(c);
}
