/*
 * mwc_explain -- explain mode of mailwarden-check: "why was this message
 * rejected / greylisted?"
 *
 * Runs one SMTP transaction through the session library exactly as the
 * daemon does (same configuration, resolver and check modules, same
 * order of calls as milter/mailwarden.c), with two session switches:
 * explain (checks keep notes of their evidence, and every action is
 * recorded) and read-only (greylisting looks but stores nothing) unless
 * --record.  Then prints each SMTP step with the notes made during it
 * and the answer, the results (our Authentication-Results), the score,
 * the final SMTP reply and the verdict; --json prints the same as JSON.
 *
 *	rc = mwc_explain(ctx, &opts);	-- 0 accept, 75 tempfail, 69 reject
 *
 * Like an MTA with a milter: a refused connect, HELO or MAIL ends the
 * transaction; refused recipients are dropped and the message goes on
 * with the others (none left: no DATA); a refusal during DATA ends it.
 */
#include "config.h"

#include <sys/stat.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mw_buf.h"
#include "mw_session.h"
#include "mw_text.h"
#include "mwc.h"

#define MAX_STEPS	(16 + MWC_MAX_RCPTS)

struct step {
	char			 cmd[600];	/* what the client did */
	const char		*phase;		/* for --json */
	size_t			 note_lo, note_hi;	/* notes made meanwhile */
	struct mw_verdict	 v;
};

struct explain {
	const struct mwc_opts	*o;
	struct mw_session	*s;
	const struct mw_config	*cfg;
	struct step		 steps[MAX_STEPS];
	size_t			 n_steps;
	struct step		*cur;
	int			 n_accepted;	/* recipients */
	int			 stopped;	/* refused before the end */
	struct mw_verdict	 final;
	int			 reached_eom;
	int			 synthetic;	/* made-up message */
	const struct mw_verdict	*last;		/* of the data phase */
	struct mw_msg_stats	 msg;
	char			*authres;	/* copy, after the transaction */
	int			 skipped;	/* trusted / authenticated */
	int			 trusted;
};

static size_t
n_notes(struct explain *e)
{
	const struct mw_note *v;

	return mw_session_notes(e->s, &v);
}

