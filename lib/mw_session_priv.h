/*
 * mw_session_priv.h -- the session as check modules see it.  Only lib/
 * includes this; the daemon uses mw_session.h.
 *
 * Decisions from a module:
 *   mw_session_act(s, &cfg->fail_action, 550, "5.7.1", "text", ...)
 *	applies the admin's configured action for a check result.  A score
 *	is added up; a reject or tempfail is held until the first SMTP phase
 *	where it may be given (RCPT for checks that run before DATA, end of
 *	message for content checks), so that postmaster@ can still be
 *	reached (RFC 5321 section 4.5.1).
 *   mw_session_refuse(s, MW_REJECT, 552, "5.3.4", "text", ...)
 *	answers the current event right away (the size cap).
 * Both honour [milter] dry_run.
 */
#ifndef MW_SESSION_PRIV_H
#define MW_SESSION_PRIV_H

#include <netinet/in.h>
#include <stdint.h>

#include "mw_buf.h"
#include "mw_config.h"
#include "mw_dns.h"
#include "mw_module.h"
#include "mw_session.h"
#include "mw_stats.h"
#include "mw_verdict.h"

enum mw_phase {
	MW_PH_NEW = 0, MW_PH_CONNECT, MW_PH_HELO, MW_PH_MAIL, MW_PH_RCPT,
	MW_PH_HEADER, MW_PH_EOH, MW_PH_BODY, MW_PH_EOM
};

/*
 * Results one check publishes for others (struct mw_shared_results, in
 * mw_session.h): DMARC reads SPF and DKIM, greylisting reads the DNSWL
 * listing.  Only our own results go there, never anything parsed from
 * the message's headers.  Each field is written and reset only by the
 * module named beside it (per-message ones in its on_reset hook); the
 * session never touches them.
 */

struct mw_hdr_list {
	struct mw_hdr_change	*v;
	size_t			 n;
};

struct mw_session {
	struct mw_ctx		*ctx;
	const struct mw_config	*cfg;
	struct mw_dns_batch	*dns;
	enum mw_phase		 phase;

	/* connection */
	char			 ip[64];
	int			 family;	/* AF_INET, AF_INET6, 0 = unknown */
	uint8_t			 addr[16];
	char			*client_name;	/* MTA's verified name or NULL */
	int			 port;
	char			*helo;
	char			*queue_id;
	char			*auth_authen;
	int			 trusted;	/* in trusted_networks */
	int			 authenticated;
	int			 skip_inbound;	/* trusted or authenticated */
	struct {
		int		 on;		/* TLS in use (a version given) */
		char		 version[32];
		char		 cipher[128];
		char		 bits[16];
		char		 cert_subject[256];
		char		 cert_issuer[256];
		char		 verify[16];
	}			 tls;		/* mw_session_set_tls() */
	unsigned long		 n_messages;

	/* transaction */
	int			 in_transaction;
	char			*mail_from;	/* without <>, "" = null sender */
	unsigned long long	 size_declared;	/* ESMTP SIZE=, 0 = none */
	int			 smtputf8;	/* ESMTP SMTPUTF8 given */
	char			**rcpts;	/* accepted, without <> */
	size_t			 n_rcpts;
	struct mw_buf		 rcpt_log;	/* every RCPT and its answer */
	size_t			 n_rcpt_refused;	/* RCPTs we refused */
	struct mw_buf		 rcpt_refusals;	/* their distinct replies */
	int			 exempt_rcpt;	/* postmaster@ among them */
	unsigned long long	 header_bytes;
	unsigned long long	 body_bytes;
	unsigned long		 n_headers;
	int			 n_ar_seen;	/* A-R fields so far */
	int			*ar_delete;	/* their indexes to delete */
	size_t			 n_ar_delete;

	/* decisions */
	struct mw_verdict	 verdict;	/* returned to the caller */
	struct mw_verdict	 immediate;	/* mw_session_refuse() */
	struct mw_verdict	 conn_policy;	/* held, before MAIL */
	struct mw_verdict	 msg_policy;	/* held, this message */
	double			 conn_score, msg_score;
	struct mw_buf		 conn_reasons, msg_reasons;
	struct mw_buf		 dry_run_notes;
	struct mw_verdict	 final;		/* for the log line */

	/* output */
	char			*authres;	/* last A-R value */
	char			 quarantine[256];	/* hold reason, "" = none */
	struct mw_hdr_list	 changes;
	struct mw_buf		 results_summary;

	/* results checks share (see struct mw_shared_results) */
	struct mw_shared_results res;

	/* mailwarden-check (mw_session_set_explain, _set_read_only) */
	int			 explain;	/* keep mw_session_note()s */
	/*
	 * read_only: a test transaction.  Checks that keep state look it
	 * up but store nothing (greylisting: report what the triplet would
	 * get, never create or pass it).
	 */
	int			 read_only;
	const char		*running;	/* module whose hook runs */
	int			 running_index;	/* its index, -1 outside hooks */
	struct mw_note		*notes;
	size_t			 n_notes;

