/*
 * mw_stats_priv.h -- the inside of struct mw_stats, shared by the
 * counting and /metrics code (mw_stats.c) and the status page renderer
 * (mw_statuspage.c).  Nothing else includes it.
 */
#ifndef MW_STATS_PRIV_H
#define MW_STATS_PRIV_H

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "mw_config.h"
#include "mw_stats.h"

#define MW_STATS_NBUCKETS	14	/* finite buckets; +Inf is one more */
#define MW_STATS_NWORDS		11	/* result words, "other" last */
#define MW_STATS_NVERDICTS	6
#define MW_STATS_NSTAGES	7
#define MW_STATS_MAX_ZONES	64
#define MW_STATS_MAX_REASONS	64
#define MW_STATS_MINUTES	60

extern const double mw_stats_bucket_le[MW_STATS_NBUCKETS];
extern const char *const mw_stats_words[MW_STATS_NWORDS];
extern const char *const mw_stats_verdicts[MW_STATS_NVERDICTS];
extern const char *const mw_stats_stages[MW_STATS_NSTAGES];
extern const char *const mw_stats_phases[MW_STP__N];

struct mw_stats_hist {
	atomic_ulong		b[MW_STATS_NBUCKETS + 1];	/* not cumulative */
	atomic_ullong		sum_ns;
};

/* One transaction as the status page shows it (masked if asked to). */
struct mw_stats_ent {
	time_t		when;
	double		seconds;
	double		score;
	int		code;
	char		qid[32];
	char		ip[64];
	char		name[128];
	char		helo[128];
	char		from[256];
	char		rcpts[512];
	char		results[512];
	char		verdict[16];
	char		stage[8];
	char		xcode[16];
	char		text[384];
	char		refused_by[24];
};

/* A refusal reason: which check refused, how, how often, last reply. */
struct mw_stats_reason {
	char		check[24];
	char		verdict[16];
	unsigned long	n;
	int		code;
	char		xcode[16];
	char		text[384];
};

struct mw_stats_minute {
	long		minute;		/* time / 60 */
	unsigned long	n[MW_STATS_NVERDICTS];
};

struct mw_stats {
	atomic_ulong		c[MW_ST__N];
	atomic_long		sessions_active;
	atomic_long		redis_idle;
	atomic_ulong		check[MW_MAX_MODULES][MW_STATS_NWORDS];
	struct mw_stats_hist	check_hist[MW_MAX_MODULES];
	struct mw_stats_hist	phase_hist[MW_STP__N];
	struct mw_stats_hist	txn_hist;
	atomic_ulong		txn[MW_STATS_NVERDICTS][MW_STATS_NSTAGES];
	time_t			started;

	/* below: under lock */
	pthread_mutex_t		lock;
	struct {
		char		name[256];
		unsigned long	n;
	}			zones[MW_STATS_MAX_ZONES];
	size_t			nzones;
	struct mw_stats_ent	*ring;
	size_t			ring_size, ring_next, ring_count;
	int			show_addresses;
	struct mw_stats_reason	reasons[MW_STATS_MAX_REASONS];
	size_t			nreasons;
	struct mw_stats_minute	minutes[MW_STATS_MINUTES];
	char			config_path[512];
	time_t			config_loaded;
	unsigned long		reloads_ok, reloads_failed;
	time_t			last_reload_ok;
	time_t			last_reload_failed;
	/* Redis master (mw_stats_redis_master) */
	int			redis_used;	/* ever reported */
	char			redis_master[300];	/* "" = none known */
	double			redis_no_master_since;	/* monotonic s; 0 */
	double			redis_no_master_s;	/* finished spans */
};

/* The Redis master and the seconds without one (mw_stats.c). */
void	mw_stats_redis_master_get(struct mw_stats *st, int *used,
	    char *master, size_t len, double *no_master_s);

#endif /* MW_STATS_PRIV_H */
