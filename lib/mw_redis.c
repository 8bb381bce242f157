/*
 * mw_redis -- section [redis] and the shared Redis client: a pool of
 * hiredis connections, master discovery through Redis Sentinel, AUTH
 * (ACL user + password, or password only), deadlines, and the
 * temporary/permanent classification of failures.  How to call it, and
 * why connections are pooled rather than per session or per thread, is
 * at the top of mw_redis.h.
 *
 * State of the handle, all under one mutex held only for bookkeeping,
 * never during I/O: the idle connections (each tagged with the
 * generation of the master it reaches), the master we believe in (in
 * sentinel mode) and its generation, and the "down" window during which
 * calls fail at once instead of waiting on a dead server again.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/stat.h>
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis/hiredis.h>
#include <openssl/evp.h>

#include "mw_config.h"
#include "mw_log.h"
#include "mw_redis.h"
#include "mw_stats.h"

/* ------------------------------------------------------------ config --- */

void
mw_redis_cfg_init(struct mw_redis_cfg *c)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->server, sizeof(c->server), "127.0.0.1:6379");
	snprintf(c->addr.host, sizeof(c->addr.host), "127.0.0.1");
	c->addr.port = 6379;
	c->connect_timeout_ms = 500;
	c->timeout_ms = 500;
	c->reconnect_interval_ms = 1000;
	c->pool_size = 16;
}

/*
 * "host", "host:port", "[v6addr]:port", "unix:/path" or "/path" (unix
 * only if allow_unix).  A host name is resolved by the system when a
 * connection is opened: prefer an address (or a name in /etc/hosts).
 */
static int
parse_addr(struct mw_redis_addr *a, const char *v, int defport,
    int allow_unix, char *err, size_t errlen)
{
	const char *colon, *host = v;
	size_t hostlen, i;
	long port = defport;

	if (strncmp(v, "unix:", 5) == 0 || v[0] == '/') {
		const char *path = v[0] == '/' ? v : v + 5;

		if (!allow_unix) {
			snprintf(err, errlen, "\"%s\": a sentinel is "
			    "host:port", v);
			return -1;
		}
		if (path[0] != '/') {
			snprintf(err, errlen, "\"%s\": unix socket path must "
			    "be absolute", v);
			return -1;
		}
		a->port = 0;
		return mw_set_fixed(a->host, sizeof(a->host), path,
		    "server path", err, errlen);
	}
	if (v[0] == '[') {
		const char *close = strchr(v, ']');

		if (close == NULL || (close[1] != '\0' && close[1] != ':')) {
			snprintf(err, errlen, "\"%s\" is not [address]:port", v);
			return -1;
		}
		host = v + 1;
		hostlen = (size_t)(close - host);
		colon = close[1] == ':' ? close + 1 : NULL;
	} else {
		colon = strchr(v, ':');
		if (colon != NULL && strchr(colon + 1, ':') != NULL) {
			snprintf(err, errlen, "\"%s\": write an IPv6 address "
			    "as [address]:port", v);
			return -1;
		}
		hostlen = colon != NULL ? (size_t)(colon - v) : strlen(v);
	}
	if (hostlen == 0 || hostlen >= sizeof(a->host)) {
		snprintf(err, errlen, "\"%s\": bad host", v);
		return -1;
	}
	/* A host name or an address: letters, digits, '.', '-', ':' */
	for (i = 0; i < hostlen; i++)
		if (!isalnum((unsigned char)host[i]) && host[i] != '.' &&
		    host[i] != '-' && host[i] != '_' && host[i] != ':') {
			snprintf(err, errlen, "\"%s\": bad host (a name, an "
			    "IPv4 address, [IPv6]:port%s)", v, allow_unix ?
			    " or unix:/path" : "");
			return -1;
		}
	if (colon != NULL && mw_parse_int(colon + 1, 1, 65535, &port, err,
	    errlen) == -1)
		return -1;
	memcpy(a->host, host, hostlen);
	a->host[hostlen] = '\0';
	a->port = (int)port;
	return 0;
}

static int
parse_sentinels(struct mw_redis_cfg *c, const char *v, char *err,
    size_t errlen)
{
	char **items = NULL;
	size_t n = 0, i;
	int ret = 0;

	if (mw_split_list(v, &items, &n, err, errlen) == -1)
		return -1;
	if (n == 0) {
		snprintf(err, errlen, "empty: list at least one host:port");
		ret = -1;
	} else if (n > MW_REDIS_MAX_SENTINELS) {
		snprintf(err, errlen, "more than %d sentinels",
		    MW_REDIS_MAX_SENTINELS);
		ret = -1;
	}
	for (i = 0; ret == 0 && i < n; i++)
		ret = parse_addr(&c->sentinels[i], items[i], 26379, 0, err,
		    errlen);
	if (ret == 0) {
		c->n_sentinels = n;
		ret = mw_set_fixed(c->sentinels_text,
		    sizeof(c->sentinels_text), v, "sentinels", err, errlen);
	}
	mw_free_list(items, n);
	return ret;
}