static struct step *
step_begin(struct explain *e, const char *phase, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static struct step *
step_begin(struct explain *e, const char *phase, const char *fmt, ...)
{
	struct step *st;
	va_list ap;

	if (e->n_steps >= MAX_STEPS)
		st = &e->steps[MAX_STEPS - 1];	/* cannot happen: bounded */
	else
		st = &e->steps[e->n_steps++];
	memset(st, 0, sizeof(*st));
	va_start(ap, fmt);
	vsnprintf(st->cmd, sizeof(st->cmd), fmt, ap);
	va_end(ap);
	st->phase = phase;
	st->note_lo = n_notes(e);
	e->cur = st;
	return st;
}

static void
step_end(struct explain *e, const struct mw_verdict *v)
{
	e->cur->note_hi = n_notes(e);
	e->cur->v = *v;
}

static int
refused(const struct mw_verdict *v)
{
	return v->kind == MW_REJECT || v->kind == MW_TEMPFAIL;
}

/* ---- the message -------------------------------------------------------- */

static int
cb_header(void *arg, const char *name, const char *value)
{
	struct explain *e = arg;

	e->last = mw_session_header(e->s, name, value);
	return refused(e->last) ? -1 : 0;
}

static int
cb_eoh(void *arg)
{
	struct explain *e = arg;

	e->last = mw_session_eoh(e->s);
	step_end(e, e->last);
	if (refused(e->last))
		return -1;
	step_begin(e, "body", "body");
	return 0;
}

static int
cb_body(void *arg, const unsigned char *buf, size_t len)
{
	struct explain *e = arg;

	e->last = mw_session_body(e->s, buf, len);
	return refused(e->last) ? -1 : 0;
}

/*
 * A minimal message when none is given: From = the envelope sender
 * (for the null sender, MAILER-DAEMON at the HELO name).
 */
static FILE *
synthetic_message(struct explain *e, char **mem)
{
	const struct mwc_opts *o = e->o;
	struct mw_buf b = MW_BUF_INIT(8192);
	const char *from;
	FILE *fp;

	from = mw_session_mail_from(e->s);
	if (from != NULL && from[0] != '\0')
		mw_buf_printf(&b, "From: <%s>\r\n", from);
	else if (o->helo != NULL && strchr(o->helo, '.') != NULL &&
	    strchr(o->helo, '\n') == NULL && strchr(o->helo, '\r') == NULL)
		/* A bounce: From the mailer daemon of the sending host. */
		mw_buf_printf(&b, "From: <MAILER-DAEMON@%s>\r\n", o->helo);
	mw_buf_printf(&b, "To: <%s>\r\n", o->rcpts[0]);
	mw_buf_printf(&b, "Subject: mailwarden-check test message\r\n"
	    "Message-ID: <mailwarden-check@%s>\r\n\r\n"
	    "A test message made up by mailwarden-check.\r\n",
	    e->cfg->authserv_id);
	*mem = strdup(mw_buf_str(&b));
	mw_buf_free(&b);
	if (*mem == NULL)
		return NULL;
	fp = fmemopen(*mem, strlen(*mem), "r");
	return fp;
}

static int
run_data(struct explain *e, FILE *fp)
{
	struct mw_msg_cb cb = { cb_header, cb_eoh, cb_body, e };
	char err[256];
	struct step *hs, *bs;
	size_t hidx;

	hs = step_begin(e, "header", "header");
	hidx = (size_t)(hs - e->steps);
	e->last = NULL;
	if (mw_message_feed(fp, &cb, &e->msg, err, sizeof(err)) == -1) {
		fprintf(stderr, "mailwarden-check: %s: %s\n", e->o->message,
		    err);
		return -1;
	}
	hs = &e->steps[hidx];
	snprintf(hs->cmd, sizeof(hs->cmd), "header: %lu field%s%s",
	    e->msg.n_headers, e->msg.n_headers == 1 ? "" : "s",
	    e->synthetic ? " (no message given: a minimal one made up, "
	    "From: the envelope sender)" : "");
	if (e->msg.n_truncated > 0) {
		size_t l = strlen(hs->cmd);

		snprintf(hs->cmd + l, sizeof(hs->cmd) - l, ", %lu cut at %d "
		    "bytes as Postfix's header_size_limit does",
		    e->msg.n_truncated, MW_MSG_HEADER_MAX);
	}
	if (e->cur == hs) {
		/* Stopped in the header (or an empty message, eoh given). */
		if (e->last == NULL)
			e->last = mw_session_verdict(e->s);
		step_end(e, e->last);
	} else {
		bs = e->cur;
		snprintf(bs->cmd, sizeof(bs->cmd), "body: %llu byte%s in %lu "
		    "chunk%s", e->msg.body_bytes, e->msg.body_bytes == 1 ?
		    "" : "s", e->msg.n_chunks, e->msg.n_chunks == 1 ? "" : "s");
		if (e->last == NULL || e->msg.n_chunks == 0) {
			static const struct mw_verdict cont;

			step_end(e, e->last != NULL ? e->last : &cont);
		} else
			step_end(e, e->last);
	}
	return e->msg.stopped ? 1 : 0;
}

/* ---- the transaction ---------------------------------------------------- */

static void
stop_with(struct explain *e, const struct mw_verdict *v)
{
	e->stopped = 1;
	e->final = *v;
}

static int
run(struct explain *e)
{
	const struct mwc_opts *o = e->o;
	const struct mw_verdict *v;
	struct mw_verdict first_temp, first_rej;
	struct stat sb;
	FILE *fp = NULL;
	char *mem = NULL, from[600], sizearg[40];
	char *args[1];
	size_t nargs = 0;
	int i, rc;

	memset(&first_temp, 0, sizeof(first_temp));
	memset(&first_rej, 0, sizeof(first_rej));

	step_begin(e, "connect", "connect from %s%s%s%s", o->ip,
	    o->name ? " (client name " : " (client name unknown",
	    o->name ? o->name : "", ")");
	v = mw_session_connect(e->s, o->ip, o->name, 25);
	step_end(e, v);
	e->trusted = mw_session_trusted(e->s);
	if (refused(v)) {
		stop_with(e, v);
		return 0;
	}
	if (o->helo != NULL) {
		step_begin(e, "helo", "EHLO %s", o->helo);
		v = mw_session_helo(e->s, o->helo);
		step_end(e, v);
		if (refused(v)) {
			stop_with(e, v);
			return 0;
		}
	}
	/* Open the message first: its size goes into MAIL FROM SIZE=. */
	if (o->message != NULL && strcmp(o->message, "-") == 0)
		fp = stdin;
	else if (o->message != NULL) {
		if ((fp = fopen(o->message, "r")) == NULL) {
			fprintf(stderr, "mailwarden-check: %s: %s\n",
			    o->message, strerror(errno));
			return -2;
		}
		if (fstat(fileno(fp), &sb) == 0 && S_ISREG(sb.st_mode)) {
			snprintf(sizearg, sizeof(sizearg), "SIZE=%lld",
			    (long long)sb.st_size);
			args[nargs++] = sizearg;
		}
	}
	if (o->auth != NULL)
		mw_session_set_auth(e->s, o->auth);
	snprintf(from, sizeof(from), "<%s>", o->from);
	step_begin(e, "mail", "MAIL FROM:%s%s%s%s", from, nargs ? " " : "",
	    nargs ? sizearg : "", o->auth ? " (authenticated)" : "");
	v = mw_session_mail(e->s, from, args, nargs);
	step_end(e, v);
	e->skipped = mw_session_skips_inbound(e->s);
	if (refused(v)) {
		stop_with(e, v);
		goto abort;
	}
	for (i = 0; i < o->n_rcpts; i++) {
		char to[600];

		snprintf(to, sizeof(to), "<%s>", o->rcpts[i]);
		step_begin(e, "rcpt", "RCPT TO:%s", to);
		v = mw_session_rcpt(e->s, to, NULL, 0);
		step_end(e, v);
		if (v->kind == MW_TEMPFAIL && first_temp.kind == MW_CONTINUE)
			first_temp = *v;
		else if (v->kind == MW_REJECT && first_rej.kind == MW_CONTINUE)
			first_rej = *v;
		else if (!refused(v))
			e->n_accepted++;
	}
	if (e->n_accepted == 0) {
		/* A retry may get through if any recipient was tempfailed. */
		stop_with(e, first_temp.kind != MW_CONTINUE ? &first_temp :
		    &first_rej);
		goto abort;
	}
	if (o->no_data) {
		e->stopped = 1;
		memset(&e->final, 0, sizeof(e->final));
		goto abort;
	}
	if (fp == NULL) {
		e->synthetic = 1;
		if ((fp = synthetic_message(e, &mem)) == NULL) {
			fprintf(stderr, "mailwarden-check: out of memory\n");
			free(mem);
			return -1;
		}
	}
	rc = run_data(e, fp);
	if (rc == -1)
		goto fail;
	if (rc == 1) {
		stop_with(e, e->last);
		goto abort;
	}
	step_begin(e, "eom", "end of message");
	v = mw_session_eom(e->s);
	step_end(e, v);
	e->final = *v;
	e->reached_eom = 1;
	goto done;
abort:
	/* What the MTA does after a refusal: RSET (or QUIT). */
	mw_session_abort(e->s);
done:
	if (mw_session_authres(e->s) != NULL)
		e->authres = strdup(mw_session_authres(e->s));
	if (fp != NULL && fp != stdin)
		fclose(fp);
	free(mem);
	return 0;
fail:
	if (fp != NULL && fp != stdin)
		fclose(fp);
	free(mem);
	return -1;
}

/* ---- output ------------------------------------------------------------- */

static const char *
action_word(const struct mw_action *a)
{
	switch (a->kind) {
	case MW_ACT_ACCEPT: return "accept";
	case MW_ACT_SCORE: return "score";
	case MW_ACT_TEMPFAIL: return "tempfail";
	case MW_ACT_REJECT: return "reject";
	}
	return "?";
}

/* "550 5.7.1 text" */
static void
reply_line(char *out, size_t outlen, const struct mw_verdict *v)
{
	char text[sizeof(v->text)];

	mw_milter_text(text, sizeof(text), v->text);
	snprintf(out, outlen, "%d%s%s %s", v->code, v->xcode[0] ? " " : "",
	    v->xcode, text);
}

static const char *
held_hint(const struct mw_note *n)
{
	if (n->action.kind != MW_ACT_REJECT &&
	    n->action.kind != MW_ACT_TEMPFAIL)
		return "";
	if (strcmp(n->phase, "connect") == 0 || strcmp(n->phase, "helo") ==
	    0 || strcmp(n->phase, "mail") == 0)
		return " (held: given at RCPT)";
	if (strcmp(n->phase, "header") == 0 || strcmp(n->phase, "eoh") == 0 ||
	    strcmp(n->phase, "body") == 0)
		return " (held: given at end of message)";
	return "";
}

static void
note_text(const struct mw_note *n, char *out, size_t outlen)
{
	char r[600];

	switch (n->kind) {
	case MW_NOTE_EVIDENCE:
		snprintf(out, outlen, "%s", n->text);
		break;
	case MW_NOTE_ACTION:
		if (n->action.kind == MW_ACT_SCORE)
			snprintf(out, outlen, "=> score %+g: %s",
			    n->action.score, n->text);
		else if (n->action.kind == MW_ACT_ACCEPT)
			snprintf(out, outlen, "=> accept (annotate only): %s",
			    n->text);
		else {
			reply_line(r, sizeof(r), &n->verdict);
			snprintf(out, outlen, "=> %s %s%s",
			    action_word(&n->action), r, held_hint(n));
		}
		break;
	case MW_NOTE_REFUSE:
		reply_line(r, sizeof(r), &n->verdict);
		snprintf(out, outlen, "=> %s %s (answered at once)",
		    mw_verdict_name(n->verdict.kind), r);
		break;
	}
}

static enum mwc_status
verdict_status(const struct mw_verdict *v)
{
	return v->kind == MW_REJECT ? MWC_FAIL : v->kind == MW_TEMPFAIL ?
	    MWC_WARN : MWC_PASS;
}

static double
total_score(struct explain *e, struct mw_buf *why)
{
	const struct mw_note *nv;
	size_t i, n = mw_session_notes(e->s, &nv);
	double sum = 0;

	for (i = 0; i < n; i++) {
		if (nv[i].kind != MW_NOTE_ACTION ||
		    nv[i].action.kind != MW_ACT_SCORE)
			continue;
		sum += nv[i].action.score;
		if (why != NULL)
			mw_buf_printf(why, "%s%s %+g", why->len ? ", " : "",
			    nv[i].text, nv[i].action.score);
	}
	return sum;
}

static int
exit_code(const struct explain *e)
{
	if (e->final.kind == MW_REJECT)
		return MWC_EXIT_REJECT;
	if (e->final.kind == MW_TEMPFAIL)
		return MWC_EXIT_TEMPFAIL;
	return MWC_EXIT_ACCEPT;
}

static const char *
final_word(const struct explain *e)
{
	if (e->final.kind == MW_REJECT)
		return "reject";
	if (e->final.kind == MW_TEMPFAIL)
		return "tempfail";
	return e->stopped ? "accept (recipients; no DATA sent)" : "accept";
}

struct result_print {
	FILE	*fp;
	int	 n;
};

static void
print_result_line(void *arg, const struct mwc_resinfo *ri)
{
	struct result_print *rp = arg;

	rp->n++;
	fputs("  ", rp->fp);
	mwc_print_safe(rp->fp, ri->text);
	fputc('\n', rp->fp);
}

static void
print_text(struct explain *e)
{
	const struct mwc_opts *o = e->o;
	const struct mw_note *nv;
	const struct mw_hdr_change *c;
	struct mw_buf why = MW_BUF_INIT(8192);
	char line[1200], r[600];
	size_t i, j, nc;
	double score;
	FILE *fp = stdout;

	mw_session_notes(e->s, &nv);
	fprintf(fp, "%smailwarden-check%s: one transaction as mailwarden "
	    "(%s, authserv-id %s) sees it\n", mwc_c_bold(o), mwc_c_off(o),
	    o->config, e->cfg->authserv_id);
	if (e->cfg->dry_run)
		fprintf(fp, "note: dry_run = yes: the daemon refuses nothing, "
		    "it only logs and adds X-Mailwarden-Dry-Run\n");
	if (!o->record)
		fprintf(fp, "note: read-only: greylisting and the DMARC "
		    "history record nothing (--record to let them)\n");
	fputc('\n', fp);
	for (i = 0; i < e->n_steps; i++) {
		const struct step *st = &e->steps[i];

		fprintf(fp, "%s", mwc_c_bold(o));
		mwc_print_safe(fp, st->cmd);
		fprintf(fp, "%s\n", mwc_c_off(o));
		for (j = st->note_lo; j < st->note_hi; j++) {
			note_text(&nv[j], line, sizeof(line));
			fprintf(fp, "  %-9s ", nv[j].module);
			if (nv[j].kind != MW_NOTE_EVIDENCE)
				fputs(mwc_c_status(o, nv[j].action.kind ==
				    MW_ACT_SCORE || nv[j].action.kind ==
				    MW_ACT_ACCEPT ? MWC_INFO :
				    verdict_status(&nv[j].verdict)), fp);
			mwc_print_safe(fp, line);
			fprintf(fp, "%s\n", nv[j].kind != MW_NOTE_EVIDENCE ?
			    mwc_c_off(o) : "");
		}
		if (refused(&st->v)) {
			reply_line(r, sizeof(r), &st->v);
			fprintf(fp, "  %s-> %s %s%s\n", mwc_c_status(o,
			    verdict_status(&st->v)), mw_verdict_name(
			    st->v.kind), r, mwc_c_off(o));
		} else
			fprintf(fp, "  -> continue\n");
	}
	if (e->reached_eom && !refused(&e->final)) {
		nc = mw_session_changes(e->s, &c);
		for (i = 0; i < nc; i++) {
			if (c[i].op == MW_HDR_DELETE)
				fprintf(fp, "  header: removes %s #%d (it "
				    "claims our authserv-id: forged)\n",
				    c[i].name, c[i].index);
			else if (c[i].op == MW_HDR_INSERT && e->authres !=
			    NULL && strcmp(c[i].value, e->authres) == 0)
				fprintf(fp, "  header: inserts %s at the top "
				    "(below)\n", c[i].name);
			else {
				fprintf(fp, "  header: %s %s: ", c[i].op ==
				    MW_HDR_INSERT ? "inserts" : "adds",
				    c[i].name);
				mwc_print_folded(fp, c[i].value);
				fputc('\n', fp);
			}
		}
	}
	if (e->stopped && e->n_accepted == 0 && e->n_steps > 0 &&
	    strcmp(e->steps[e->n_steps - 1].phase, "rcpt") == 0)
		fprintf(fp, "no recipient accepted: the client sends no "
		    "message\n");
	else if (e->o->no_data && e->stopped)
		fprintf(fp, "stopped after RCPT (--no-data)\n");

	fprintf(fp, "\n%sResults%s\n", mwc_c_bold(o), mwc_c_off(o));
	if (e->skipped)
		fprintf(fp, "  none: the client is %s, inbound checks are "
		    "skipped\n", e->trusted ? "in trusted_networks" :
		    "authenticated");
	else if (e->authres == NULL)
		fprintf(fp, "  none\n");
	else {
		struct result_print rp = { fp, 0 };

		mwc_authres_split(e->authres, print_result_line, &rp);
		if (rp.n == 0)
			fprintf(fp, "  none (no check had a result)\n");
	}
	score = total_score(e, &why);
	fprintf(fp, "Score: %g", score);
	if (why.len > 0)
		fprintf(fp, " (%s)", mw_buf_str(&why));
	if (e->cfg->reject_score > 0)
		fprintf(fp, "; reject at %g", e->cfg->reject_score);
	if (e->cfg->tempfail_score > 0)
		fprintf(fp, "; tempfail at %g", e->cfg->tempfail_score);
	fputc('\n', fp);
	mw_buf_free(&why);

	if (e->reached_eom && !refused(&e->final) && e->authres != NULL) {
		fprintf(fp, "\nAuthentication-Results: ");
		mwc_print_folded(fp, e->authres);
		fputc('\n', fp);
	} else if (e->reached_eom && !refused(&e->final))
		fprintf(fp, "\nAuthentication-Results: none added (%s "
		    "client)\n", e->trusted ? "trusted" : "authenticated");
	else if (e->authres != NULL) {
		fprintf(fp, "\nAuthentication-Results: not added (the "
		    "message is not accepted); so far it would say:\n  ");
		mwc_print_folded(fp, e->authres);
		fputc('\n', fp);
	}

	fputc('\n', fp);
	if (refused(&e->final)) {
		reply_line(r, sizeof(r), &e->final);
		fprintf(fp, "SMTP reply: %s%s%s\n", mwc_c_status(o,
		    verdict_status(&e->final)), r, mwc_c_off(o));
	} else if (e->reached_eom)
		fprintf(fp, "SMTP reply: %s250 (accepted: the MTA queues the "
		    "message)%s\n", mwc_c_status(o, MWC_PASS), mwc_c_off(o));
	else
		fprintf(fp, "SMTP reply: %s250 (recipients accepted)%s\n",
		    mwc_c_status(o, MWC_PASS), mwc_c_off(o));
	if (e->reached_eom && e->n_accepted < o->n_rcpts)
		fprintf(fp, "  for %d of %d recipients; the others were "
		    "refused at RCPT\n", e->n_accepted, o->n_rcpts);
	fprintf(fp, "Verdict: %s%s%s (exit %d)\n", mwc_c_status(o,
	    verdict_status(&e->final)), final_word(e), mwc_c_off(o),
	    exit_code(e));
}

static void
json_verdict(struct mwc_json *j, const char *key, const struct mw_verdict *v)
{
	char text[sizeof(v->text)];

	mwc_json_obj(j, key);
	mwc_json_str(j, "kind", v->kind == MW_ACCEPT ? "continue" :
	    mw_verdict_name(v->kind));
	if (refused(v)) {
		mw_milter_text(text, sizeof(text), v->text);
		mwc_json_int(j, "code", v->code);
		mwc_json_str(j, "xcode", v->xcode);
		mwc_json_str(j, "text", text);
	}
	mwc_json_end_obj(j);
}

static void
json_result(void *arg, const struct mwc_resinfo *ri)
{
	struct mwc_json *j = arg;
	int i;

	mwc_json_obj(j, NULL);
	mwc_json_str(j, "method", ri->method);
	mwc_json_str(j, "result", ri->result);
	if (ri->comment[0] != '\0')
		mwc_json_str(j, "comment", ri->comment);
	mwc_json_obj(j, "properties");
	for (i = 0; i < ri->nprops; i++) {
		char k[64];

		snprintf(k, sizeof(k), "%s%s%s", ri->ptype[i],
		    ri->ptype[i][0] ? "." : "", ri->prop[i]);
		mwc_json_str(j, k, ri->value[i]);
	}
	mwc_json_end_obj(j);
	mwc_json_str(j, "text", ri->text);
	mwc_json_end_obj(j);
}

static void
print_json(struct explain *e)
{
	const struct mwc_opts *o = e->o;
	const struct mw_note *nv;
	const struct mw_hdr_change *c;
	struct mwc_json j;
	size_t i, k, nc;
	int r;

	mw_session_notes(e->s, &nv);
	mwc_json_init(&j, stdout);
	mwc_json_obj(&j, NULL);
	mwc_json_str(&j, "mode", "explain");
	mwc_json_str(&j, "config", o->config);
	mwc_json_str(&j, "authserv_id", e->cfg->authserv_id);
	mwc_json_bool(&j, "dry_run", e->cfg->dry_run);
	mwc_json_bool(&j, "read_only", !o->record);
	mwc_json_obj(&j, "client");
	mwc_json_str(&j, "ip", o->ip);
	mwc_json_str(&j, "name", o->name);
	mwc_json_str(&j, "helo", o->helo);
	mwc_json_str(&j, "auth", o->auth);
	mwc_json_bool(&j, "trusted", e->trusted);
	mwc_json_end_obj(&j);
	mwc_json_str(&j, "mail_from", o->from);
	mwc_json_arr(&j, "rcpt_to");
	for (r = 0; r < o->n_rcpts; r++)
		mwc_json_str(&j, NULL, o->rcpts[r]);
	mwc_json_end_arr(&j);
	mwc_json_arr(&j, "steps");
	for (i = 0; i < e->n_steps; i++) {
		const struct step *st = &e->steps[i];

		mwc_json_obj(&j, NULL);
		mwc_json_str(&j, "phase", st->phase);
		mwc_json_str(&j, "command", st->cmd);
		mwc_json_arr(&j, "notes");
		for (k = st->note_lo; k < st->note_hi; k++) {
			const struct mw_note *n = &nv[k];

			mwc_json_obj(&j, NULL);
			mwc_json_str(&j, "module", n->module);
			mwc_json_str(&j, "phase", n->phase);
			if (n->kind == MW_NOTE_EVIDENCE) {
				mwc_json_str(&j, "kind", "evidence");
				mwc_json_str(&j, "text", n->text);
			} else {
				mwc_json_str(&j, "kind", n->kind ==
				    MW_NOTE_ACTION ? "action" : "refuse");
				if (n->kind == MW_NOTE_ACTION) {
					mwc_json_str(&j, "action",
					    action_word(&n->action));
					if (n->action.kind == MW_ACT_SCORE)
						mwc_json_num(&j, "score",
						    n->action.score);
				}
				mwc_json_str(&j, "text", n->text);
				if (refused(&n->verdict))
					json_verdict(&j, "reply", &n->verdict);
			}
			mwc_json_end_obj(&j);
		}
		mwc_json_end_arr(&j);
		json_verdict(&j, "verdict", &st->v);
		mwc_json_end_obj(&j);
	}
	mwc_json_end_arr(&j);
	mwc_json_arr(&j, "header_changes");
	if (e->reached_eom && !refused(&e->final)) {
		nc = mw_session_changes(e->s, &c);
		for (i = 0; i < nc; i++) {
			mwc_json_obj(&j, NULL);
			mwc_json_str(&j, "op", c[i].op == MW_HDR_DELETE ?
			    "delete" : c[i].op == MW_HDR_INSERT ? "insert" :
			    "add");
			mwc_json_str(&j, "name", c[i].name);
			if (c[i].op != MW_HDR_ADD)
				mwc_json_int(&j, "index", c[i].index);
			if (c[i].value != NULL)
				mwc_json_str(&j, "value", c[i].value);
			mwc_json_end_obj(&j);
		}
	}
	mwc_json_end_arr(&j);
	mwc_json_arr(&j, "results");
	if (e->authres != NULL)
		mwc_authres_split(e->authres, json_result, &j);
	mwc_json_end_arr(&j);
	mwc_json_num(&j, "score", total_score(e, NULL));
	mwc_json_num(&j, "reject_score", e->cfg->reject_score);
	mwc_json_num(&j, "tempfail_score", e->cfg->tempfail_score);
	mwc_json_str(&j, "authentication_results", e->authres);
	mwc_json_bool(&j, "header_added", e->reached_eom &&
	    !refused(&e->final) && e->authres != NULL);
	mwc_json_bool(&j, "message_sent", e->reached_eom ||
	    (e->msg.n_headers > 0 || e->msg.body_bytes > 0));
	mwc_json_int(&j, "recipients_accepted", e->n_accepted);
	if (refused(&e->final))
		json_verdict(&j, "reply", &e->final);
	else {
		mwc_json_obj(&j, "reply");
		mwc_json_str(&j, "kind", "accept");
		mwc_json_int(&j, "code", 250);
		mwc_json_end_obj(&j);
	}
	mwc_json_str(&j, "verdict", e->final.kind == MW_REJECT ? "reject" :
	    e->final.kind == MW_TEMPFAIL ? "tempfail" : "accept");
	mwc_json_int(&j, "exit", exit_code(e));
	mwc_json_end_obj(&j);
	mwc_json_done(&j);
}

int
mwc_explain(struct mw_ctx *ctx, const struct mwc_opts *o)
{
	struct explain *e;
	int rc;

	if ((e = calloc(1, sizeof(*e))) == NULL) {
		fprintf(stderr, "mailwarden-check: out of memory\n");
		return MWC_EXIT_SOFTWARE;
	}
	e->o = o;
	e->cfg = mw_ctx_config(ctx);
	if ((e->s = mw_session_new(ctx)) == NULL) {
		fprintf(stderr, "mailwarden-check: out of memory\n");
		free(e);
		return MWC_EXIT_SOFTWARE;
	}
	mw_session_set_explain(e->s, 1);
	mw_session_set_read_only(e->s, !o->record);
	rc = run(e);
	if (rc == 0) {
		if (o->json)
			print_json(e);
		else
			print_text(e);
		rc = exit_code(e);
	} else
		rc = rc == -2 ? MWC_EXIT_NOINPUT : MWC_EXIT_SOFTWARE;
	fflush(stdout);
	mw_session_free(e->s);
	free(e->authres);
	free(e);
	return rc;
}
