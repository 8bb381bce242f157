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
 *	dmarc-query: NAME		(each _dmarc name the DMARC check
 *					consulted, in order: the tree walk)
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mw_config.h"
#include "mw_log.h"
#include "mw_message.h"
#include "mw_session.h"


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

/* Header fields and body of FILE to the session, as the milter would. */
static void
send_message(struct mw_session *s, const char *path)
{
	FILE *fp = fopen(path, "rb");
	struct mw_message m;
	char err[256];

	if (fp == NULL)
		die("cannot open ", path);
	if (mw_message_load(fp, &m, err, sizeof(err)) == -1)
		die("cannot read the message: ", err);
	fclose(fp);
	(void)mw_session_message(s, &m);
	mw_message_free(&m);
}

int
main(int argc, char **argv)
{
	struct mw_config *cfg;
	struct mw_ctx *ctx;
	struct mw_session *s;
	const struct mw_verdict *v;
	const char *mailfrom = "<>", *ar, *q;
	const struct mw_note *notes;
	char err[1024];
	size_t n, k;
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
	mw_session_set_explain(s, 1);	/* for the dmarc-query: lines */
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
	n = mw_session_notes(s, &notes);
	for (k = 0; k < n; k++)
		if (notes[k].kind == MW_NOTE_EVIDENCE &&
		    strcmp(notes[k].module, "dmarc") == 0 &&
		    strncmp(notes[k].text, "TXT _dmarc.", 11) == 0)
			printf("dmarc-query: %.*s\n", (int)strcspn(notes[k].text +
			    4, ":"), notes[k].text + 4);
	mw_session_free(s);
	mw_ctx_unref(ctx);
	return 0;
}