static const char *const redis_keys[] = {
	"server", "sentinels", "master_name", "username", "password",
	"password_file", "database", "connect_timeout_ms", "timeout_ms",
	"reconnect_interval_ms", "pool_size",
};

int
mw_redis_cfg_is_key(const char *key)
{
	size_t i;

	for (i = 0; i < sizeof(redis_keys) / sizeof(redis_keys[0]); i++)
		if (strcmp(key, redis_keys[i]) == 0)
			return 1;
	return 0;
}

static int
no_space(const char *v, const char *what, char *err, size_t errlen)
{
	for (; *v != '\0'; v++)
		if ((unsigned char)*v <= ' ' || *v == 0x7f) {
			snprintf(err, errlen, "no spaces or control characters "
			    "in %s", what);
			return -1;
		}
	return 0;
}

int
mw_redis_cfg_set(struct mw_redis_cfg *c, const char *k, const char *v,
    int line, char *err, size_t errlen)
{
	if (strcmp(k, "server") == 0) {
		if (parse_addr(&c->addr, v, 6379, 1, err, errlen) == -1)
			return -1;
		return mw_set_fixed(c->server, sizeof(c->server), v, "server",
		    err, errlen);
	}
	if (strcmp(k, "sentinels") == 0) {
		c->sentinels_line = line;
		return parse_sentinels(c, v, err, errlen);
	}
	if (strcmp(k, "master_name") == 0) {
		c->master_name_line = line;
		if (*v == '\0' || no_space(v, "master_name", err, errlen) == -1) {
			if (*v == '\0')
				snprintf(err, errlen, "empty");
			return -1;
		}
		return mw_set_fixed(c->master_name, sizeof(c->master_name), v,
		    "master_name", err, errlen);
	}
	if (strcmp(k, "username") == 0) {
		c->username_line = line;
		if (no_space(v, "username", err, errlen) == -1)
			return -1;
		return mw_set_fixed(c->username, sizeof(c->username), v,
		    "username", err, errlen);
	}
	if (strcmp(k, "password") == 0) {
		c->password_line = line;
		return mw_set_fixed(c->password, sizeof(c->password), v,
		    "password", err, errlen);
	}
	if (strcmp(k, "password_file") == 0) {
		if (v[0] != '/') {
			snprintf(err, errlen, "\"%s\": an absolute path", v);
			return -1;
		}
		c->password_file_line = line;
		return mw_set_fixed(c->password_file, sizeof(c->password_file),
		    v, "password_file", err, errlen);
	}
	if (strcmp(k, "database") == 0)
		return mw_parse_int(v, 0, 1000000, &c->database, err, errlen);
	if (strcmp(k, "connect_timeout_ms") == 0)
		return mw_parse_int(v, 1, 60000, &c->connect_timeout_ms, err,
		    errlen);
	if (strcmp(k, "timeout_ms") == 0)
		return mw_parse_int(v, 1, 60000, &c->timeout_ms, err, errlen);
	if (strcmp(k, "reconnect_interval_ms") == 0)
		return mw_parse_int(v, 0, 3600000, &c->reconnect_interval_ms,
		    err, errlen);
	if (strcmp(k, "pool_size") == 0)
		return mw_parse_int(v, 0, 1024, &c->pool_size, err, errlen);
	return 1;
}

int
mw_redis_cfg_check(struct mw_redis_cfg *c, int *line, char *err,
    size_t errlen)
{
	char *pw = NULL, why[400];

	*line = 0;
	if (c->n_sentinels > 0 && c->master_name[0] == '\0') {
		*line = c->sentinels_line;
		snprintf(err, errlen, "[redis] sentinels needs master_name (the "
		    "name the sentinels monitor the master under)");
		return -1;
	}
	if (c->n_sentinels == 0 && c->master_name[0] != '\0') {
		*line = c->master_name_line;
		snprintf(err, errlen, "[redis] master_name is set but "
		    "sentinels is not");
		return -1;
	}
	if (c->password_file[0] != '\0') {
		*line = c->password_file_line;
		if (c->password_line != 0) {
			snprintf(err, errlen, "[redis] password and "
			    "password_file: set one");
			return -1;
		}
		if (mw_read_secret_file(c->password_file, &pw, why,
		    sizeof(why)) == -1) {
			snprintf(err, errlen, "[redis] password_file: %s", why);
			return -1;
		}
		if (mw_set_fixed(c->password, sizeof(c->password), pw,
		    "password", err, errlen) == -1) {
			memset(pw, 0, strlen(pw));
			free(pw);
			return -1;
		}
		memset(pw, 0, strlen(pw));
		free(pw);
		*line = 0;
	}
	if (c->username[0] != '\0' && c->password[0] == '\0') {
		*line = c->username_line;
		snprintf(err, errlen, "[redis] username needs password or "
		    "password_file");
		return -1;
	}
	return 0;
}

