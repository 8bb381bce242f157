/*
 * mw_redis -- the one Redis client of mailwarden, section [redis]: every
 * feature that keeps state shared by several MX hosts (greylisting, the
 * DMARC report store) talks to Redis through this, never to hiredis
 * connections of its own.
 *
 * HOW TO CALL IT
 *
 * The handle is process-wide, one per loaded configuration, made by
 * mw_ctx_new() (lazily: no connection is opened until the first call):
 *
 *	struct mw_redis *r = mw_session_redis(s);	-- in a hook
 *	struct mw_redis *r = mw_ctx_redis(ctx);		-- outside sessions
 *
 * One command, or a pipeline of several sent in one round trip:
 *
 *	const char *set[] = { "SET", key, value };
 *	const char *exp[] = { "EXPIRE", key, "3600" };
 *	struct mw_redis_cmd cmds[] = { { 3, set, NULL }, { 3, exp, NULL } };
 *	struct redisReply *rep[2];
 *	char err[256];
 *
 *	switch (mw_redis_run(r, cmds, 2, rep, err, sizeof(err))) {
 *	case MW_REDIS_OK:	-- rep[0], rep[1] are the replies (none is an
 *				   error reply); mw_redis_free_replies(rep, 2)
 *	case MW_REDIS_TEMP:	-- no master known, unreachable, timeout,
 *				   failover in progress (READONLY, LOADING,
 *				   MASTERDOWN ...): apply your fail_mode
 *	case MW_REDIS_PERM:	-- Redis refused the command itself
 *				   (WRONGTYPE, NOPERM, a script error) or the
 *				   credentials (WRONGPASS): retrying the same
 *				   thing will not help; fail_mode too, and
 *				   say so in the log
 *	}
 *
 * A Lua script is run with mw_redis_eval(): EVALSHA, and the whole text
 * (EVAL) only when the server answers NOSCRIPT (restart, failover).
 * err is always set on failure; *quiet (mw_redis_run_quiet) tells that
 * mw_redis logged this failure itself (unreachable, failover, refused
 * AUTH: once per outage, with the server's words): log it at LOG_DEBUG
 * then, so an outage is one log line, not one per recipient.  A refused
 * command (WRONGTYPE, NOPERM) is not logged here: *quiet is 0.
 *
 * THREADS
 *
 * libmilter runs a thread per SMTP connection.  Connections are neither
 * per session nor per thread: every call borrows an idle connection from
 * the handle's pool (or opens one), uses it for that call only and gives
 * it back.  The pool mutex is held to push or pop, never during I/O.  So
 * any thread may call at any time and no caller holds a connection
 * between calls.  Why: per session would pay a TCP handshake, AUTH and
 * ROLE for every SMTP connection; per thread would keep hundreds of idle
 * connections open on a busy MX.  The pool keeps about as many
 * connections as calls in flight (at most pool_size idle).
 *
 * TIME
 *
 * A call never takes longer than connect_timeout_ms + timeout_ms, master
 * discovery through the sentinels included.  After a failure to reach
 * Redis, calls fail at once (MW_REDIS_TEMP, quiet) for
 * reconnect_interval_ms; the first call after that tries again, so the
 * daemon reconnects (and finds a new master) by itself.
 *
 * SENTINEL
 *
 * With `sentinels` and `master_name` the master is asked of the sentinels
 * (SENTINEL get-master-addr-by-name, first sentinel that answers), and
 * every new connection checks with ROLE that it reached a master.  A
 * connection error, a READONLY/LOADING/MASTERDOWN reply or a demoted
 * master makes the handle forget the master and drop the pool; the next
 * call after reconnect_interval_ms asks the sentinels again.
 *
 * Metrics (mw_stats.h): commands, errors, connections, the current
 * master, failovers seen, seconds without a master.
 */
#ifndef MW_REDIS_H
#define MW_REDIS_H

#include <stdbool.h>
#include <stddef.h>

#define MW_REDIS_MAX_SENTINELS	16