	void			*state[MW_MAX_MODULES];
	void			*global[MW_MAX_MODULES];

	/* statistics (mw_stats.h); stats NULL: nothing is counted */
	struct mw_stats		*stats;
	uint64_t		 txn_start_ns;	/* MAIL FROM */
	uint64_t		 data_ns;	/* headers + body, this message */
	uint64_t		 hook_ns[MW_MAX_MODULES];	/* this transaction */
	unsigned int		 results_mask;	/* modules with a result */
	const char		*conn_policy_by;	/* module that set it */
	const char		*msg_policy_by;
	const char		*immediate_by;
	const char		*final_by;	/* who refused ("score") */
	enum mw_phase		 final_phase;
};

/*
 * Is this header field name `want`?  Case-insensitive, and white space
 * between the name and the colon is ignored (RFC 5322 section 4.5.3,
 * obsolete syntax: "From : x" is a From field, whatever the MTA passes
 * on).  Every check that looks for a field by name uses this.
 */
int	mw_header_name_is(const char *name, const char *want);

void	mw_session_act(struct mw_session *s, const struct mw_action *a,
	    int code, const char *xcode, const char *fmt, ...)
	    __attribute__((format(printf, 5, 6)));
void	mw_session_refuse(struct mw_session *s, enum mw_verdict_kind kind,
	    int code, const char *xcode, const char *fmt, ...)
	    __attribute__((format(printf, 5, 6)));
/* A header for the delivered message (Received-SPF, ...), at end of message. */
void	mw_session_add_header(struct mw_session *s, const char *name,
	    const char *value);
/* A header for the top of the delivered message (DKIM-Signature). */
void	mw_session_insert_header(struct mw_session *s, const char *name,
	    const char *value);
/*
 * 1 if the recipient (without <>) is one of [policy] exempt_recipients,
 * for checks that answer per RCPT with mw_session_refuse (greylisting).
 */
int	mw_session_rcpt_is_exempt(const struct mw_session *s,
	    const char *rcpt);
/*
 * Evidence for `mailwarden-check` (explain mode): what a check looked at
 * and why it decided as it did -- the DNS answers it used, the record,
 * the mechanism that matched, the signature that failed.  One line per
 * call, in plain words; the tool prints them under the SMTP phase they
 * were noted in.  Kept only when the session explains (s->explain, set
 * by the tool): otherwise a no-op costing one test, so modules call it
 * freely.  Text is cleaned of control characters and bounded.
 *	mw_session_note(s, "spf", "record %s: \"%s\"", domain, txt);
 *	mw_session_note(s, "spf", "matched %s -> %s", mech, result);
 *	mw_session_note_dns(s, "iprev", answer);
 *	  -> "PTR 1.2.0.192.in-addr.arpa: mx.example.org"
 * Actions (mw_session_act, mw_session_refuse) are noted by the session
 * itself, with the module whose hook made them.
 */
void	mw_session_note(struct mw_session *s, const char *module,
	    const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void	mw_session_note_dns(struct mw_session *s, const char *module,
	    const struct mw_dns_answer *a);
/*
 * Ask the MTA to hold the message (milter smfi_quarantine: Postfix's hold
 * queue) with this reason, at end of message.  Dry run: noted instead.
 */
void	mw_session_set_quarantine(struct mw_session *s, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
/* The running module's shared handle from global_new (NULL outside hooks). */
void	*mw_session_global(struct mw_session *s);
/*
 * What the policy holds against the current recipient so far, for a
 * check that answers per RCPT itself (greylisting: no triplet for mail
 * that is refused anyway): MW_REJECT if a reject is held or the score
 * reached reject_score, else MW_TEMPFAIL if a tempfail is held or the
 * score reached tempfail_score, else MW_CONTINUE.  Exempt recipients and
 * dry_run are not taken into account.
 */
enum mw_verdict_kind mw_session_policy_outlook(const struct mw_session *s);
/* The score so far: connection plus message. */
double	mw_session_score(const struct mw_session *s);

/*
 * For the statistics: a result of the running check that has no
 * Authentication-Results resinfo (greylisting: "greylisted", "pass",
 * "unchecked"; size: "fail").  A-R results are counted by the session.
 */
void	mw_session_result(struct mw_session *s, const char *result);
/* The shared Redis client of [redis] (mw_redis.h), for any check. */
struct mw_redis *mw_session_redis(const struct mw_session *s);
/* The process statistics, or NULL (mw_stats_* calls accept NULL). */
struct mw_stats *mw_session_stats(const struct mw_session *s);

#endif /* MW_SESSION_PRIV_H */
