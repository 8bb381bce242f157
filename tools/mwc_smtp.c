/*
 * mwc_smtp -- the --smtp probe of the self-check: connect to the
 * domain's MX like a sending server would and look at what it says.
 *
 *	mwc_smtp_probe(report, ctx, opts, "mx.example.org", "203.0.113.5");
 *
 * Greeting (220, with the MX's own name), EHLO (STARTTLS offered?),
 * MAIL FROM:<> (bounces use the null sender), RCPT TO postmaster@ and
 * abuse@ the domain (RFC 5321 section 4.5.1, RFC 2142), RCPT TO an
 * address of a domain the MX is not responsible for (--relay-rcpt:
 * an open relay accepts it), then RSET, STARTTLS and a look at the
 * certificate the MX presents (OpenSSL): chain valid against the system
 * CA store, name matching the MX host, expiry (a warning under 14
 * days), protocol and cipher; then QUIT (inside TLS).
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
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "mw_buf.h"
#include "mwc.h"

#define LINE_MAX_KEPT	512	/* bytes of a reply line we keep */
#define CERT_WARN_DAYS	14	/* warn when the certificate expires sooner */
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


/* Drive one OpenSSL call on the non-blocking socket; 1 done, -1 error. */
static int
tls_step(struct conn *c, SSL *ssl, int rc)
{
	switch (SSL_get_error(ssl, rc)) {
	case SSL_ERROR_WANT_READ:
		return wait_fd(c, POLLIN) == -1 ? -1 : 0;
	case SSL_ERROR_WANT_WRITE:
		return wait_fd(c, POLLOUT) == -1 ? -1 : 0;
	default:
		snprintf(c->err, sizeof(c->err), "%s", ERR_peek_last_error() ?
		    ERR_reason_error_string(ERR_peek_last_error()) :
		    "connection closed during the TLS handshake");
		if (c->err[0] == '\0' || strcmp(c->err, "(null)") == 0)
			snprintf(c->err, sizeof(c->err), "TLS error");
		return -1;
	}
}

/* The names a certificate is for: CN and DNS subjectAltNames. */
static void
cert_names(X509 *cert, char *out, size_t outlen)
{
	GENERAL_NAMES *sans;
	char cn[256];
	size_t o = 0;
	int i;

	out[0] = '\0';
	if (X509_NAME_get_text_by_NID(X509_get_subject_name(cert),
	    NID_commonName, cn, sizeof(cn)) > 0)
		o += (size_t)snprintf(out, outlen, "CN=%s", cn);
	sans = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	for (i = 0; sans != NULL && i < sk_GENERAL_NAME_num(sans) &&
	    o < outlen; i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(sans, i);
		const unsigned char *d;
		int len;

		if (g->type != GEN_DNS)
			continue;
		d = ASN1_STRING_get0_data(g->d.dNSName);
		len = ASN1_STRING_length(g->d.dNSName);
		o += (size_t)snprintf(out + o, outlen - o, "%sDNS:%.*s",
		    o ? ", " : "", len > 200 ? 200 : len, (const char *)d);
	}
	if (sans != NULL)
		GENERAL_NAMES_free(sans);
	for (o = 0; out[o] != '\0'; o++)
		if ((unsigned char)out[o] < 0x20 || (unsigned char)out[o] >= 0x7f)
			out[o] = '?';
}

/* A one-line X509_NAME, printable. */
static void
name_line(const X509_NAME *n, char *out, size_t outlen)
{
	size_t i;

	X509_NAME_oneline(n, out, (int)outlen);
	for (i = 0; out[i] != '\0'; i++)
		if ((unsigned char)out[i] < 0x20 || (unsigned char)out[i] >= 0x7f)
			out[i] = '?';
}