struct redisReply;
struct mw_stats;
struct mw_redis;

struct mw_redis_addr {
	char	host[256];	/* host, address, or unix socket path */
	int	port;		/* 0 = unix socket */
};

/* [redis], filled by the config loader (mw_config.c). */
struct mw_redis_cfg {
	char			server[300];	/* as written */
	struct mw_redis_addr	addr;		/* server, parsed */
	char			sentinels_text[1024];	/* as written */
	struct mw_redis_addr	sentinels[MW_REDIS_MAX_SENTINELS];
	size_t			n_sentinels;
	int			sentinels_line;	/* ini line, for cfg_check */
	char			master_name[128];
	int			master_name_line;
	char			username[128];
	int			username_line;
	char			password[512];	/* or read from password_file */
	char			password_file[512];
	int			password_file_line;
	int			password_line;
	long			database;
	long			connect_timeout_ms;
	long			timeout_ms;
	long			reconnect_interval_ms;
	long			pool_size;
};

enum mw_redis_result {
	MW_REDIS_OK = 0,
	MW_REDIS_TEMP,		/* Redis (or its master) unavailable for now */
	MW_REDIS_PERM		/* the command or the credentials refused */
};

struct mw_redis_cmd {
	int			 argc;
	const char *const	*argv;
	const size_t		*argvlen;	/* NULL: strlen of each */
};

/* ---- configuration (for mw_config.c) ---- */
void	mw_redis_cfg_init(struct mw_redis_cfg *c);
/* One key of [redis]: 0, -1 with err, 1 unknown key. */
int	mw_redis_cfg_set(struct mw_redis_cfg *c, const char *key,
	    const char *value, int line, char *err, size_t errlen);
/* Is key one of [redis] (the old [greylist] spellings map here)? */
int	mw_redis_cfg_is_key(const char *key);
/*
 * The section as a whole (sentinels need master_name, password_file is
 * read and its mode checked): 0, or -1 with err and *line (0: none).
 */
int	mw_redis_cfg_check(struct mw_redis_cfg *c, int *line, char *err,
	    size_t errlen);
void	mw_redis_cfg_dump(const struct mw_redis_cfg *c, void *fp);
/* Where we point, for log lines: "127.0.0.1:6379" or "sentinel mymaster". */
const char *mw_redis_cfg_target(const struct mw_redis_cfg *c);

/* ---- the handle ---- */
int	mw_redis_new(const struct mw_redis_cfg *c, struct mw_redis **out,
	    char *err, size_t errlen);
void	mw_redis_free(struct mw_redis *r);
/* Count into st (may be NULL); call before the first command. */
void	mw_redis_set_stats(struct mw_redis *r, struct mw_stats *st);
const char *mw_redis_target(const struct mw_redis *r);

enum mw_redis_result mw_redis_run(struct mw_redis *r,
	    const struct mw_redis_cmd *cmds, size_t n,
	    struct redisReply **replies, char *err, size_t errlen);
/* The same, and *quiet = 1 when this outage was logged already. */
enum mw_redis_result mw_redis_run_quiet(struct mw_redis *r,
	    const struct mw_redis_cmd *cmds, size_t n,
	    struct redisReply **replies, int *quiet, char *err,
	    size_t errlen);
void	mw_redis_free_replies(struct redisReply **replies, size_t n);

/* A Lua script, named by the SHA-1 of its text. */
struct mw_redis_script {
	const char	*text;
	char		 sha[41];
};
int	mw_redis_script_init(struct mw_redis_script *sc, const char *text,
	    char *err, size_t errlen);
/*
 * EVALSHA sha nkeys keys... args... (argv holds the keys, then the
 * arguments; argc of them), falling back to EVAL on NOSCRIPT.
 */
enum mw_redis_result mw_redis_eval(struct mw_redis *r,
	    const struct mw_redis_script *sc, int nkeys, int argc,
	    const char *const *argv, struct redisReply **reply, int *quiet,
	    char *err, size_t errlen);

#endif /* MW_REDIS_H */