const char *
mw_redis_cfg_target(const struct mw_redis_cfg *c)
{
	return c->n_sentinels > 0 ? c->master_name : c->server;
}

void
mw_redis_cfg_dump(const struct mw_redis_cfg *c, void *vfp)
{
	FILE *fp = vfp;

	fprintf(fp, "\n[redis]\n");
	if (c->n_sentinels > 0)
		fprintf(fp, "sentinels = %s\nmaster_name = %s\n",
		    c->sentinels_text, c->master_name);
	else
		fprintf(fp, "server = %s\n", c->server);
	fprintf(fp, "username = %s\n", c->username);
	/* The password stays out of `mailwarden -t` output. */
	if (c->password_file[0] != '\0')
		fprintf(fp, "password_file = %s\n", c->password_file);
	else if (c->password[0] != '\0')
		fprintf(fp, "; password is set (not shown)\n");
	else
		fprintf(fp, "password =\n");
	fprintf(fp, "database = %ld\nconnect_timeout_ms = %ld\n"
	    "timeout_ms = %ld\nreconnect_interval_ms = %ld\npool_size = %ld\n",
	    c->database, c->connect_timeout_ms, c->timeout_ms,
	    c->reconnect_interval_ms, c->pool_size);
}

/* ------------------------------------------------------------ handle --- */

struct pooled {
	redisContext	*rc;
	unsigned long	 gen;
};

struct mw_redis {
	const struct mw_redis_cfg *cfg;
	struct mw_stats		*st;
	char			 target[300];	/* for log lines */
	pthread_mutex_t		 lock;		/* guards the rest */
	struct pooled		*idle;		/* pool_size slots */
	size_t			 n_idle;
	unsigned long		 gen;		/* bumped when the master goes */
	int			 master_known;
	struct mw_redis_addr	 master;
	int			 had_master;	/* last_master is set */
	struct mw_redis_addr	 last_master;
	int			 discovering;	/* a thread asks the sentinels */
	long long		 down_until;	/* monotonic ms */
	int			 down;		/* last attempt failed */
};

static long long
now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static struct timeval
ms_tv(long long ms)
{
	struct timeval tv;

	if (ms < 1)
		ms = 1;
	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)((ms % 1000) * 1000);
	return tv;
}

static long long
min_ll(long long a, long long b)
{
	return a < b ? a : b;
}

static void
addr_text(const struct mw_redis_addr *a, char *buf, size_t len)
{
	if (a->port == 0)
		snprintf(buf, len, "unix:%s", a->host);
	else if (strchr(a->host, ':') != NULL)
		snprintf(buf, len, "[%s]:%d", a->host, a->port);
	else
		snprintf(buf, len, "%s:%d", a->host, a->port);
}

int
mw_redis_new(const struct mw_redis_cfg *c, struct mw_redis **out, char *err,
    size_t errlen)
{
	struct mw_redis *r;

	*out = NULL;
	if ((r = calloc(1, sizeof(*r))) == NULL ||
	    (c->pool_size > 0 && (r->idle = calloc((size_t)c->pool_size,
	    sizeof(*r->idle))) == NULL)) {
		free(r);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	r->cfg = c;
	if (c->n_sentinels > 0)
		snprintf(r->target, sizeof(r->target), "sentinel master %s",
		    c->master_name);
	else
		snprintf(r->target, sizeof(r->target), "%s", c->server);
	pthread_mutex_init(&r->lock, NULL);
	*out = r;
	return 0;
}

void
mw_redis_free(struct mw_redis *r)
{
	size_t i;

	if (r == NULL)
		return;
	for (i = 0; i < r->n_idle; i++)
		redisFree(r->idle[i].rc);
	free(r->idle);
	pthread_mutex_destroy(&r->lock);
	free(r);
}

void
mw_redis_set_stats(struct mw_redis *r, struct mw_stats *st)
{
	r->st = st;
}

const char *
mw_redis_target(const struct mw_redis *r)
{
	return r->target;
}

void
mw_redis_free_replies(struct redisReply **replies, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (replies[i] != NULL)
			freeReplyObject(replies[i]);
		replies[i] = NULL;
	}
}