/* The certificate items, from a finished handshake. */
static void
tls_report(struct mwc_report *r, SSL *ssl, const char *mx)
{
	X509 *cert = SSL_get1_peer_certificate(ssl);
	const char *version = SSL_get_version(ssl);
	const ASN1_TIME *na;
	char names[1024], subj[512], issuer[512], fix[600], when[64];
	long verify;
	int bits = 0, days = 0, secs = 0;
	struct tm tm;

	SSL_get_cipher_bits(ssl, &bits);
	if (SSL_version(ssl) >= TLS1_2_VERSION)
		mwc_item(r, MWC_PASS, "smtp-tls-protocol", NULL, "TLS "
		    "handshake: %s, %s (%d bits)", version,
		    SSL_get_cipher_name(ssl), bits);
	else
		mwc_item(r, MWC_WARN, "smtp-tls-protocol", "offer TLSv1.2 or "
		    "newer (Postfix: smtpd_tls_protocols = >=TLSv1.2)",
		    "TLS handshake: %s, %s (%d bits): older than TLSv1.2",
		    version, SSL_get_cipher_name(ssl), bits);
	if (cert == NULL) {
		mwc_item(r, MWC_FAIL, "smtp-tls-certificate", "give the MX a "
		    "certificate (Postfix: smtpd_tls_cert_file)", "the MX "
		    "presents no certificate");
		return;
	}
	name_line(X509_get_subject_name(cert), subj, sizeof(subj));
	name_line(X509_get_issuer_name(cert), issuer, sizeof(issuer));
	cert_names(cert, names, sizeof(names));

	/* Chain: verified by OpenSSL against the system CA store. */
	verify = SSL_get_verify_result(ssl);
	if (verify == X509_V_OK)
		mwc_item(r, MWC_PASS, "smtp-tls-chain", NULL, "the certificate "
		    "chain is valid (system CA store)");
	else
		mwc_item(r, MWC_FAIL, "smtp-tls-chain", "use a certificate from "
		    "a public CA (Let's Encrypt) and serve the intermediate "
		    "certificates too (Postfix: the chain in smtpd_tls_chain_"
		    "files)", "the certificate chain does not verify: %s",
		    X509_verify_cert_error_string(verify));
	mwc_detail(r, "subject %s", subj);
	mwc_detail(r, "issuer %s", issuer);

	/* Name: the MX host name, as a sending server checks it. */
	snprintf(fix, sizeof(fix), "get a certificate for %s (a subjectAlt"
	    "Name), the name the MX record points to", mx);
	if (X509_check_host(cert, mx, 0, 0, NULL) == 1)
		mwc_item(r, MWC_PASS, "smtp-tls-name", NULL, "the certificate "
		    "is valid for the MX name %s", mx);
	else
		mwc_item(r, MWC_FAIL, "smtp-tls-name", fix, "the certificate "
		    "is not valid for the MX name %s", mx);
	mwc_detail(r, "names: %s", names[0] ? names : "none");

	/* Expiry. */
	na = X509_get0_notAfter(cert);
	when[0] = '\0';
	if (ASN1_TIME_to_tm(na, &tm) == 1)
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", &tm);
	if (!ASN1_TIME_diff(&days, &secs, NULL, na))
		mwc_item(r, MWC_FAIL, "smtp-tls-expiry", "renew the "
		    "certificate", "the certificate's expiry date is "
		    "unreadable");
	else if (days < 0 || secs < 0)
		mwc_item(r, MWC_FAIL, "smtp-tls-expiry", "renew the "
		    "certificate", "the certificate expired on %s", when);
	else if (days < CERT_WARN_DAYS)
		mwc_item(r, MWC_WARN, "smtp-tls-expiry", "renew the "
		    "certificate (certbot renew, or your CA's tool) and "
		    "reload the MTA", "the certificate expires in %d "
		    "day%s, on %s", days, days == 1 ? "" : "s", when);
	else
		mwc_item(r, MWC_PASS, "smtp-tls-expiry", NULL, "the "
		    "certificate is valid until %s (%d days)", when, days);
	X509_free(cert);
}

/*
 * STARTTLS (the 220 already read), the handshake and the report; QUIT
 * inside TLS.  Returns -1 if the connection is no longer usable.
 */
