/*
 * mw_session -- the per-connection policy engine: feeds SMTP events to
 * the check modules in mw_modules[] order and turns their results into
 * one verdict per event.  See mw_session.h for the calling sequence and
 * mw_session_priv.h for how modules decide.
 *
 * Where decisions are given (like Postfix's smtpd_delay_reject):
 *  - the size cap answers MAIL FROM (SIZE=) and the body at once;
 *  - results of checks that run before DATA (iprev, HELO, DNSBL, SPF)
 *    are given at RCPT, per recipient, so postmaster@ and abuse@ still
 *    get through (RFC 5321 section 4.5.1) and the log has the sender;
 *  - content checks (DKIM, DMARC) decide at end of message, unless a
 *    recipient was exempt: then the message is only annotated.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/socket.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "mw_authres.h"
#include "mw_cidr.h"
#include "mw_log.h"
#include "mw_message.h"
#include "mw_session_priv.h"
#include "mw_text.h"
#include "mw_stats.h"

#define MW_LOG_FIELD_MAX	256	/* bytes of a logged network string */
#define MW_NOTES_MAX		1000	/* evidence notes kept per session */
#define MW_NOTE_TEXT_MAX	1024	/* bytes of one note */

struct mw_ctx {
	atomic_int		 refs;
	struct mw_config	*cfg;
	struct mw_dns		*dns;
	struct mw_redis		*redis;		/* [redis]; lazy, no connection yet */
	void			*global[MW_MAX_MODULES];
	struct mw_stats		*stats;		/* not owned; NULL: none */
};

int
mw_ctx_new(struct mw_config *cfg, struct mw_ctx **ctxp, char *err,
    size_t errlen)
{
	struct mw_ctx *ctx;
	size_t i;

	*ctxp = NULL;
	if ((ctx = calloc(1, sizeof(*ctx))) == NULL) {
		snprintf(err, errlen, "out of memory");
		mw_config_free(cfg);
		return -1;
	}
	atomic_init(&ctx->refs, 1);
	ctx->cfg = cfg;
	if (mw_dns_new(&ctx->dns, cfg->dns_nameservers, cfg->dns_timeout_ms,
	    cfg->dns_tries, (size_t)cfg->dns_cache_size, err, errlen) == -1)
		goto fail;
	if (mw_redis_new(&cfg->redis, &ctx->redis, err, errlen) == -1)
		goto fail;
	for (i = 0; i < mw_nmodules; i++) {
		if (mw_modules[i]->global_new == NULL || !cfg->enabled[i])
			continue;
		if (mw_modules[i]->global_new(cfg, cfg->mod[i], &ctx->global[i],
		    err, errlen) == -1)
			goto fail;
	}
	*ctxp = ctx;
	return 0;
fail:
	mw_ctx_unref(ctx);
	return -1;
}

struct mw_ctx *
mw_ctx_ref(struct mw_ctx *ctx)
{
	atomic_fetch_add(&ctx->refs, 1);
	return ctx;
}

void
mw_ctx_unref(struct mw_ctx *ctx)
{
	size_t i;

	if (ctx == NULL || atomic_fetch_sub(&ctx->refs, 1) != 1)
		return;
	for (i = 0; i < mw_nmodules; i++)
		if (ctx->global[i] != NULL && mw_modules[i]->global_free != NULL)
			mw_modules[i]->global_free(ctx->global[i]);
	if (ctx->dns != NULL)
		mw_dns_free(ctx->dns);
	mw_redis_free(ctx->redis);
	mw_config_free(ctx->cfg);
	free(ctx);
}

const struct mw_config *
mw_ctx_config(const struct mw_ctx *ctx)
{
	return ctx->cfg;
}

struct mw_dns *
mw_ctx_dns(const struct mw_ctx *ctx)
{
	return ctx->dns;
}

void
mw_ctx_set_stats(struct mw_ctx *ctx, struct mw_stats *st)
{
	ctx->stats = st;
	mw_dns_set_stats(ctx->dns, st);
	mw_redis_set_stats(ctx->redis, st);
}

struct mw_redis *
mw_ctx_redis(const struct mw_ctx *ctx)
{
	return ctx->redis;
}

struct mw_redis *
mw_session_redis(const struct mw_session *s)
{
	return s->ctx->redis;
}

struct mw_stats *
mw_session_stats(const struct mw_session *s)
{
	return s->stats;
}

/* Strip one pair of angle brackets: "<a@b>" -> "a@b". */
static char *
strip_brackets(const char *addr)
{
	size_t n;

	if (addr == NULL)
		return strdup("");
	while (*addr == ' ')
		addr++;
	n = strlen(addr);
	if (n >= 2 && addr[0] == '<' && addr[n - 1] == '>')
		return strndup(addr + 1, n - 2);
	return strdup(addr);
}

struct mw_session *
mw_session_new(struct mw_ctx *ctx)
{
	struct mw_session *s;
	struct mw_buf empty = MW_BUF_INIT(4096);
	struct mw_buf big = MW_BUF_INIT(64 * 1024);
	size_t i;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	s->ctx = mw_ctx_ref(ctx);
	s->cfg = ctx->cfg;
	s->running_index = -1;
	if ((s->stats = ctx->stats) != NULL) {
		mw_stats_inc(s->stats, MW_ST_SESSIONS);
		mw_stats_sessions_active(s->stats, 1);
	}
	s->rcpt_log = big;
	s->conn_reasons = s->msg_reasons = s->dry_run_notes = empty;
	s->rcpt_refusals = empty;
	s->results_summary = big;
	if ((s->dns = mw_dns_batch_new(ctx->dns)) == NULL)
		goto fail;
	for (i = 0; i < mw_nmodules; i++) {
		s->global[i] = ctx->global[i];
		if (mw_modules[i]->state_size == 0)
			continue;
		if ((s->state[i] = calloc(1, mw_modules[i]->state_size)) == NULL)
			goto fail;
	}
	return s;
fail:
	mw_session_free(s);
	return NULL;
}