/* Drop every idle connection (lock held); returns them to free. */
static size_t
take_all_idle(struct mw_redis *r, redisContext **v, size_t max)
{
	size_t n = 0;

	while (r->n_idle > 0 && n < max)
		v[n++] = r->idle[--r->n_idle].rc;
	return n;
}

static void
drain_pool(struct mw_redis *r)
{
	redisContext *v[64];
	size_t n, i;

	do {
		pthread_mutex_lock(&r->lock);
		n = take_all_idle(r, v, 64);
		pthread_mutex_unlock(&r->lock);
		for (i = 0; i < n; i++)
			redisFree(v[i]);
	} while (n == 64);
}

/* The master went away (or we reached a replica): ask again later. */
static void
forget_master(struct mw_redis *r, unsigned long gen)
{
	int forgot = 0;

	pthread_mutex_lock(&r->lock);
	if (r->gen == gen) {
		r->gen++;
		forgot = r->master_known;
		r->master_known = 0;
	}
	pthread_mutex_unlock(&r->lock);
	drain_pool(r);
	if (forgot)
		mw_stats_redis_master(r->st, NULL);
}

/*
 * A call failed for want of Redis: fail at once for a while.  Returns 1
 * if Redis was up until now (the caller logs this failure), 0 if this is
 * a known outage.
 */
static int
mark_down(struct mw_redis *r)
{
	int was_down;

	pthread_mutex_lock(&r->lock);
	was_down = r->down;
	r->down_until = now_ms() + r->cfg->reconnect_interval_ms;
	r->down = 1;
	pthread_mutex_unlock(&r->lock);
	if (r->cfg->n_sentinels == 0 && !was_down)
		mw_stats_redis_master(r->st, NULL);
	return !was_down;
}

static void
mark_up(struct mw_redis *r)
{
	int was_down;

	pthread_mutex_lock(&r->lock);
	was_down = r->down;
	r->down = 0;
	pthread_mutex_unlock(&r->lock);
	if (was_down)
		mw_log(LOG_NOTICE, "redis: %s is reachable again", r->target);
	if (r->cfg->n_sentinels == 0)
		mw_stats_redis_master(r->st, r->cfg->server);
}

/* Give a connection back, unless it reaches a master we forgot. */
static void
pool_put(struct mw_redis *r, redisContext *rc, unsigned long gen)
{
	long idle;

	pthread_mutex_lock(&r->lock);
	if (gen == r->gen && r->n_idle < (size_t)r->cfg->pool_size) {
		r->idle[r->n_idle].rc = rc;
		r->idle[r->n_idle++].gen = gen;
		rc = NULL;
	}
	idle = (long)r->n_idle;
	pthread_mutex_unlock(&r->lock);
	if (rc != NULL)
		redisFree(rc);
	mw_stats_redis_pool_idle(r->st, idle);
}

/* Is this error reply a passing state of the server (failover, start)? */
static int
temp_error(const char *s)
{
	static const char *const temp[] = {
		"READONLY", "LOADING", "MASTERDOWN", "TRYAGAIN", "BUSY ",
		"NOREPLICAS", "CLUSTERDOWN", "MASTER_DOWN",
	};
	size_t i;

	if (s == NULL)
		return 0;
	for (i = 0; i < sizeof(temp) / sizeof(temp[0]); i++)
		if (strncmp(s, temp[i], strlen(temp[i])) == 0)
			return 1;
	return 0;
}

static redisContext *
connect_addr(const struct mw_redis_addr *a, long long timeout, char *err,
    size_t errlen)
{
	redisContext *rc;
	char at[300];

	if (a->port == 0)
		rc = redisConnectUnixWithTimeout(a->host, ms_tv(timeout));
	else
		rc = redisConnectWithTimeout(a->host, a->port, ms_tv(timeout));
	if (rc == NULL) {
		snprintf(err, errlen, "connect: out of memory");
		return NULL;
	}
	if (rc->err) {
		addr_text(a, at, sizeof(at));
		snprintf(err, errlen, "connect to %s: %s", at, rc->errstr);
		redisFree(rc);
		return NULL;
	}
	if (a->port != 0)
		(void)redisEnableKeepAlive(rc);
	return rc;
}

