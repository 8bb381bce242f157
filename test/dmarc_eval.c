/*
 * dmarc_eval -- run one message through the session library with given
 * SPF and DKIM results, for test/dmarc_corpus.sh (conformance data whose
 * inputs are "these domains passed SPF/DKIM", not signed messages).
 *
 *	dmarc_eval CONFIG FILE [mailfrom=ADDR] [spf=RESULT:DOMAIN]
 *	    [dkim=RESULT:DOMAIN[:SELECTOR]]...
 *
 * FILE is a message (header fields, empty line, body; LF or CRLF).  The
 * session runs as for a client 192.0.2.1 (HELO client.example, MAIL FROM
 * ADDR, default <>, RCPT <rcpt@example.net>).  SPF and DKIM results are
 * published with mw_session_set_results() after MAIL FROM, as mw_spf and
 * mw_dkim would -- CONFIG should turn those two off ([spf] enabled = no,
 * [dkim] verify = no) so that only the given results count, or leave
 * [dkim] on and give no dkim= to verify the message's own signatures.
 * Prints
 *	verdict: continue | accept | reject 550 5.7.1 TEXT | tempfail ...
 *	authres: the Authentication-Results value, on one line
 *	quarantine: REASON		(only when the message is held)
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mw_config.h"
#include "mw_log.h"
#include "mw_session.h"

#define CHUNK	65536

static void
die(const char *msg, const char *arg)
{
	fprintf(stderr, "dmarc_eval: %s%s\n", msg, arg);
	exit(2);
}

static enum mw_auth_result
result_of(const char *name)
{
	static const char *const names[] = { "none", "pass", "fail",
	    "softfail", "neutral", "temperror", "permerror", "policy" };
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(names[i], name) == 0)
			return (enum mw_auth_result)i;
	die("unknown result ", name);
	return MW_AUTH_NONE;
}

/* "spf=pass:example.org", "dkim=fail:example.org:sel": publish it. */
static void
put_result(struct mw_session *s, const char *arg)
{
	struct mw_shared_results r = *mw_session_results(s);
	char buf[600], *res, *dom, *sel;

	snprintf(buf, sizeof(buf), "%s", arg);
	if ((res = strchr(buf, '=')) == NULL ||
	    (dom = strchr(res, ':')) == NULL)
		die("want spf=RESULT:DOMAIN or dkim=RESULT:DOMAIN[:SEL]: ", arg);
	*res++ = '\0';
	*dom++ = '\0';
	if ((sel = strchr(dom, ':')) != NULL)
		*sel++ = '\0';
	if (strcmp(buf, "spf") == 0) {
		r.spf_done = 1;
		r.spf = result_of(res);
		snprintf(r.spf_domain, sizeof(r.spf_domain), "%s", dom);
	} else if (strcmp(buf, "dkim") == 0) {
		size_t k = r.n_dkim;

		if (k >= MW_MAX_DKIM_RESULTS)
			die("too many dkim= results", "");
		r.dkim_done = 1;
		r.dkim[k].result = result_of(res);
		snprintf(r.dkim[k].domain, sizeof(r.dkim[k].domain), "%s", dom);
		snprintf(r.dkim[k].selector, sizeof(r.dkim[k].selector), "%s",
		    sel ? sel : "s1");
		r.n_dkim++;
	} else
		die("unknown method ", buf);
	mw_session_set_results(s, &r);
}

static char *
slurp(const char *path, size_t *lenp)
{
	FILE *fp = fopen(path, "rb");
	char *buf = NULL;
	size_t len = 0, cap = 0, r;

	if (fp == NULL)
		die("cannot open ", path);
	for (;;) {
		if (cap - len < CHUNK) {
			cap = cap * 2 + CHUNK;
			if ((buf = realloc(buf, cap + 1)) == NULL)
				die("out of memory", "");
		}
		if ((r = fread(buf + len, 1, cap - len, fp)) == 0)
			break;
		len += r;
	}
	fclose(fp);
	buf[len] = '\0';
	*lenp = len;
	return buf;
}