static void
clear_changes(struct mw_session *s)
{
	size_t i;

	for (i = 0; i < s->changes.n; i++) {
		free((char *)s->changes.v[i].name);
		free((char *)s->changes.v[i].value);
	}
	free(s->changes.v);
	s->changes.v = NULL;
	s->changes.n = 0;
}

/* End of a transaction: forget everything about the message. */
static void
reset_transaction(struct mw_session *s)
{
	size_t i;

	for (i = 0; i < mw_nmodules; i++)
		if (mw_modules[i]->on_reset != NULL && s->cfg->enabled[i])
			mw_modules[i]->on_reset(s, s->cfg->mod[i], s->state[i]);
	s->in_transaction = 0;
	free(s->mail_from);
	s->mail_from = NULL;
	s->size_declared = 0;
	s->smtputf8 = 0;
	for (i = 0; i < s->n_rcpts; i++)
		free(s->rcpts[i]);
	free(s->rcpts);
	s->rcpts = NULL;
	s->n_rcpts = 0;
	mw_buf_reset(&s->rcpt_log);
	s->n_rcpt_refused = 0;
	mw_buf_reset(&s->rcpt_refusals);
	s->exempt_rcpt = 0;
	s->header_bytes = s->body_bytes = 0;
	s->n_headers = 0;
	s->n_ar_seen = 0;
	free(s->ar_delete);
	s->ar_delete = NULL;
	s->n_ar_delete = 0;
	memset(&s->msg_policy, 0, sizeof(s->msg_policy));
	memset(&s->final, 0, sizeof(s->final));
	s->final_by = s->msg_policy_by = NULL;
	s->data_ns = 0;
	s->results_mask = 0;
	memset(s->hook_ns, 0, sizeof(s->hook_ns));
	s->msg_score = 0;
	mw_buf_reset(&s->msg_reasons);
	mw_buf_reset(&s->dry_run_notes);
	/* Authenticated is per transaction in Postfix ({auth_authen} at MAIL). */
	s->skip_inbound = s->trusted;
}

void
mw_session_free(struct mw_session *s)
{
	size_t i;

	if (s == NULL)
		return;
	if (s->in_transaction)
		mw_session_abort(s);
	if (s->phase != MW_PH_NEW)
		reset_transaction(s);
	for (i = 0; i < mw_nmodules; i++) {
		if (s->state[i] != NULL && mw_modules[i]->on_close != NULL &&
		    s->phase != MW_PH_NEW && s->cfg->enabled[i])
			mw_modules[i]->on_close(s, s->cfg->mod[i], s->state[i]);
		free(s->state[i]);
		s->state[i] = NULL;
	}
	clear_changes(s);
	for (i = 0; i < s->n_notes; i++)
		free((char *)s->notes[i].text);
	free(s->notes);
	if (s->dns != NULL)
		mw_dns_batch_free(s->dns);
	free(s->client_name);
	free(s->helo);
	free(s->queue_id);
	free(s->auth_authen);
	free(s->authres);
	mw_buf_free(&s->rcpt_log);
	mw_buf_free(&s->rcpt_refusals);
	mw_buf_free(&s->conn_reasons);
	mw_buf_free(&s->msg_reasons);
	mw_buf_free(&s->dry_run_notes);
	mw_buf_free(&s->results_summary);
	mw_stats_sessions_active(s->stats, -1);
	mw_ctx_unref(s->ctx);
	free(s);
}

void
mw_session_set_queue_id(struct mw_session *s, const char *qid)
{
	free(s->queue_id);
	s->queue_id = qid != NULL ? strdup(qid) : NULL;
}

void
mw_session_set_auth(struct mw_session *s, const char *authen)
{
	free(s->auth_authen);
	s->auth_authen = NULL;
	s->authenticated = 0;
	if (authen != NULL && *authen != '\0') {
		s->auth_authen = strdup(authen);
		s->authenticated = 1;
		s->skip_inbound = 1;
	}
}

void
mw_session_set_tls(struct mw_session *s, const struct mw_tls_info *t)
{
	memset(&s->tls, 0, sizeof(s->tls));
	if (t == NULL || t->version == NULL || t->version[0] == '\0')
		return;
	s->tls.on = 1;
	mw_printable(s->tls.version, sizeof(s->tls.version), t->version);
	mw_printable(s->tls.cipher, sizeof(s->tls.cipher), t->cipher);
	mw_printable(s->tls.bits, sizeof(s->tls.bits), t->bits);
	mw_printable(s->tls.cert_subject, sizeof(s->tls.cert_subject),
	    t->cert_subject);
	mw_printable(s->tls.cert_issuer, sizeof(s->tls.cert_issuer),
	    t->cert_issuer);
	mw_printable(s->tls.verify, sizeof(s->tls.verify), t->verify);
}

const char *
mw_auth_result_name(enum mw_auth_result r)
{
	switch (r) {
	case MW_AUTH_NONE: return "none";
	case MW_AUTH_PASS: return "pass";
	case MW_AUTH_FAIL: return "fail";
	case MW_AUTH_SOFTFAIL: return "softfail";
	case MW_AUTH_NEUTRAL: return "neutral";
	case MW_AUTH_TEMPERROR: return "temperror";
	case MW_AUTH_PERMERROR: return "permerror";
	case MW_AUTH_POLICY: return "policy";
	}
	return "none";
}

void
mw_session_set_explain(struct mw_session *s, int on)
{
	s->explain = on;
}

void
mw_session_set_read_only(struct mw_session *s, int on)
{
	s->read_only = on;
}

static const char *
phase_name(enum mw_phase p)
{
	static const char *const names[] = { "new", "connect", "helo",
	    "mail", "rcpt", "header", "eoh", "body", "eom" };

	return (size_t)p < sizeof(names) / sizeof(names[0]) ? names[p] : "?";
}