/* One command, its reply (NULL with err on an I/O error). */
static redisReply *
command(redisContext *rc, int argc, const char **argv, char *err,
    size_t errlen)
{
	redisReply *r = redisCommandArgv(rc, argc, argv, NULL);

	if (r == NULL)
		snprintf(err, errlen, "%s: %s", argv[0], rc->err ==
		    REDIS_ERR_EOF ? "connection closed by server" :
		    rc->errstr);
	return r;
}

/*
 * Ask the sentinels for the master's address, first that answers.  Stays
 * within the deadline.  0, or -1 with err naming what each said.
 */
static int
discover(struct mw_redis *r, long long deadline, struct mw_redis_addr *m,
    char *err, size_t errlen)
{
	const struct mw_redis_cfg *c = r->cfg;
	const char *av[3] = { "SENTINEL", "get-master-addr-by-name",
	    c->master_name };
	char why[300], at[300];
	size_t i, used = 0;
	long long left;
	long port;

	err[0] = '\0';
	for (i = 0; i < c->n_sentinels; i++) {
		redisContext *rc;
		redisReply *rep;

		addr_text(&c->sentinels[i], at, sizeof(at));
		if ((left = deadline - now_ms()) <= 0) {
			snprintf(why, sizeof(why), "no time left");
			goto next;
		}
		if ((rc = connect_addr(&c->sentinels[i],
		    min_ll(c->connect_timeout_ms, left), why,
		    sizeof(why))) == NULL)
			goto next;
		left = deadline - now_ms();
		(void)redisSetTimeout(rc, ms_tv(min_ll(c->timeout_ms, left)));
		if ((rep = command(rc, 3, av, why, sizeof(why))) == NULL) {
			redisFree(rc);
			goto next;
		}
		if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 &&
		    rep->element[0]->type == REDIS_REPLY_STRING &&
		    rep->element[1]->type == REDIS_REPLY_STRING &&
		    rep->element[0]->len > 0 &&
		    rep->element[0]->len < sizeof(m->host) &&
		    mw_parse_int(rep->element[1]->str, 1, 65535, &port, why,
		    sizeof(why)) == 0) {
			memcpy(m->host, rep->element[0]->str,
			    rep->element[0]->len);
			m->host[rep->element[0]->len] = '\0';
			m->port = (int)port;
			freeReplyObject(rep);
			redisFree(rc);
			return 0;
		}
		if (rep->type == REDIS_REPLY_NIL)
			snprintf(why, sizeof(why), "does not know master %s",
			    c->master_name);
		else if (rep->type == REDIS_REPLY_ERROR)
			snprintf(why, sizeof(why), "%.200s", rep->str);
		else
			snprintf(why, sizeof(why), "unexpected reply");
		freeReplyObject(rep);
		redisFree(rc);
next:
		if (used < errlen)
			used += (size_t)snprintf(err + used, errlen - used,
			    "%ssentinel %s: %s", i > 0 ? "; " : "", at, why);
		if (deadline - now_ms() <= 0)
			break;
	}
	if (err[0] == '\0')
		snprintf(err, errlen, "no sentinel answered");
	return -1;
}

/* Found a master: remember it, count a failover if it moved. */
static void
set_master(struct mw_redis *r, const struct mw_redis_addr *m,
    unsigned long *gen)
{
	char now[300], was[300];
	int moved = 0;

	pthread_mutex_lock(&r->lock);
	if (r->had_master && (strcmp(r->last_master.host, m->host) != 0 ||
	    r->last_master.port != m->port)) {
		moved = 1;
		addr_text(&r->last_master, was, sizeof(was));
	}
	r->master = *m;
	r->last_master = *m;
	r->had_master = 1;
	r->master_known = 1;
	*gen = r->gen;
	pthread_mutex_unlock(&r->lock);
	addr_text(m, now, sizeof(now));
	mw_stats_redis_master(r->st, now);
	if (moved) {
		mw_stats_inc(r->st, MW_ST_REDIS_FAILOVERS);
		mw_log(LOG_NOTICE, "redis: master %s is now %s (was %s): "
		    "failover", r->cfg->master_name, now, was);
	} else
		mw_log(LOG_INFO, "redis: master %s is %s",
		    r->cfg->master_name, now);
}

/*
 * A new connection to the master, authenticated, database selected, its
 * role checked (sentinel mode).  NULL with err and the class in *res.
 */
static redisContext *
open_conn(struct mw_redis *r, long long deadline, unsigned long *gen,
    enum mw_redis_result *res, int *busy, char *err, size_t errlen)
{
	const struct mw_redis_cfg *c = r->cfg;
	struct mw_redis_addr m;
	redisContext *rc;
	redisReply *rep;
	char db[32], at[300], why[300];
	long long left;
	int have;