static int
tls_probe(struct mwc_report *r, struct conn *c, const char *mx)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	SSL *ssl = NULL;
	int rc, ret = -1;

	if (ctx == NULL || (ssl = SSL_new(ctx)) == NULL) {
		mwc_item(r, MWC_FAIL, "smtp-tls-protocol", NULL, "cannot set "
		    "up OpenSSL");
		goto out;
	}
	/* Verify (and report) rather than abort: we want every item. */
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	(void)SSL_CTX_set_default_verify_paths(ctx);
	(void)SSL_CTX_set_min_proto_version(ctx, 0);
	SSL_set_verify(ssl, SSL_VERIFY_NONE, NULL);
	(void)SSL_set_tlsext_host_name(ssl, mx);
	SSL_set_fd(ssl, c->fd);
	ERR_clear_error();
	while ((rc = SSL_connect(ssl)) != 1)
		if (tls_step(c, ssl, rc) == -1) {
			mwc_item(r, MWC_FAIL, "smtp-tls-protocol", "look at "
			    "the MX's log for why", "the TLS handshake after "
			    "STARTTLS fails: %s", c->err);
			goto out;
		}
	tls_report(r, ssl, mx);
	/* QUIT inside TLS; the goodbye is not waited for. */
	ERR_clear_error();
	for (;;) {
		rc = SSL_write(ssl, "QUIT\r\n", 6);
		if (rc > 0 || tls_step(c, ssl, rc) == -1)
			break;
	}
	(void)SSL_shutdown(ssl);
	ret = 0;
out:
	ERR_clear_error();
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	return ret;
}

/*
 * Open relay: a recipient of a domain the MX is not responsible for,
 * without authentication.  It must be refused; the transaction is reset
 * afterwards whatever the answer, so nothing can ever be relayed.
 */
static int
relay_probe(struct mwc_report *r, struct conn *c, struct reply *rp,
    const struct mwc_opts *o)
{
	const char *to = o->relay_rcpt != NULL ? o->relay_rcpt :
	    MWC_RELAY_RCPT;
	const char *at = strrchr(to, '@');
	char addr[320];

	if (at != NULL && strcasecmp(at + 1, o->domain) == 0) {
		mwc_item(r, MWC_SKIP, "smtp-relay", "give --relay-rcpt an "
		    "address of another domain", "the relay test address %s "
		    "is in %s itself", to, o->domain);
		return 0;
	}
	snprintf(addr, sizeof(addr), "<%s>", to);
	if (command(r, c, rp, "smtp-relay", "RCPT TO", "RCPT TO:%s",
	    addr) == -1)
		return -1;
	if (rp->code / 100 == 2)
		mwc_item(r, MWC_FAIL, "smtp-relay", "refuse mail for other "
		    "domains from clients that did not authenticate (Postfix: "
		    "smtpd_relay_restrictions = permit_mynetworks, "
		    "permit_sasl_authenticated, defer_unauth_destination; "
		    "and keep mynetworks to your own hosts)", "OPEN RELAY: "
		    "RCPT TO:%s (a domain this MX does not serve) is "
		    "accepted without authentication", addr);
	else if (rp->code / 100 == 4)
		mwc_item(r, MWC_WARN, "smtp-relay", "run the check again "
		    "later", "RCPT TO:%s is refused for now, so relaying "
		    "could not be tested: %s", addr, rp->first);
	else
		mwc_item(r, MWC_PASS, "smtp-relay", NULL, "relaying is "
		    "refused: RCPT TO:%s (another domain) gets %d", addr,
		    rp->code);
	mwc_detail(r, "<- %s", rp->first);
	return 0;
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
		if (relay_probe(r, c, &rp, o) == -1)
			goto out;
	} else
		mwc_item(r, MWC_SKIP, "smtp-relay", NULL, "relaying not "
		    "tested: MAIL FROM was refused");
	/* Never DATA: end the transaction before anything else. */
	if (command(r, c, &rp, "smtp-rset", "RSET", "%s", "RSET") == -1)
		goto out;
	if (tls) {
		if (command(r, c, &rp, "smtp-tls-protocol", "STARTTLS", "%s",
		    "STARTTLS") == -1)
			goto out;
		if (rp.code != 220) {
			mwc_item(r, MWC_FAIL, "smtp-tls-protocol", "look at "
			    "the MX's log for why", "STARTTLS is offered but "
			    "refused: %s", rp.first);
			goto quit;
		}
		(void)tls_probe(r, c, mx);
		goto out;
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