/* One header field "Name: value\n\tmore" (CRs dropped) to the session. */
static void
send_field(struct mw_session *s, const char *line, size_t len)
{
	const char *colon = memchr(line, ':', len);
	char *name, *v;
	size_t i, o;

	if (colon == NULL || colon == line)
		return;
	if ((name = strndup(line, (size_t)(colon - line))) == NULL ||
	    (v = malloc(len + 1)) == NULL)
		die("out of memory", "");
	for (i = (size_t)(colon - line) + 1, o = 0; i < len; i++)
		if (line[i] != '\r')
			v[o++] = line[i];
	v[o] = '\0';
	(void)mw_session_header(s, name, v);
	free(name);
	free(v);
}

/* Header fields and body of FILE to the session; the body in CRLF. */
static void
send_message(struct mw_session *s, const char *path)
{
	size_t len, i = 0, start, o;
	char *buf = slurp(path, &len);
	unsigned char *body;

	while (i < len) {
		size_t eol;

		if (buf[i] == '\n' || (buf[i] == '\r' && i + 1 < len &&
		    buf[i + 1] == '\n')) {
			i += buf[i] == '\r' ? 2 : 1;
			break;
		}
		start = i;
		for (;;) {
			while (i < len && buf[i] != '\n')
				i++;
			eol = i;
			if (i < len)
				i++;
			if (i >= len || (buf[i] != ' ' && buf[i] != '\t'))
				break;
		}
		send_field(s, buf + start, eol - start);
	}
	(void)mw_session_eoh(s);
	if ((body = malloc((len - i) * 2 + 1)) == NULL)
		die("out of memory", "");
	for (o = 0; i < len; i++) {
		if (buf[i] == '\n' && (o == 0 || body[o - 1] != '\r'))
			body[o++] = '\r';
		body[o++] = (unsigned char)buf[i];
	}
	for (i = 0; i < o; i += CHUNK)
		(void)mw_session_body(s, body + i, o - i < CHUNK ? o - i :
		    CHUNK);
	free(body);
	free(buf);
}

int
main(int argc, char **argv)
{
	struct mw_config *cfg;
	struct mw_ctx *ctx;
	struct mw_session *s;
	const struct mw_verdict *v;
	const char *mailfrom = "<>", *ar, *q;
	char err[1024];
	int i;

	if (argc < 3) {
		fprintf(stderr, "usage: dmarc_eval CONFIG FILE [mailfrom=ADDR] "
		    "[spf=R:DOMAIN] [dkim=R:DOMAIN[:SEL]]...\n");
		return 2;
	}
	mw_log_open("dmarc_eval", 0, getenv("MW_DEBUG") ? LOG_DEBUG : LOG_ERR,
	    1);
	if (mw_config_load(argv[1], &cfg, err, sizeof(err)) == -1)
		die("", err);
	if (mw_ctx_new(cfg, &ctx, err, sizeof(err)) == -1)
		die("", err);
	if ((s = mw_session_new(ctx)) == NULL)
		die("out of memory", "");
	for (i = 3; i < argc; i++)
		if (strncmp(argv[i], "mailfrom=", 9) == 0)
			mailfrom = argv[i] + 9;
	(void)mw_session_connect(s, "192.0.2.1", "client.example", 25);
	(void)mw_session_helo(s, "client.example");
	(void)mw_session_mail(s, mailfrom, NULL, 0);
	for (i = 3; i < argc; i++)
		if (strncmp(argv[i], "mailfrom=", 9) != 0)
			put_result(s, argv[i]);
	(void)mw_session_rcpt(s, "<rcpt@example.net>", NULL, 0);
	send_message(s, argv[2]);
	v = mw_session_eom(s);
	if (v->kind == MW_CONTINUE || v->kind == MW_ACCEPT)
		printf("verdict: %s\n", mw_verdict_name(v->kind));
	else
		printf("verdict: %s %d %s %s\n", mw_verdict_name(v->kind),
		    v->code, v->xcode, v->text);
	if ((ar = mw_session_authres(s)) != NULL) {
		printf("authres: ");
		for (; *ar != '\0'; ar++)
			if (*ar == '\n')
				;
			else
				putchar(*ar == '\t' ? ' ' : *ar);
		putchar('\n');
	}
	if ((q = mw_session_quarantine(s)) != NULL)
		printf("quarantine: %s\n", q);
	mw_session_free(s);
	mw_ctx_unref(ctx);
	return 0;
}