	*res = MW_REDIS_TEMP;
	*busy = 0;
	if (c->n_sentinels > 0) {
		pthread_mutex_lock(&r->lock);
		have = r->master_known;
		if (have) {
			m = r->master;
			*gen = r->gen;
		} else if (r->discovering) {
			pthread_mutex_unlock(&r->lock);
			*busy = 1;
			snprintf(err, errlen, "no master known yet (asking the "
			    "sentinels)");
			return NULL;
		} else
			r->discovering = 1;
		pthread_mutex_unlock(&r->lock);
		if (!have) {
			int ok = discover(r, deadline, &m, err, errlen);

			if (ok == 0)
				set_master(r, &m, gen);
			pthread_mutex_lock(&r->lock);
			r->discovering = 0;
			pthread_mutex_unlock(&r->lock);
			if (ok == -1)
				return NULL;
		}
	} else {
		m = c->addr;
		pthread_mutex_lock(&r->lock);
		*gen = r->gen;
		pthread_mutex_unlock(&r->lock);
	}
	addr_text(&m, at, sizeof(at));
	if ((left = deadline - now_ms()) <= 0) {
		snprintf(err, errlen, "%s: no time left to connect", at);
		return NULL;
	}
	if ((rc = connect_addr(&m, min_ll(c->connect_timeout_ms, left), err,
	    errlen)) == NULL) {
		if (c->n_sentinels > 0)
			forget_master(r, *gen);
		return NULL;
	}
	mw_stats_inc(r->st, MW_ST_REDIS_CONNECTS);
	left = deadline - now_ms();
	if (redisSetTimeout(rc, ms_tv(min_ll(c->timeout_ms, left))) !=
	    REDIS_OK) {
		snprintf(err, errlen, "cannot set timeout: %s", rc->errstr);
		goto fail;
	}
	if (c->password[0] != '\0') {
		const char *av[3];
		int ac = 0;

		av[ac++] = "AUTH";
		if (c->username[0] != '\0')
			av[ac++] = c->username;
		av[ac++] = c->password;
		if ((rep = command(rc, ac, av, why, sizeof(why))) == NULL) {
			snprintf(err, errlen, "%s: %s", at, why);
			goto fail;
		}
		if (rep->type == REDIS_REPLY_ERROR) {
			snprintf(err, errlen, "%s refused AUTH%s%s: %.200s "
			    "(check [redis] username and password)", at,
			    c->username[0] != '\0' ? " as user " : "",
			    c->username, rep->str);
			freeReplyObject(rep);
			*res = MW_REDIS_PERM;
			goto fail;
		}
		freeReplyObject(rep);
	}
	if (c->database != 0) {
		const char *av[2] = { "SELECT", db };

		snprintf(db, sizeof(db), "%ld", c->database);
		if ((rep = command(rc, 2, av, why, sizeof(why))) == NULL) {
			snprintf(err, errlen, "%s: %s", at, why);
			goto fail;
		}
		if (rep->type == REDIS_REPLY_ERROR) {
			snprintf(err, errlen, "%s: SELECT %s: %.200s", at, db,
			    rep->str);
			freeReplyObject(rep);
			*res = MW_REDIS_PERM;
			goto fail;
		}
		freeReplyObject(rep);
	}
	if (c->n_sentinels > 0) {
		const char *av[1] = { "ROLE" };

		if ((rep = command(rc, 1, av, why, sizeof(why))) == NULL) {
			snprintf(err, errlen, "%s: %s", at, why);
			forget_master(r, *gen);
			goto fail;
		}
		if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 1 ||
		    rep->element[0]->type != REDIS_REPLY_STRING ||
		    strcmp(rep->element[0]->str, "master") != 0) {
			snprintf(err, errlen, "%s is not a master (ROLE: "
			    "%.100s): a failover is going on",
			    at, rep->type == REDIS_REPLY_ARRAY &&
			    rep->elements > 0 && rep->element[0]->type ==
			    REDIS_REPLY_STRING ? rep->element[0]->str :
			    rep->type == REDIS_REPLY_ERROR ? rep->str : "?");
			freeReplyObject(rep);
			forget_master(r, *gen);
			goto fail;
		}
		freeReplyObject(rep);
	}
	return rc;
fail:
	redisFree(rc);
	return NULL;
}

