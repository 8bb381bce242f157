/*
 * mw_dmarc.h -- what mailwarden-report needs of the [dmarc] section:
 * where the history is and the report_* keys (all documented in
 * etc/mailwarden.ini and mailwarden.ini(5)).
 *
 *	const struct mw_dmarc_report_cfg *rc = mw_dmarc_report_cfg(cfg);
 *	if (rc == NULL) -- no [dmarc] module compiled in
 *
 * The struct lives as long as the struct mw_config it came from.
 */
#ifndef MW_DMARC_H
#define MW_DMARC_H

#include "mw_config.h"

struct mw_dmarc_report_cfg {
	const char		*history_file;	/* "" = none */
	char			*org_name;	/* "" = authserv_id */
	char			*from;		/* report sender; "" = --out only */
	char			*submitter;	/* "" = domain of from */
	char			*extra_contact;	/* "" = none */
	char			*state_dir;	/* sent-once bookkeeping, queue */
	char			*sendmail;	/* sendmail(1) path */
	char			*smtp;		/* "host:port" relay, "" = sendmail */
	unsigned long long	 max_size;	/* largest report message */
	long			 interval;	/* seconds, divides a day */
	long			 retry_for;	/* seconds a queued report is tried */
	bool			 redis;		/* history_redis: the store is [redis] */
	char			*redis_key;	/* history_redis_key, a key prefix */
	long			 redis_max;	/* records per day kept */
	long			 redis_keep;	/* seconds kept after the day */
	const char		*failure_spool;	/* RFC 9991 reports to send */
	long			 failure_rate;	/* per domain and ... */
	long			 failure_period;	/* ... period (seconds) */
};

const struct mw_dmarc_report_cfg *mw_dmarc_report_cfg(
	    const struct mw_config *cfg);

#endif /* MW_DMARC_H */
