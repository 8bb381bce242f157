/*
 * mw_stats -- counters, latency histograms and the recent-transactions
 * ring behind the daemon's /metrics (Prometheus) and status page.
 *
 * One struct mw_stats per process, made by the daemon and handed to each
 * context (mw_ctx_set_stats); it outlives configuration reloads, so
 * counters never go back to zero on SIGHUP.  Every counting call takes a
 * NULL stats pointer and then does nothing: mailwarden-check and the
 * tests count nothing.
 *
 * Cost on the hot path: counters and histogram buckets are relaxed
 * atomics (no lock); the per-zone DNSBL table and the transaction ring
 * take one short mutex, never held across I/O.  Rendering copies under
 * the same mutex.
 *
 *	struct mw_stats *st = mw_stats_new(100, 1);	-- history, show addresses
 *	mw_stats_inc(st, MW_ST_DNS_QUERIES);
 *	mw_stats_observe(st, mw_stats_check_hist(st, module), seconds);
 *	mw_stats_transaction(st, &txn);			-- end of a transaction
 *	mw_stats_render_metrics(st, &buf);		-- Prometheus text format
 *	mw_stats_free(st);
 */
#ifndef MW_STATS_H
#define MW_STATS_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct mw_buf;
struct mw_stats;

/* Plain counters (each a Prometheus _total, see mw_stats.c for names). */
enum mw_stat {
	MW_ST_SESSIONS = 0,	/* SMTP connections seen */
	MW_ST_DNS_QUERIES,	/* sent to a server */
	MW_ST_DNS_CACHE_HITS,
	MW_ST_DNS_CACHE_MISSES,
	MW_ST_DNS_TIMEOUTS,
	MW_ST_DNS_SERVFAIL,
	MW_ST_DNS_OTHER_ERRORS,	/* refused, network, malformed */
	MW_ST_REDIS_COMMANDS,	/* commands sent */
	MW_ST_REDIS_ERRORS,	/* command or connection failures */
	MW_ST_REDIS_CONNECTS,	/* connections opened */
	MW_ST_REDIS_FAIL_OPEN,	/* Redis unusable: accepted (fail_mode = open) */
	MW_ST_REDIS_FAIL_CLOSED,	/* Redis unusable: tempfailed (closed) */
	MW_ST_REDIS_FAILOVERS,	/* the master moved (sentinel) */
	MW_ST_DKIM_SIGNED,	/* DKIM-Signature fields made */
	MW_ST_REPORTS_WRITTEN,	/* DMARC history (aggregate report) lines */
	MW_ST__N
};

/* SMTP phases timed on the milter side (one observation per call). */
enum mw_stats_phase {
	MW_STP_CONNECT = 0, MW_STP_HELO, MW_STP_MAIL, MW_STP_RCPT,
	MW_STP_DATA,		/* headers + body, summed per message */
	MW_STP_EOM, MW_STP__N
};

/* What one transaction came to, copied into the ring at its end. */
struct mw_stats_txn {
	time_t		 when;
	double		 seconds;	/* MAIL FROM to the end */
	const char	*queue_id;
	const char	*client_ip;
	const char	*client_name;	/* NULL: unknown */
	const char	*helo;
	const char	*mail_from;
	const char	*rcpts;		/* "<a@b>,<c@d> (550 5.7.1)" */
	const char	*results;	/* "iprev=pass spf=fail ..." */
	double		 score;
	const char	*verdict;	/* accept tempfail reject discard quarantine none */
	const char	*stage;		/* connect helo mail rcpt data eom abort */
	int		 code;		/* SMTP reply code (0: none) */
	const char	*xcode;
	const char	*text;		/* reply text */
	const char	*refused_by;	/* check (module) that refused, "score", NULL */
};

struct mw_stats	*mw_stats_new(size_t history, int show_addresses);
void		 mw_stats_free(struct mw_stats *st);
/* New [stats] values after a reload (the ring is emptied if it changes size). */
void		 mw_stats_configure(struct mw_stats *st, size_t history,
		    int show_addresses);

void	mw_stats_inc(struct mw_stats *st, enum mw_stat which);
void	mw_stats_sessions_active(struct mw_stats *st, int delta);
void	mw_stats_redis_pool_idle(struct mw_stats *st, long idle);
/*
 * The Redis master in use ("10.0.0.5:6379"), or NULL when none is known
 * (unreachable, failover going on): /metrics shows the current master
 * and the seconds spent without one.
 */
void	mw_stats_redis_master(struct mw_stats *st, const char *master);

/*
 * A check's result: module index (mw_modules[]) and the A-R result word
 * ("pass", "fail", ... or a module's own word such as "greylisted").
 * Words outside the known list are counted as "other".
 */
void	mw_stats_check_result(struct mw_stats *st, size_t module,
	    const char *result);
/* Time a check held the session up in this transaction. */
void	mw_stats_check_duration(struct mw_stats *st, size_t module,
	    double seconds);
void	mw_stats_phase_duration(struct mw_stats *st, enum mw_stats_phase ph,
	    double seconds);
/* A DNSBL/DNSWL zone listed the client (zone from our config). */
void	mw_stats_dnsbl_listed(struct mw_stats *st, const char *zone);

void	mw_stats_transaction(struct mw_stats *st, const struct mw_stats_txn *t);

/*
 * The configuration was loaded (reload = 0: at start; 1: on SIGHUP, ok
 * says whether the new file was taken or refused).
 */
void	mw_stats_config(struct mw_stats *st, const char *path, int reload,
	    int ok);

/* Prometheus text exposition format 0.0.4. */
void	mw_stats_render_metrics(struct mw_stats *st, struct mw_buf *out);
/* The status page (HTML; everything from the network escaped). */
void	mw_stats_render_page(struct mw_stats *st, struct mw_buf *out);

/* Monotonic nanoseconds, for timing. */
uint64_t	mw_stats_now_ns(void);

/* HTML-escape s (NUL-terminated) into out: & < > " ' and controls. */
void	mw_html_escape(struct mw_buf *out, const char *s);

#endif /* MW_STATS_H */