/* An idle connection to the current master, or a new one. */
static redisContext *
get_conn(struct mw_redis *r, long long deadline, int *reused,
    unsigned long *gen, int *quiet, enum mw_redis_result *res, char *err,
    size_t errlen)
{
	redisContext *rc = NULL;
	long long now = now_ms();
	int was_down, busy;

	*reused = 0;
	*res = MW_REDIS_TEMP;
	pthread_mutex_lock(&r->lock);
	if (r->down && now < r->down_until) {
		pthread_mutex_unlock(&r->lock);
		*quiet = 1;
		snprintf(err, errlen, "unreachable at the last attempt");
		return NULL;
	}
	while (r->n_idle > 0 && rc == NULL) {
		struct pooled p = r->idle[--r->n_idle];

		if (p.gen == r->gen) {
			rc = p.rc;
			*gen = p.gen;
			*reused = 1;
		} else {
			pthread_mutex_unlock(&r->lock);
			redisFree(p.rc);
			pthread_mutex_lock(&r->lock);
		}
	}
	was_down = r->down;
	pthread_mutex_unlock(&r->lock);
	if (rc != NULL)
		return rc;
	if ((rc = open_conn(r, deadline, gen, res, &busy, err,
	    errlen)) == NULL) {
		/* Another thread is asking the sentinels: not an outage. */
		if (busy) {
			*quiet = 1;
			return NULL;
		}
		if (mark_down(r) && !was_down)
			mw_log(*res == MW_REDIS_PERM ? LOG_ERR : LOG_WARNING,
			    "redis: %s: %s; answering from fail_mode, next "
			    "attempt in %ld ms", r->target, err,
			    r->cfg->reconnect_interval_ms);
		*quiet = 1;	/* logged here, once per outage */
		mw_stats_inc(r->st, MW_ST_REDIS_ERRORS);
		return NULL;
	}
	mark_up(r);
	return rc;
}

/*
 * The core: send cmds as one pipeline on one connection and read every
 * reply.  With sc, cmds is one EVALSHA and a NOSCRIPT reply sends the
 * script text (EVAL) on the same connection.
 */
static enum mw_redis_result
run(struct mw_redis *r, const struct mw_redis_cmd *cmds, size_t n,
    const struct mw_redis_script *sc, redisReply **replies, int *quiet,
    char *err, size_t errlen)
{
	const struct mw_redis_cfg *c = r->cfg;
	long long deadline = now_ms() + c->connect_timeout_ms + c->timeout_ms;
	enum mw_redis_result res;
	redisContext *rc;
	unsigned long gen = 0;
	size_t i, got;
	int attempt, reused, saved_errno, lost;
	char why[300];

	*quiet = 0;
	for (i = 0; i < n; i++)
		replies[i] = NULL;
	for (attempt = 0; attempt < 2; attempt++) {
		if ((rc = get_conn(r, deadline, &reused, &gen, quiet, &res,
		    err, errlen)) == NULL)
			return res;
		(void)redisSetTimeout(rc, ms_tv(min_ll(c->timeout_ms,
		    deadline - now_ms())));
		errno = 0;
		for (i = 0; i < n; i++) {
			mw_stats_inc(r->st, MW_ST_REDIS_COMMANDS);
			(void)redisAppendCommandArgv(rc, cmds[i].argc,
			    (const char **)cmds[i].argv, cmds[i].argvlen);
		}
		for (got = 0; got < n; got++) {
			void *rep = NULL;

			if (redisGetReply(rc, &rep) != REDIS_OK || rep == NULL)
				break;
			replies[got] = rep;
		}
		if (got == n && sc != NULL && n == 1 &&
		    replies[0]->type == REDIS_REPLY_ERROR &&
		    strncmp(replies[0]->str, "NOSCRIPT", 8) == 0) {
			/* Not cached on this server (yet): send it whole. */
			const char **av = (const char **)cmds[0].argv;
			const char *sha = av[1];

			mw_redis_free_replies(replies, 1);
			av[0] = "EVAL";
			av[1] = sc->text;
			mw_stats_inc(r->st, MW_ST_REDIS_COMMANDS);
			replies[0] = redisCommandArgv(rc, cmds[0].argc, av,
			    NULL);
			av[0] = "EVALSHA";
			av[1] = sha;
			got = replies[0] != NULL ? 1 : 0;
		}
		saved_errno = errno;
		if (got < n) {
			/* I/O error or timeout: the connection is unusable. */
			mw_redis_free_replies(replies, got);
			mw_stats_inc(r->st, MW_ST_REDIS_ERRORS);
			snprintf(why, sizeof(why), "%s", rc->err ==
			    REDIS_ERR_EOF ? "connection closed by server" :
			    rc->errstr);
			lost = rc->err == REDIS_ERR_EOF ||
			    saved_errno == ECONNRESET || saved_errno == EPIPE;
			redisFree(rc);
			snprintf(err, errlen, "%s: %s", r->target, why);
			/*
			 * A pooled connection to a server that restarted or
			 * was demoted fails at once (EOF, reset): try once
			 * more on a new connection.  A timeout is not
			 * retried, the time is used up.
			 */
			if (c->n_sentinels > 0)
				forget_master(r, gen);
			else
				drain_pool(r);
			if (reused && lost && attempt == 0)
				continue;
			if (mark_down(r))
				mw_log(LOG_WARNING, "redis: %s; answering from "
				    "fail_mode, next attempt in %ld ms", err,
				    c->reconnect_interval_ms);
			*quiet = 1;
			return MW_REDIS_TEMP;
		}
		for (i = 0; i < n; i++)
			if (replies[i]->type == REDIS_REPLY_ERROR)
				break;
		if (i == n) {
			pool_put(r, rc, gen);
			return MW_REDIS_OK;
		}
		snprintf(err, errlen, "%.250s", replies[i]->str != NULL ?
		    replies[i]->str : "error reply");
		mw_stats_inc(r->st, MW_ST_REDIS_ERRORS);
		if (!temp_error(replies[i]->str)) {
			/* WRONGTYPE, NOPERM, a script error: the connection is fine. */
			mw_redis_free_replies(replies, n);
			pool_put(r, rc, gen);
			return MW_REDIS_PERM;
		}
		/*
		 * READONLY (we reached a demoted master), LOADING,
		 * MASTERDOWN...: the master is elsewhere or not ready.
		 * Forget it and, in sentinel mode, ask again at once.
		 */
		mw_redis_free_replies(replies, n);
		redisFree(rc);
		if (c->n_sentinels > 0)
			forget_master(r, gen);
		else
			drain_pool(r);
		if (c->n_sentinels > 0 && attempt == 0)
			continue;
		snprintf(why, sizeof(why), "%s", err);
		snprintf(err, errlen, "%s: %s", r->target, why);
		if (mark_down(r))
			mw_log(LOG_WARNING, "redis: %s; answering from "
			    "fail_mode, next attempt in %ld ms", err,
			    c->reconnect_interval_ms);
		*quiet = 1;
		return MW_REDIS_TEMP;
	}
	return MW_REDIS_TEMP;
}