/* Append a note (text already formatted); NULL if not kept. */
static struct mw_note *
add_note(struct mw_session *s, enum mw_note_kind kind, const char *module,
    const char *text)
{
	struct mw_note *nv, *n;
	char *t;

	if (!s->explain || s->n_notes >= MW_NOTES_MAX)
		return NULL;
	if ((t = strdup(text)) == NULL)
		return NULL;
	mw_printable_inplace(t);
	if ((nv = realloc(s->notes, (s->n_notes + 1) * sizeof(*nv))) == NULL) {
		free(t);
		return NULL;
	}
	s->notes = nv;
	n = &nv[s->n_notes++];
	memset(n, 0, sizeof(*n));
	n->kind = kind;
	n->module = module != NULL ? module : s->running != NULL ?
	    s->running : "session";
	n->phase = phase_name(s->phase);
	n->text = t;
	return n;
}

void
mw_session_note(struct mw_session *s, const char *module, const char *fmt,
    ...)
{
	char text[MW_NOTE_TEXT_MAX];
	va_list ap;

	if (!s->explain)
		return;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	add_note(s, MW_NOTE_EVIDENCE, module, text);
}

void
mw_session_note_dns(struct mw_session *s, const char *module,
    const struct mw_dns_answer *a)
{
	struct mw_buf b = MW_BUF_INIT(MW_NOTE_TEXT_MAX);

	if (!s->explain || a == NULL)
		return;
	mw_dns_answer_format(&b, a);
	add_note(s, MW_NOTE_EVIDENCE, module, mw_buf_str(&b));
	mw_buf_free(&b);
}

size_t
mw_session_notes(const struct mw_session *s, const struct mw_note **v)
{
	*v = s->notes;
	return s->n_notes;
}

void *
mw_session_global(struct mw_session *s)
{
	if (s->running_index < 0 || (size_t)s->running_index >= mw_nmodules)
		return NULL;
	return s->global[s->running_index];
}

/* Is module i to run for this session? */
static int
runs(const struct mw_session *s, size_t i)
{
	return s->cfg->enabled[i] &&
	    !(mw_modules[i]->inbound && s->skip_inbound);
}

int
mw_ctx_self_check(struct mw_ctx *ctx, void *fp)
{
	struct mw_session *s;
	size_t i;
	int warnings = 0;

	for (i = 0; i < mw_nmodules; i++) {
		if (mw_modules[i]->self_check == NULL || !ctx->cfg->enabled[i])
			continue;
		if ((s = mw_session_new(ctx)) == NULL)
			return warnings;
		s->running = mw_modules[i]->name;
		s->running_index = (int)i;
		warnings += mw_modules[i]->self_check(s, ctx->cfg->mod[i], fp);
		s->running = NULL;
		s->running_index = -1;
		mw_session_free(s);
	}
	return warnings;
}

static void
vset(struct mw_verdict *v, enum mw_verdict_kind kind, int code,
    const char *xcode, const char *fmt, va_list ap)
{
	char text[sizeof(v->text)];

	vsnprintf(text, sizeof(text), fmt, ap);
	mw_verdict_set(v, kind, code, xcode, "%s", text);
}

