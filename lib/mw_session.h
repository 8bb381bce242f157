/*
 * mw_session -- one SMTP connection as the policy library sees it.
 *
 * The daemon (or a test, or mailwarden-check) creates a session per
 * connection and feeds it the SMTP events in order.  Every call returns
 * a verdict: MW_CONTINUE (go on), MW_ACCEPT, MW_TEMPFAIL or MW_REJECT
 * with code, enhanced code and text.  After end of message the header
 * changes (Authentication-Results to insert, forged ones to delete) are
 * read with mw_session_changes().  No libmilter in here.
 *
 *	struct mw_ctx *ctx;
 *	mw_ctx_new(cfg, &ctx, err, sizeof(err));	-- once per process
 *	struct mw_session *s = mw_session_new(ctx);	-- per connection
 *	v = mw_session_connect(s, "192.0.2.1", "mx.example.org", 25);
 *	v = mw_session_helo(s, "mx.example.org");
 *	v = mw_session_mail(s, "<a@example.org>", args, nargs);
 *	v = mw_session_rcpt(s, "<b@example.net>", NULL, 0);
 *	v = mw_session_header(s, "Subject", "hello");  ... per header
 *	v = mw_session_eoh(s);
 *	v = mw_session_body(s, buf, len);  ... per chunk
 *	v = mw_session_eom(s);
 *	n = mw_session_changes(s, &changes);
 *	mw_session_free(s);
 *
 * mw_session_abort() ends a transaction early (RSET, or the MTA dropped
 * the message); the session is then ready for the next MAIL FROM.
 */
#ifndef MW_SESSION_H
#define MW_SESSION_H

#include <stddef.h>

#include "mw_config.h"
#include "mw_verdict.h"

struct mw_ctx;
struct mw_session;

/*
 * The process-wide context: the loaded config (ownership moves to the
 * ctx), the resolver and each module's shared handle.  Reference
 * counted: the daemon swaps in a new one on SIGHUP while sessions finish
 * with the old.
 */
int		 mw_ctx_new(struct mw_config *cfg, struct mw_ctx **ctxp,
		    char *err, size_t errlen);
struct mw_ctx	*mw_ctx_ref(struct mw_ctx *ctx);
void		 mw_ctx_unref(struct mw_ctx *ctx);
const struct mw_config *mw_ctx_config(const struct mw_ctx *ctx);
struct mw_dns	*mw_ctx_dns(const struct mw_ctx *ctx);
/* The shared Redis client of [redis] (mw_redis.h); no connection until used. */
struct mw_redis	*mw_ctx_redis(const struct mw_ctx *ctx);
/*
 * `mailwarden -t`: run every enabled module's self-check (DKIM: are the
 * signing keys published in DNS and do they match?).  Prints one
 * "warning: ..." line per problem to fp (a FILE *); returns how many.
 */
int		 mw_ctx_self_check(struct mw_ctx *ctx, void *fp);
/*
 * Count into st (mw_stats.h; not owned, must outlive the ctx): the
 * daemon's /metrics and status page.  Without it nothing is counted.
 */
struct mw_stats;
void		 mw_ctx_set_stats(struct mw_ctx *ctx, struct mw_stats *st);

enum mw_hdr_op {
	MW_HDR_INSERT,		/* insert name: value at position index (0 = top) */
	MW_HDR_ADD,		/* append at the end of the header */
	MW_HDR_DELETE		/* delete the index-th (1-based) field called name */
};

struct mw_hdr_change {
	enum mw_hdr_op	 op;
	const char	*name;
	const char	*value;	/* NULL for delete */
	int		 index;
};

/* A check's result, as in Authentication-Results. */
enum mw_auth_result {
	MW_AUTH_NONE = 0, MW_AUTH_PASS, MW_AUTH_FAIL, MW_AUTH_SOFTFAIL,
	MW_AUTH_NEUTRAL, MW_AUTH_TEMPERROR, MW_AUTH_PERMERROR, MW_AUTH_POLICY
};

/* Name of a result, as in Authentication-Results ("pass", "temperror"). */
const char *mw_auth_result_name(enum mw_auth_result r);

#define MW_MAX_DKIM_RESULTS	16
#define MW_MAX_ARC_AAR_DKIM	4

/*
 * Results one check publishes for others (DMARC reads SPF and DKIM,
 * greylisting iprev, the DNSWL listing and SPF).  Read them with
 * mw_session_results().
 */
struct mw_shared_results {
	/* SPF, set by mw_spf at MAIL FROM (per message) */
	int			spf_done;
	enum mw_auth_result	spf;		/* MAIL FROM identity */
	char			spf_domain[256];	/* domain checked */
	enum mw_auth_result	spf_helo;	/* HELO identity */
	/* DKIM, set by mw_dkim at end of message (per message) */
	int			dkim_done;
	size_t			n_dkim;
	struct {
		enum mw_auth_result	result;
		char			domain[256];	/* d= */
		char			selector[128];	/* s= */
	}			dkim[MW_MAX_DKIM_RESULTS];
	/*
	 * ARC, set by mw_arc at end of message (per message): the chain's
	 * cv (NONE, PASS, FAIL); with PASS the newest ARC-Seal's d=, and
	 * if that sealer is in [arc] trusted_sealers (arc_trusted) the
	 * passes its ARC-Authentication-Results reports: dmarc=pass (and
	 * its header.from), dkim=pass domains, the spf=pass domain.
	 */
	int			arc_done;
	enum mw_auth_result	arc;
	char			arc_sealer[256];
	int			arc_trusted;
	int			arc_aar_dmarc;
	char			arc_aar_from[256];
	size_t			n_arc_aar_dkim;
	char			arc_aar_dkim[MW_MAX_ARC_AAR_DKIM][256];
	char			arc_aar_spf[256];
	/* connection checks (per connection) */
	int			dnswl_listed;	/* mw_dnsbl: an allowlist matched */
	int			iprev_pass;	/* mw_iprev */
	char			iprev_name[256];	/* the name that passed */
};