enum mw_redis_result
mw_redis_run_quiet(struct mw_redis *r, const struct mw_redis_cmd *cmds,
    size_t n, struct redisReply **replies, int *quiet, char *err,
    size_t errlen)
{
	return run(r, cmds, n, NULL, replies, quiet, err, errlen);
}

enum mw_redis_result
mw_redis_run(struct mw_redis *r, const struct mw_redis_cmd *cmds, size_t n,
    struct redisReply **replies, char *err, size_t errlen)
{
	int quiet;

	return run(r, cmds, n, NULL, replies, &quiet, err, errlen);
}

int
mw_redis_script_init(struct mw_redis_script *sc, const char *text,
    char *err, size_t errlen)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0, i;

	sc->text = text;
	/* EVALSHA names the script by the SHA-1 of its text. */
	if (EVP_Digest(text, strlen(text), md, &mdlen, EVP_sha1(), NULL) != 1 ||
	    mdlen != 20) {
		snprintf(err, errlen, "redis: cannot compute SHA-1");
		return -1;
	}
	for (i = 0; i < mdlen; i++)
		snprintf(sc->sha + 2 * i, 3, "%02x", md[i]);
	return 0;
}

#define MW_REDIS_EVAL_MAX_ARGS	64

enum mw_redis_result
mw_redis_eval(struct mw_redis *r, const struct mw_redis_script *sc,
    int nkeys, int argc, const char *const *argv, struct redisReply **reply,
    int *quiet, char *err, size_t errlen)
{
	const char *av[MW_REDIS_EVAL_MAX_ARGS + 3];
	struct mw_redis_cmd cmd;
	char nk[16];
	int i;

	*reply = NULL;
	*quiet = 0;
	if (argc < 0 || argc > MW_REDIS_EVAL_MAX_ARGS || nkeys < 0 ||
	    nkeys > argc) {
		snprintf(err, errlen, "redis: bad script arguments");
		return MW_REDIS_PERM;
	}
	snprintf(nk, sizeof(nk), "%d", nkeys);
	av[0] = "EVALSHA";
	av[1] = sc->sha;
	av[2] = nk;
	for (i = 0; i < argc; i++)
		av[3 + i] = argv[i];
	cmd.argc = argc + 3;
	cmd.argv = av;
	cmd.argvlen = NULL;
	return run(r, &cmd, 1, sc, reply, quiet, err, errlen);
}