void
mw_session_act(struct mw_session *s, const struct mw_action *a, int code,
    const char *xcode, const char *fmt, ...)
{
	int before_mail = !s->in_transaction;
	struct mw_verdict *held = before_mail ? &s->conn_policy : &s->msg_policy;
	struct mw_buf *reasons = before_mail ? &s->conn_reasons : &s->msg_reasons;
	char text[sizeof(held->text)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (s->explain) {
		struct mw_note *n = add_note(s, MW_NOTE_ACTION, NULL, text);

		if (n != NULL) {
			n->action = *a;
			mw_verdict_set(&n->verdict, a->kind == MW_ACT_REJECT ?
			    MW_REJECT : a->kind == MW_ACT_TEMPFAIL ?
			    MW_TEMPFAIL : MW_CONTINUE, code, xcode, "%s", text);
		}
	}
	switch (a->kind) {
	case MW_ACT_ACCEPT:
		break;
	case MW_ACT_SCORE:
		if (before_mail)
			s->conn_score += a->score;
		else
			s->msg_score += a->score;
		mw_buf_printf(reasons, "%s%s %+g", reasons->len ? ", " : "",
		    text, a->score);
		break;
	case MW_ACT_TEMPFAIL:
		/* A held reject outranks a tempfail; the first of each wins. */
		if (held->kind == MW_CONTINUE) {
			mw_verdict_set(held, MW_TEMPFAIL, code, xcode, "%s",
			    text);
			*(before_mail ? &s->conn_policy_by : &s->msg_policy_by) =
			    s->running;
		}
		break;
	case MW_ACT_REJECT:
		if (held->kind != MW_REJECT) {
			mw_verdict_set(held, MW_REJECT, code, xcode, "%s", text);
			*(before_mail ? &s->conn_policy_by : &s->msg_policy_by) =
			    s->running;
		}
		break;
	}
}

void
mw_session_refuse(struct mw_session *s, enum mw_verdict_kind kind, int code,
    const char *xcode, const char *fmt, ...)
{
	va_list ap;

	if (s->immediate.kind == MW_REJECT)
		return;
	va_start(ap, fmt);
	vset(&s->immediate, kind, code, xcode, fmt, ap);
	va_end(ap);
	s->immediate_by = s->running;
	if (s->explain) {
		struct mw_note *n = add_note(s, MW_NOTE_REFUSE, NULL,
		    s->immediate.text);

		if (n != NULL)
			n->verdict = s->immediate;
	}
}

static void
push_change(struct mw_session *s, enum mw_hdr_op op, const char *name,
    const char *value, int index)
{
	struct mw_hdr_change *nv;
	char *n = strdup(name), *v = value != NULL ? strdup(value) : NULL;

	nv = realloc(s->changes.v, (s->changes.n + 1) * sizeof(*nv));
	if (n == NULL || (value != NULL && v == NULL) || nv == NULL) {
		mw_log(LOG_ERR, "out of memory adding header %s", name);
		free(n);
		free(v);
		if (nv != NULL)
			s->changes.v = nv;
		return;
	}
	s->changes.v = nv;
	nv[s->changes.n].op = op;
	nv[s->changes.n].name = n;
	nv[s->changes.n].value = v;
	nv[s->changes.n].index = index;
	s->changes.n++;
}

void
mw_session_add_header(struct mw_session *s, const char *name,
    const char *value)
{
	push_change(s, MW_HDR_ADD, name, value, 0);
}

void
mw_session_insert_header(struct mw_session *s, const char *name,
    const char *value)
{
	push_change(s, MW_HDR_INSERT, name, value, 0);
}

void
mw_session_set_quarantine(struct mw_session *s, const char *fmt, ...)
{
	char text[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	/* The reason goes to the MTA's queue file: printable ASCII only. */
	mw_printable_inplace(text);
	if (s->cfg->dry_run) {
		mw_buf_printf(&s->dry_run_notes, "%swould quarantine: %s",
		    s->dry_run_notes.len ? "; " : "", text);
		return;
	}
	/* A copy in the session: no allocation that could fail to "deliver". */
	snprintf(s->quarantine, sizeof(s->quarantine), "%s", text);
}

const char *
mw_session_quarantine(const struct mw_session *s)
{
	return s->quarantine[0] != '\0' ? s->quarantine : NULL;
}

/*
 * The verdict for the current event.  `policy_point` is set where held
 * policy decisions may be given (RCPT, end of message).
 */
static const struct mw_verdict *
decide(struct mw_session *s, int policy_point, int exempt)
{
	struct mw_verdict *v = &s->verdict;
	const struct mw_config *c = s->cfg;
	double score = s->conn_score + s->msg_score;
	const char *by = NULL;		/* for the statistics */

	memset(v, 0, sizeof(*v));
	if (s->immediate.kind != MW_CONTINUE) {
		*v = s->immediate;
		by = s->immediate_by;
	} else if (policy_point && !exempt && !s->skip_inbound) {
		if (s->conn_policy.kind == MW_REJECT)
			*v = s->conn_policy, by = s->conn_policy_by;
		else if (s->msg_policy.kind == MW_REJECT)
			*v = s->msg_policy, by = s->msg_policy_by;
		else if (c->reject_score > 0 && score >= c->reject_score &&
		    (by = "score") != NULL)
			mw_verdict_set(v, MW_REJECT, 550, "5.7.1",
			    "%s (score %g: %s%s%s)", c->reject_text, score,
			    mw_buf_str(&s->conn_reasons),
			    s->conn_reasons.len && s->msg_reasons.len ?
			    ", " : "", mw_buf_str(&s->msg_reasons));
		else if (s->conn_policy.kind == MW_TEMPFAIL)
			*v = s->conn_policy, by = s->conn_policy_by;
		else if (s->msg_policy.kind == MW_TEMPFAIL)
			*v = s->msg_policy, by = s->msg_policy_by;
		else if (c->tempfail_score > 0 &&
		    score >= c->tempfail_score && (by = "score") != NULL)
			mw_verdict_set(v, MW_TEMPFAIL, 451, "4.7.1",
			    "%s, try again later (score %g)", c->reject_text,
			    score);
	}
	if (v->kind == MW_REJECT && v->code == 0)
		v->code = 550;
	if (v->kind == MW_TEMPFAIL && v->code == 0)
		v->code = 451;
	if ((v->kind == MW_REJECT || v->kind == MW_TEMPFAIL) && c->dry_run) {
		mw_buf_printf(&s->dry_run_notes, "%swould %s: %d %s %s",
		    s->dry_run_notes.len ? "; " : "", mw_verdict_name(v->kind),
		    v->code, v->xcode, v->text);
		mw_log(LOG_INFO, "%s: dry run: would %s: %d %s %s",
		    s->queue_id ? s->queue_id : "NOQUEUE",
		    mw_verdict_name(v->kind), v->code, v->xcode, v->text);
		memset(v, 0, sizeof(*v));
	}
	s->immediate.kind = MW_CONTINUE;
	if (v->kind != MW_CONTINUE) {
		s->final = *v;
		s->final_by = by;
		s->final_phase = s->phase;
	}
	return v;
}

/* Statistics: a phase's time, and the verdict it ends with. */
static uint64_t
t_start(const struct mw_session *s)
{
	return s->stats != NULL ? mw_stats_now_ns() : 0;
}

static const struct mw_verdict *
timed(struct mw_session *s, enum mw_stats_phase ph, uint64_t t0,
    const struct mw_verdict *v)
{
	if (s->stats == NULL)
		return v;
	if (ph == MW_STP_DATA)
		s->data_ns += mw_stats_now_ns() - t0;
	else
		mw_stats_phase_duration(s->stats, ph,
		    (double)(mw_stats_now_ns() - t0) / 1e9);
	return v;
}

enum mw_verdict_kind
mw_session_policy_outlook(const struct mw_session *s)
{
	double score = s->conn_score + s->msg_score;

	if (s->immediate.kind == MW_REJECT ||
	    s->conn_policy.kind == MW_REJECT ||
	    s->msg_policy.kind == MW_REJECT ||
	    (s->cfg->reject_score > 0 && score >= s->cfg->reject_score))
		return MW_REJECT;
	if (s->immediate.kind == MW_TEMPFAIL ||
	    s->conn_policy.kind == MW_TEMPFAIL ||
	    s->msg_policy.kind == MW_TEMPFAIL ||
	    (s->cfg->tempfail_score > 0 && score >= s->cfg->tempfail_score))
		return MW_TEMPFAIL;
	return MW_CONTINUE;
}

double
mw_session_score(const struct mw_session *s)
{
	return s->conn_score + s->msg_score;
}

/* Run one hook of every module that runs for this session. */
#define RUN_HOOK(s, hook, ...) do {					\
	size_t i_;							\
	for (i_ = 0; i_ < mw_nmodules; i_++) {				\
		const struct mw_module *m_ = mw_modules[i_];		\
		if (m_->hook != NULL && runs((s), i_)) {		\
			uint64_t t0_ = (s)->stats ? mw_stats_now_ns() : 0; \
			(s)->running = m_->name;			\
			(s)->running_index = (int)i_;			\
			m_->hook((s), (s)->cfg->mod[i_], (s)->state[i_],	\
			    ##__VA_ARGS__);				\
			(s)->running = NULL;				\
			(s)->running_index = -1;			\
			if ((s)->stats)					\
				(s)->hook_ns[i_] += mw_stats_now_ns() - t0_; \
		}							\
		if ((s)->immediate.kind == MW_REJECT)			\
			break;						\
	}								\
} while (0)

const struct mw_verdict *
mw_session_connect(struct mw_session *s, const char *ip, const char *hostname,
    int port)
{
	uint64_t t0 = t_start(s);

	s->phase = MW_PH_CONNECT;
	if (ip != NULL && mw_ip_parse(ip, &s->family, s->addr) == 0) {
		/* Keep the canonical text: "::ffff:192.0.2.1" -> "192.0.2.1". */
		mw_printable(s->ip, sizeof(s->ip), ip);
		if (s->family == AF_INET && strchr(ip, ':') != NULL) {
			char *p = strrchr(s->ip, ':');

			memmove(s->ip, p + 1, strlen(p + 1) + 1);
		}
	} else {
		/* Unknown client address (e.g. a local pipe): no IP checks. */
		s->family = 0;
		snprintf(s->ip, sizeof(s->ip), "unknown");
	}
	free(s->client_name);
	s->client_name = NULL;
	if (hostname != NULL && *hostname != '\0' && *hostname != '[')
		s->client_name = strdup(hostname);
	s->port = port;
	s->trusted = s->family != 0 &&
	    mw_cidr_list_match(&s->cfg->trusted_networks, s->ip);
	s->skip_inbound = s->trusted;
	RUN_HOOK(s, on_connect);
	return timed(s, MW_STP_CONNECT, t0, decide(s, 0, 0));
}

const struct mw_verdict *
mw_session_helo(struct mw_session *s, const char *helo)
{
	uint64_t t0 = t_start(s);

	s->phase = MW_PH_HELO;
	free(s->helo);
	s->helo = strdup(helo != NULL ? helo : "");
	RUN_HOOK(s, on_helo);
	return timed(s, MW_STP_HELO, t0, decide(s, 0, 0));
}

/*
 * ESMTP SIZE=: size-value = 1*20DIGIT (RFC 1870).  Anything else --
 * "-1", "+5", "1e6", empty -- is a syntax error (501), not a size; a
 * value of 20 digits beyond what we can count is simply too big.
 */
static int
parse_size_param(const char *v, unsigned long long *out)
{
	size_t n = strspn(v, "0123456789");

	if (n == 0 || n > 20 || v[n] != '\0')
		return -1;
	errno = 0;
	*out = strtoull(v, NULL, 10);
	if (errno == ERANGE)
		*out = ULLONG_MAX;
	return 0;
}

/*
 * A per-message event that cannot come where it came: outside a
 * transaction (RCPT, header, ... after an ABORT or before any MAIL), a
 * header after the end of the header, a second end of header, a body
 * chunk before the end of the header.  No MTA sends these; a peer that
 * does gets a tempfail and no check runs, so no module ever sees an
 * event for a message it has no state for.
 */
static const struct mw_verdict *
out_of_order(struct mw_session *s, const char *event)
{
	mw_log(LOG_WARNING, "%s: milter protocol: %s out of order "
	    "(after %s%s); tempfail", s->queue_id ? s->queue_id : "NOQUEUE",
	    event, phase_name(s->phase), s->in_transaction ? "" :
	    ", no transaction");
	mw_verdict_set(&s->verdict, MW_TEMPFAIL, 451, "4.3.0",
	    "Temporary local problem (out-of-order milter command)");
	return &s->verdict;
}

const struct mw_verdict *
mw_session_mail(struct mw_session *s, const char *from, char *const *args,
    size_t nargs)
{
	size_t i;
	uint64_t t0 = t_start(s);

	/*
	 * A new message: log the unfinished one, then start from clean
	 * per-message state whatever came before (an ABORT followed by
	 * stray events must not leave anything behind for this message).
	 */
	if (s->in_transaction)
		mw_session_abort(s);
	s->txn_start_ns = t0;
	reset_transaction(s);
	s->phase = MW_PH_MAIL;
	s->in_transaction = 1;
	s->n_messages++;
	clear_changes(s);
	s->quarantine[0] = '\0';
	s->mail_from = strip_brackets(from);
	for (i = 0; i < nargs && args != NULL; i++) {
		if (strncasecmp(args[i], "SIZE=", 5) == 0 &&
		    parse_size_param(args[i] + 5, &s->size_declared) == -1) {
			mw_session_refuse(s, MW_REJECT, 501, "5.5.4",
			    "Bad message size syntax");
			return decide(s, 0, 0);
		} else if (strcasecmp(args[i], "SMTPUTF8") == 0)
			s->smtputf8 = 1;
	}
	if (s->authenticated)
		s->skip_inbound = 1;
	RUN_HOOK(s, on_mail);
	return timed(s, MW_STP_MAIL, t0, decide(s, 0, 0));
}

/*
 * A refused RCPT, for the log line: counted, and its reply kept once
 * (several recipients refused for the same reason show it once).
 */
static void
note_rcpt_refusal(struct mw_session *s, const struct mw_verdict *v)
{
	char one[sizeof(v->text) + 64];

	s->n_rcpt_refused++;
	snprintf(one, sizeof(one), "%s: %d %s %s", mw_verdict_name(v->kind),
	    v->code, v->xcode, v->text);
	if (strstr(mw_buf_str(&s->rcpt_refusals), one) == NULL)
		mw_buf_printf(&s->rcpt_refusals, "%s%s",
		    s->rcpt_refusals.len ? "; " : "", one);
}

/* Is the recipient's local part one we must always accept? */
static int
rcpt_exempt(const struct mw_session *s, const char *rcpt)
{
	const char *at = strrchr(rcpt, '@');
	size_t n = at != NULL ? (size_t)(at - rcpt) : strlen(rcpt);
	size_t i;

	for (i = 0; i < s->cfg->n_exempt_localparts; i++)
		if (strlen(s->cfg->exempt_localparts[i]) == n &&
		    strncasecmp(rcpt, s->cfg->exempt_localparts[i], n) == 0)
			return 1;
	return 0;
}

int
mw_session_rcpt_is_exempt(const struct mw_session *s, const char *rcpt)
{
	return rcpt_exempt(s, rcpt);
}

const struct mw_verdict *
mw_session_rcpt(struct mw_session *s, const char *rcpt, char *const *args,
    size_t nargs)
{
	const struct mw_verdict *v;
	char *r = strip_brackets(rcpt);
	char safe[MW_LOG_FIELD_MAX];
	int exempt;
	uint64_t t0 = t_start(s);

	(void)args;
	(void)nargs;
	if (!s->in_transaction || s->phase > MW_PH_RCPT) {
		free(r);
		return out_of_order(s, "RCPT");
	}
	s->phase = MW_PH_RCPT;
	if (r == NULL) {
		mw_verdict_set(&s->verdict, MW_TEMPFAIL, 451, "4.3.0",
		    "Out of memory");
		return &s->verdict;
	}
	exempt = rcpt_exempt(s, r);
	RUN_HOOK(s, on_rcpt, r);
	v = timed(s, MW_STP_RCPT, t0, decide(s, 1, exempt));
	mw_printable(safe, sizeof(safe), r);
	mw_buf_printf(&s->rcpt_log, "%s<%s>", s->rcpt_log.len ? "," : "", safe);
	if (v->kind == MW_REJECT || v->kind == MW_TEMPFAIL) {
		mw_buf_printf(&s->rcpt_log, " (%d %s)", v->code, v->xcode);
		note_rcpt_refusal(s, v);
		free(r);
		return v;
	}
	if (exempt)
		s->exempt_rcpt = 1;
	{
		char **nv = realloc(s->rcpts, (s->n_rcpts + 1) * sizeof(*nv));

		if (nv == NULL) {
			free(r);
			mw_verdict_set(&s->verdict, MW_TEMPFAIL, 451, "4.3.0",
			    "Out of memory");
			return &s->verdict;
		}
		s->rcpts = nv;
		s->rcpts[s->n_rcpts++] = r;
	}
	return v;
}

int
mw_header_name_is(const char *name, const char *want)
{
	size_t n = strlen(name), w = strlen(want);

	while (n > 0 && (name[n - 1] == ' ' || name[n - 1] == '\t'))
		n--;
	return n == w && strncasecmp(name, want, n) == 0;
}

static int
is_authres_name(const char *name)
{
	return mw_header_name_is(name, "Authentication-Results");
}

const struct mw_verdict *
mw_session_header(struct mw_session *s, const char *name, const char *value)
{
	uint64_t t0 = t_start(s);

	if (!s->in_transaction || s->phase > MW_PH_HEADER)
		return out_of_order(s, "header");
	s->phase = MW_PH_HEADER;
	if (name == NULL)
		name = "";
	if (value == NULL)
		value = "";
	s->n_headers++;
	s->header_bytes += strlen(name) + strlen(value) + 4;
	/*
	 * An Authentication-Results field that claims to be ours was not
	 * written by us for this message: remember its index to delete it.
	 */
	if (is_authres_name(name)) {
		s->n_ar_seen++;
		if (mw_authres_claims_id(value, s->cfg->authserv_id)) {
			int *nv = realloc(s->ar_delete,
			    (s->n_ar_delete + 1) * sizeof(*nv));

			if (nv == NULL) {
				mw_session_refuse(s, MW_TEMPFAIL, 451, "4.3.0",
				    "Out of memory");
				return decide(s, 0, 0);
			}
			s->ar_delete = nv;
			s->ar_delete[s->n_ar_delete++] = s->n_ar_seen;
		}
	}
	RUN_HOOK(s, on_header, name, value);
	return timed(s, MW_STP_DATA, t0, decide(s, 0, 0));
}

const struct mw_verdict *
mw_session_eoh(struct mw_session *s)
{
	uint64_t t0 = t_start(s);

	if (!s->in_transaction || s->phase > MW_PH_HEADER)
		return out_of_order(s, "end of header");
	s->phase = MW_PH_EOH;
	RUN_HOOK(s, on_eoh);
	return timed(s, MW_STP_DATA, t0, decide(s, 0, 0));
}

const struct mw_verdict *
mw_session_body(struct mw_session *s, const unsigned char *buf, size_t len)
{
	uint64_t t0 = t_start(s);

	if (!s->in_transaction || s->phase < MW_PH_EOH ||
	    s->phase > MW_PH_BODY)
		return out_of_order(s, "body");
	s->phase = MW_PH_BODY;
	s->body_bytes += len;
	RUN_HOOK(s, on_body, buf, len);
	return timed(s, MW_STP_DATA, t0, decide(s, 0, 0));
}

/* Count a result of the running module (statistics). */
static void
count_result(struct mw_session *s, const char *result)
{
	int i = s->running_index;

	if (s->stats == NULL || i < 0 || i >= MW_MAX_MODULES)
		return;
	mw_stats_check_result(s->stats, (size_t)i, result);
	s->results_mask |= 1u << i;
}

void
mw_session_result(struct mw_session *s, const char *result)
{
	if (!s->read_only)
		count_result(s, result);
}

/*
 * Every resinfo a module adds to the A-R is one check result; a DNSBL
 * or DNSWL listing also counts for its zone.
 */
static void
observe_authres(void *arg, const char *method, const char *result,
    const char *ptype, const char *property, const char *value)
{
	struct mw_session *s = arg;

	if (ptype == NULL)
		count_result(s, result);
	else if (strcmp(ptype, "dns") == 0 && strcmp(property, "zone") == 0 &&
	    ((strcmp(method, "x-dnsbl") == 0 && strcmp(result, "fail") == 0) ||
	    (strcmp(method, "dnswl") == 0 && strcmp(result, "pass") == 0)))
		mw_stats_dnsbl_listed(s->stats, value);
}

/* Build the A-R for this message from every module that ran. */
static void
build_authres(struct mw_session *s)
{
	struct mw_authres *ar = mw_authres_new(s->cfg->authserv_id);
	int dropped;

	free(s->authres);
	s->authres = NULL;
	if (ar == NULL)
		return;
	if (s->stats != NULL && !s->read_only)
		mw_authres_set_observer(ar, observe_authres, s);
	/* decide() has cleared any refusal, so every module gets its turn. */
	RUN_HOOK(s, authres, ar);
	if ((dropped = mw_authres_dropped(ar)) > 0)
		mw_log(LOG_WARNING, "%s: Authentication-Results: %d result%s "
		    "left out, the header would have passed its bound",
		    s->queue_id ? s->queue_id : "NOQUEUE", dropped,
		    dropped == 1 ? "" : "s");
	/*
	 * Inbound mail always gets our header, "id; none" if no check had
	 * anything to say, so downstream filters know we looked at it.
	 */
	if (!s->skip_inbound)
		s->authres = strdup(mw_authres_value(ar));
	mw_buf_reset(&s->results_summary);
	mw_buf_puts(&s->results_summary, mw_authres_summary(ar));
	mw_authres_free(ar);
}

/*
 * What happened to the message, for the log line's verdict=: accepted
 * at end of data (for how many recipients, and the RCPTs refused on the
 * way, with their replies), refused (the last refusal), or nothing.
 */
static void
describe_outcome(const struct mw_session *s, int aborted, char *out,
    size_t outlen)
{
	int at_eom_accepted = !aborted && (s->verdict.kind == MW_CONTINUE ||
	    s->verdict.kind == MW_ACCEPT);

	if (at_eom_accepted && s->n_rcpt_refused == 0)
		snprintf(out, outlen, "accept");
	else if (at_eom_accepted)
		snprintf(out, outlen, "accept for %zu recipient%s, refused "
		    "for %zu: %s", s->n_rcpts, s->n_rcpts == 1 ? "" : "s",
		    s->n_rcpt_refused, mw_buf_str(&s->rcpt_refusals));
	else if (s->final.kind == MW_CONTINUE || s->final.kind == MW_ACCEPT)
		snprintf(out, outlen, "none (transaction aborted)");
	else
		snprintf(out, outlen, "%s: %d %s %s",
		    mw_verdict_name(s->final.kind), s->final.code,
		    s->final.xcode, s->final.text);
}

/*
 * The client's name for the log: the MTA's, else (Sendmail's
 * "[192.0.2.10]" after a failed lookup, Postfix's "unknown") the one
 * our iprev check confirmed, marked " name_from=iprev".
 */
static const char *
client_name_for_log(const struct mw_session *s, const char **mark)
{
	*mark = "";
	if (s->client_name != NULL)
		return s->client_name;
	if (s->res.iprev_pass && s->res.iprev_name[0] != '\0') {
		*mark = " name_from=iprev";
		return s->res.iprev_name;
	}
	return "unknown";
}

static const char *
stage_name(enum mw_phase p)
{
	switch (p) {
	case MW_PH_NEW:
	case MW_PH_CONNECT: return "connect";
	case MW_PH_HELO: return "helo";
	case MW_PH_MAIL: return "mail";
	case MW_PH_RCPT: return "rcpt";
	case MW_PH_HEADER:
	case MW_PH_EOH:
	case MW_PH_BODY: return "data";
	case MW_PH_EOM: return "eom";
	}
	return "abort";
}

/*
 * The end of a transaction for the statistics: counters, each check's
 * time, and a copy for the status page.  v: the end-of-message verdict,
 * or NULL when the transaction was aborted.
 */
static void
record_stats(struct mw_session *s, const struct mw_verdict *v)
{
	struct mw_stats_txn t;
	const struct mw_verdict *f = v;
	const char *name_mark;
	size_t i;

	if (s->stats == NULL || s->read_only)
		return;
	if (s->data_ns > 0)
		mw_stats_phase_duration(s->stats, MW_STP_DATA,
		    (double)s->data_ns / 1e9);
	for (i = 0; i < mw_nmodules && i < MW_MAX_MODULES; i++)
		if (s->results_mask & (1u << i))
			mw_stats_check_duration(s->stats, i,
			    (double)s->hook_ns[i] / 1e9);
	memset(&t, 0, sizeof(t));
	t.when = time(NULL);
	t.seconds = (double)(mw_stats_now_ns() - s->txn_start_ns) / 1e9;
	t.queue_id = s->queue_id;
	t.client_ip = s->ip;
	t.client_name = client_name_for_log(s, &name_mark);
	t.helo = s->helo;
	t.mail_from = s->mail_from;
	t.rcpts = mw_buf_str(&s->rcpt_log);
	t.results = mw_buf_str(&s->results_summary);
	t.score = s->conn_score + s->msg_score;
	if (v != NULL && (v->kind == MW_CONTINUE || v->kind == MW_ACCEPT)) {
		t.verdict = s->quarantine[0] != '\0' ? "quarantine" : "accept";
		t.stage = "eom";
		f = NULL;
	} else if (v != NULL) {
		t.verdict = mw_verdict_name(v->kind);
		t.stage = "eom";
		t.refused_by = s->final_by;
	} else if (s->final.kind == MW_REJECT || s->final.kind == MW_TEMPFAIL) {
		f = &s->final;
		t.verdict = mw_verdict_name(f->kind);
		t.stage = stage_name(s->final_phase);
		t.refused_by = s->final_by;
	} else {
		t.verdict = "none";
		t.stage = "abort";
	}
	if (f != NULL) {
		t.code = f->code;
		t.xcode = f->xcode;
		t.text = f->text;
	}
	mw_stats_transaction(s->stats, &t);
}

/* One Postfix-style line per transaction. */
static void
log_transaction(struct mw_session *s, int aborted)
{
	char name[MW_LOG_FIELD_MAX], helo[MW_LOG_FIELD_MAX];
	char from[MW_LOG_FIELD_MAX], verdict[4096];
	double score = s->conn_score + s->msg_score;
	const char *name_mark;

	mw_printable(name, sizeof(name), client_name_for_log(s, &name_mark));
	mw_printable(helo, sizeof(helo), s->helo);
	mw_printable(from, sizeof(from), s->mail_from);
	describe_outcome(s, aborted, verdict, sizeof(verdict));
	mw_log(LOG_INFO, "%s: client=%s[%s]%s helo=<%s> from=<%s> to=%s "
	    "size=%llu results=[%s] score=%g%s%s verdict=%s%s%s%s",
	    s->queue_id ? s->queue_id : "NOQUEUE", name, s->ip, name_mark,
	    helo, from,
	    s->rcpt_log.len ? mw_buf_str(&s->rcpt_log) : "none",
	    s->header_bytes + s->body_bytes,
	    mw_buf_str(&s->results_summary), score,
	    s->skip_inbound ? (s->trusted ? " trusted" : " authenticated") : "",
	    s->exempt_rcpt ? " exempt" : "", verdict,
	    s->quarantine[0] != '\0' ? " (quarantined: held by the MTA)" : "",
	    s->dry_run_notes.len ? " dry_run=" : "",
	    mw_buf_str(&s->dry_run_notes));
}

const struct mw_verdict *
mw_session_eom(struct mw_session *s)
{
	const struct mw_verdict *v;
	size_t i;

	if (!s->in_transaction) {
		clear_changes(s);
		return out_of_order(s, "end of message");
	}
	s->phase = MW_PH_EOM;
	clear_changes(s);
	s->quarantine[0] = '\0';
	RUN_HOOK(s, on_eom);
	v = decide(s, 1, s->exempt_rcpt);
	build_authres(s);
	if (v->kind == MW_CONTINUE || v->kind == MW_ACCEPT) {
		/*
		 * Delete forged A-R fields from the last to the first, so the
		 * index of each is still right when its turn comes.  Module
		 * headers (pushed during on_eom) stay in their order after.
		 */
		struct mw_hdr_list added = s->changes;

		s->changes.v = NULL;
		s->changes.n = 0;
		for (i = s->n_ar_delete; i > 0; i--)
			push_change(s, MW_HDR_DELETE, "Authentication-Results",
			    NULL, s->ar_delete[i - 1]);
		if (s->authres != NULL)
			push_change(s, MW_HDR_INSERT, "Authentication-Results",
			    s->authres, 0);
		for (i = 0; i < added.n; i++) {
			push_change(s, added.v[i].op, added.v[i].name,
			    added.v[i].value, added.v[i].index);
			free((char *)added.v[i].name);
			free((char *)added.v[i].value);
		}
		free(added.v);
		if (s->dry_run_notes.len > 0)
			push_change(s, MW_HDR_ADD, "X-Mailwarden-Dry-Run",
			    mw_buf_str(&s->dry_run_notes), 0);
	} else {
		clear_changes(s);
		s->quarantine[0] = '\0';
	}
	log_transaction(s, 0);
	record_stats(s, v);
	s->verdict = *v;
	reset_transaction(s);
	return &s->verdict;
}

const struct mw_verdict *
mw_session_message(struct mw_session *s, const struct mw_message *m)
{
	size_t i, n;

	for (i = 0; i < m->n; i++)
		(void)mw_session_header(s, m->names[i], m->values[i]);
	(void)mw_session_eoh(s);
	for (i = 0; i < m->bodylen; i += n) {
		n = m->bodylen - i < MW_MSG_CHUNK ? m->bodylen - i :
		    MW_MSG_CHUNK;
		(void)mw_session_body(s, m->body + i, n);
	}
	return &s->verdict;
}

void
mw_session_abort(struct mw_session *s)
{
	if (!s->in_transaction)
		return;
	build_authres(s);
	log_transaction(s, 1);
	record_stats(s, NULL);
	reset_transaction(s);
}

size_t
mw_session_changes(const struct mw_session *s,
    const struct mw_hdr_change **v)
{
	*v = s->changes.v;
	return s->changes.n;
}

const char *
mw_session_authres(const struct mw_session *s)
{
	return s->authres;
}

const char *
mw_session_mail_from(const struct mw_session *s)
{
	return s->mail_from;
}

int
mw_session_trusted(const struct mw_session *s)
{
	return s->trusted;
}

int
mw_session_skips_inbound(const struct mw_session *s)
{
	return s->skip_inbound;
}

const struct mw_verdict *
mw_session_verdict(const struct mw_session *s)
{
	return &s->verdict;
}

const struct mw_shared_results *
mw_session_results(const struct mw_session *s)
{
	return &s->res;
}

void
mw_session_set_results(struct mw_session *s,
    const struct mw_shared_results *r)
{
	s->res = *r;
}

void
mw_session_set_conn_score(struct mw_session *s, double score)
{
	s->conn_score = score;
}