struct mw_session	*mw_session_new(struct mw_ctx *ctx);
void			 mw_session_free(struct mw_session *s);

/* Optional facts from the MTA; call before the event they matter to. */
void	mw_session_set_queue_id(struct mw_session *s, const char *qid);
void	mw_session_set_auth(struct mw_session *s, const char *authen);
/*
 * TLS of the inbound hop, as the MTA's macros tell it ({tls_version},
 * {cipher}, {cipher_bits}, {cert_subject}, {cert_issuer}, {verify};
 * Postfix and Sendmail send them at HELO).  A NULL or empty version means
 * plaintext.  Each call replaces what an earlier one said (the client
 * says EHLO again after STARTTLS).  Values are copied, bounded and made
 * printable; any member may be NULL.
 */
struct mw_tls_info {
	const char	*version;	/* "TLSv1.3" */
	const char	*cipher;	/* "TLS_AES_256_GCM_SHA384" */
	const char	*bits;		/* "256" */
	const char	*cert_subject;	/* client certificate, if any */
	const char	*cert_issuer;
	const char	*verify;	/* "OK", "FAIL", "NO", "NONE" */
};
void	mw_session_set_tls(struct mw_session *s, const struct mw_tls_info *t);

const struct mw_verdict *mw_session_connect(struct mw_session *s,
	    const char *ip, const char *hostname, int port);
const struct mw_verdict *mw_session_helo(struct mw_session *s,
	    const char *helo);
const struct mw_verdict *mw_session_mail(struct mw_session *s,
	    const char *from, char *const *args, size_t nargs);
const struct mw_verdict *mw_session_rcpt(struct mw_session *s,
	    const char *rcpt, char *const *args, size_t nargs);
const struct mw_verdict *mw_session_header(struct mw_session *s,
	    const char *name, const char *value);
const struct mw_verdict *mw_session_eoh(struct mw_session *s);
const struct mw_verdict *mw_session_body(struct mw_session *s,
	    const unsigned char *buf, size_t len);
const struct mw_verdict *mw_session_eom(struct mw_session *s);
void			 mw_session_abort(struct mw_session *s);
/*
 * A whole message read with mw_message_load() (mw_message.h), for test
 * programs and tools: every header field, the end of the header, the body
 * in chunks of MW_MSG_CHUNK bytes, as the milter gives them.  Returns the
 * verdict of the last event; end of message is still the caller's.
 */
struct mw_message;
const struct mw_verdict *mw_session_message(struct mw_session *s,
	    const struct mw_message *m);

/*
 * For mailwarden-check.  Explain: keep the evidence checks note (DNS
 * answers used, records, the mechanism that matched) and every action
 * they take; read with mw_session_notes() -- the list only grows during
 * the session.  Read-only: checks that keep state (greylisting) look
 * but record nothing.  Call right after mw_session_new().
 */
void	mw_session_set_explain(struct mw_session *s, int on);
void	mw_session_set_read_only(struct mw_session *s, int on);

enum mw_note_kind {
	MW_NOTE_EVIDENCE = 0,	/* mw_session_note() of a module */
	MW_NOTE_ACTION,		/* a check result's configured action */
	MW_NOTE_REFUSE		/* an immediate answer (size cap, greylist) */
};

struct mw_note {
	enum mw_note_kind	 kind;
	const char		*module;	/* "spf", or "session" */
	const char		*phase;		/* "connect" ... "eom" */
	struct mw_action	 action;	/* MW_NOTE_ACTION */
	struct mw_verdict	 verdict;	/* actions: code, xcode, text */
	const char		*text;		/* evidence, one line */
};

size_t	mw_session_notes(const struct mw_session *s,
	    const struct mw_note **v);

/* Header changes decided at end of message, in the order to apply. */
size_t	mw_session_changes(const struct mw_session *s,
	    const struct mw_hdr_change **v);
/*
 * The hold reason for the last message when a check (DMARC p=quarantine)
 * asks for it, else NULL: the milter calls smfi_quarantine(ctx, reason).
 */
const char *mw_session_quarantine(const struct mw_session *s);
/* The Authentication-Results value of the last message (tests, -check). */
const char *mw_session_authres(const struct mw_session *s);

/*
 * What the session knows so far, for mailwarden-check and tests: the
 * envelope sender without <> ("" = null sender, NULL outside a
 * transaction), whether the client is in trusted_networks, whether
 * inbound checks are skipped (trusted or authenticated), the verdict of
 * the last event (the same pointer the event returned), the checks'
 * published results.
 */
const char *mw_session_mail_from(const struct mw_session *s);
int	mw_session_trusted(const struct mw_session *s);
int	mw_session_skips_inbound(const struct mw_session *s);
const struct mw_verdict *mw_session_verdict(const struct mw_session *s);
const struct mw_shared_results *mw_session_results(
	    const struct mw_session *s);
/*
 * Test drivers only, standing in for checks they turned off ([spf]
 * enabled = no, ...): publish results as those checks would have (after
 * the event where they would: MAIL FROM for SPF), and set the connection
 * score the connection checks would have added up.
 */
void	mw_session_set_results(struct mw_session *s,
	    const struct mw_shared_results *r);
void	mw_session_set_conn_score(struct mw_session *s, double score);

#endif /* MW_SESSION_H */
