/*
 * mw_config -- mailwarden.ini, parsed with inih into one struct that is
 * never modified after mw_config_load() returns.  The daemon swaps in a
 * whole new struct on SIGHUP; sessions keep the one they started with.
 *
 *	struct mw_config *cfg;
 *	char err[512];
 *	if (mw_config_load("/etc/mailwarden.ini", &cfg, err, sizeof(err)) == -1)
 *		errx(1, "%s", err);	-- err is "file:line: what is wrong"
 *	...
 *	mw_config_free(cfg);
 *
 * The core sections ([milter], [policy], [dns]) are handled here; every
 * check module owns its own section through the mw_module interface.
 */
#ifndef MW_CONFIG_H
#define MW_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "mw_cidr.h"
#include "mw_redis.h"

#define MW_MAX_MODULES	16

struct mw_config {
	char			*path;

	/* [milter] */
	char			*socket;	/* libmilter spec */
	unsigned int		 socket_mode;	/* unix socket permissions */
	char			*user;		/* drop to after opening socket */
	char			*group;
	char			*authserv_id;
	bool			 dry_run;
	int			 log_level;	/* syslog priority, LOG_INFO */
	char			*log_facility_name;
	int			 log_facility;
	struct mw_cidr_list	 trusted_networks;
	char			*pidfile;
	bool			 auto_restart;	/* supervise the worker */
	int			 restart_max;	/* auto_restart_rate N/period */
	long			 restart_period; /* seconds */
	long			 milter_timeout; /* smfi_settimeout, seconds */

	/* [policy] */
	double			 reject_score;
	double			 tempfail_score;
	char			**exempt_localparts;	/* postmaster, abuse */
	size_t			 n_exempt_localparts;
	char			*reject_text;	/* text for score rejections */

	/* [dns] */
	char			*dns_nameservers;	/* NULL: resolv.conf */
	int			 dns_timeout_ms;
	int			 dns_tries;
	int			 dns_cache_size;

	/* [stats] -- metrics and status page over HTTP */
	char			*stats_listen;	/* "" = off; "127.0.0.1:9732" */
	struct mw_cidr_list	 stats_allow;	/* clients allowed */
	char			*stats_user;	/* basic auth user */
	char			*stats_password_file;	/* "" = no auth */
	char			*stats_password;	/* read from the file */
	long			 stats_history;	/* transactions kept */
	bool			 stats_show_addresses;
	long			 stats_max_connections;
	long			 stats_timeout;	/* seconds per HTTP connection */

	/*
	 * [redis] -- shared by every feature that keeps state in Redis.
	 * The old [greylist] spellings of these keys land here too.
	 */
	struct mw_redis_cfg	 redis;

	/* One config block per module, in mw_modules[] order. */
	void			*mod[MW_MAX_MODULES];
	/* [NAME] enabled = yes|no, a framework key of every module. */
	bool			 enabled[MW_MAX_MODULES];
};

int	mw_config_load(const char *path, struct mw_config **cfgp, char *err,
	    size_t errlen);
void	mw_config_free(struct mw_config *cfg);
/*
 * Does the host of an inet: socket resolve?  (The loader checks only its
 * syntax; the daemon asks at start and with -t.)  0, or -1 with err.
 */
int	mw_config_socket_host(const struct mw_config *cfg, char *err,
	    size_t errlen);
/* Print the effective configuration, every key, in ini form. */
void	mw_config_dump(const struct mw_config *cfg, void *fp);

/*
 * Value parsers shared by modules' cfg_set functions.  Each returns 0 or
 * -1 with err describing the problem (the caller prefixes file:line).
 */
int	mw_parse_bool(const char *s, bool *out, char *err, size_t errlen);
int	mw_parse_int(const char *s, long min, long max, long *out, char *err,
	    size_t errlen);
int	mw_parse_double(const char *s, double min, double max, double *out,
	    char *err, size_t errlen);
/* Duration: "300", "300s", "5m", "2h", "35d" -> seconds. */
int	mw_parse_duration(const char *s, long *out, char *err, size_t errlen);
/* Size: "26214400", "25M", "512k" -> bytes. */
int	mw_parse_size(const char *s, unsigned long long *out, char *err,
	    size_t errlen);
/*
 * Files the configuration names (the ini file itself, key tables, the
 * public suffix list ...): regular files only -- a directory, FIFO or
 * device is refused, never waited on (opened O_NONBLOCK) -- and at most
 * max bytes.  NULL / -1 with err set ("path: not a regular file (a
 * FIFO)").
 */
#define MW_CONFIG_MAX_BYTES	(16 * 1024 * 1024)
FILE	*mw_open_regular(const char *path, unsigned long long max, char *err,
	    size_t errlen);
int	mw_check_regular(const char *path, unsigned long long max, char *err,
	    size_t errlen);
/*
 * Secrets (passwords, keys) must not be readable or writable by others:
 * NULL if mode is fine, else "readable" or "writable" for the message.
 */
const char *mw_secret_mode_problem(unsigned int mode);
/*
 * A password file: a regular file, not readable or writable by others,
 * whose first line (without the newline) is the secret.  0 and a
 * malloc'ed *out (wipe and free it), or -1 with err ("PATH is readable
 * by others (mode 0644): chmod o-rwx it").
 */
int	mw_read_secret_file(const char *path, char **out, char *err,
	    size_t errlen);
/* Replace *dst with a copy of s. */
int	mw_set_string(char **dst, const char *s, char *err, size_t errlen);
/*
 * Copy s into the fixed buffer dst (a value kept in the configuration
 * without allocating); -1 with err ("WHAT is longer than N bytes") if it
 * does not fit.
 */
int	mw_set_fixed(char *dst, size_t dstlen, const char *s, const char *what,
	    char *err, size_t errlen);
/* Split a comma/space separated list and append the items to *v. */
int	mw_split_list(const char *s, char ***v, size_t *n, char *err,
	    size_t errlen);
void	mw_free_list(char **v, size_t n);
/*
 * "127.0.0.1:9732", "[::1]:9732" -> family (AF_INET/AF_INET6), 16 address
 * bytes and port; 0 or -1 with err.
 */
int	mw_parse_hostport(const char *s, int *family, unsigned char addr[16],
	    int *port, char *err, size_t errlen);

#endif /* MW_CONFIG_H */
