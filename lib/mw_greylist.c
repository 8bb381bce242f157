/*
 * mw_greylist -- greylisting at RCPT TO against a shared Redis, section
 * [greylist].
 *
 * For every recipient we look at the triplet (client network, normalised
 * envelope sender, recipient).  The first time a triplet is seen the
 * recipient gets "451 4.7.1 Greylisted ... try again in N seconds"; a
 * retry once [greylist] delay has passed is accepted and the triplet is
 * remembered as passed, so later mail for it goes through at once.  A
 * client network that passed autoallow_after triplets skips greylisting
 * altogether for a while (auto-allowlist).  Everything lives in Redis
 * with TTLs, so several mailwarden instances (all MX hosts) share it and
 * nothing needs sweeping.
 *
 * One round trip per recipient: a Lua script does check-and-record
 * atomically on the server, with the server's clock, so two MX hosts
 * that see the same retry agree.  It is called with EVALSHA and sent
 * whole (EVAL) only when the server answers NOSCRIPT (restart, SCRIPT
 * FLUSH, failover), which also loads it for the next call.
 *
 * Redis keys (prefix from the ini, default "mw:gl:"):
 *   PREFIX t:NET:SENDER:RCPT	hash: first (ms since the epoch, server
 *				time), pass (ms, when it passed), n
 *				(messages accepted since).  TTL retry_window
 *				until it passes, pass_ttl after each pass.
 *   PREFIX a:NET		integer: triplets this network passed.
 *				>= autoallow_after: allowlisted.  TTL
 *				autoallow_ttl, renewed on use.
 * NET is "192.0.2.0/24" or "2001:db8:1:2::/64"; SENDER and RCPT are
 * lower-cased and have ':', '%', spaces and control characters written
 * as %XX, so a key always splits one way.
 *
 * Redis is reached through the shared client of [redis] (mw_redis.h):
 * its pool, Sentinel master discovery, AUTH and timeouts.  Every call is
 * bounded by [redis] connect_timeout_ms + timeout_ms.  When Redis cannot
 * answer (down, no master known during a failover, wrong password, a key
 * of the wrong type) the recipient is answered from fail_mode without
 * waiting (open: accept and add "X-Greylist: unchecked ..."; closed: 451
 * 4.3.0); mw_redis retries by itself after reconnect_interval_ms.
 * The old [greylist] spellings of the [redis] keys (server, password,
 * timeout_ms ...) are taken by the config loader as [redis] keys.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <hiredis/hiredis.h>

#include "mw_log.h"
#include "mw_redis.h"
#include "mw_session_priv.h"

#define GL_ADDR_MAX	256	/* bytes of a normalised address we key on */
#define GL_KEY_MAX	(64 + 64 + 2 * 3 * GL_ADDR_MAX)

enum gl_mode { GL_SUSPICIOUS = 0, GL_ALL };

struct gl_cfg {
	int	mode;
	double	score_above;		/* only_if_score_above */
	long	delay;			/* seconds */
	long	retry_window;
	long	pass_ttl;
	long	autoallow_after;	/* 0 = no auto-allowlist */
	long	autoallow_ttl;
	long	ipv4_prefix, ipv6_prefix;
	char	prefix[64];
	bool	fail_closed;
	bool	add_header;
};

/*
 * Check and record one triplet.  KEYS[1] the triplet, KEYS[2] the
 * network's pass counter.  ARGV: delay (ms), retry_window, pass_ttl,
 * autoallow_after, autoallow_ttl (s), read-only ("1": look, write
 * nothing -- mailwarden-check).  Returns {status, ms, n}:
 *   0 new triplet (ms = delay)	1 retried too early (ms left)
 *   2 passed now (ms waited, n = passes of the network)
 *   3 passed before (ms it waited then)	4 network allowlisted (n)
 * TIME makes the script non-deterministic: Redis >= 5 replicates its
 * effects (the default from 7), older ones need replicate_commands().
 */
static const char gl_script[] =
"if redis.replicate_commands then redis.replicate_commands() end\n"
"local t = redis.call('TIME')\n"
"local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
"local delay = tonumber(ARGV[1])\n"
"local aa = tonumber(ARGV[4])\n"
"local rw = ARGV[6] ~= '1'\n"
"local n = tonumber(redis.call('GET', KEYS[2])) or 0\n"
"if aa > 0 and n >= aa then\n"
"  if rw then redis.call('EXPIRE', KEYS[2], ARGV[5]) end\n"
"  return {4, 0, n}\n"
"end\n"
"local first = tonumber(redis.call('HGET', KEYS[1], 'first'))\n"
"if not first then\n"
"  if rw then\n"
"    redis.call('HSET', KEYS[1], 'first', string.format('%d', now))\n"
"    redis.call('EXPIRE', KEYS[1], ARGV[2])\n"
"  end\n"
"  return {0, delay, 0}\n"
"end\n"
"local pass = tonumber(redis.call('HGET', KEYS[1], 'pass'))\n"
"if pass then\n"
"  if rw then\n"
"    redis.call('HINCRBY', KEYS[1], 'n', 1)\n"
"    redis.call('EXPIRE', KEYS[1], ARGV[3])\n"
"  end\n"
"  return {3, pass - first, 0}\n"
"end\n"
"if now - first < delay then\n"
"  return {1, delay - (now - first), 0}\n"
"end\n"
"if not rw then return {2, now - first, n + 1} end\n"
"redis.call('HSET', KEYS[1], 'pass', string.format('%d', now), 'n', 1)\n"
"redis.call('EXPIRE', KEYS[1], ARGV[3])\n"
"n = redis.call('INCR', KEYS[2])\n"
"redis.call('EXPIRE', KEYS[2], ARGV[5])\n"
"return {2, now - first, n}\n";

enum gl_status {
	GL_NEW = 0, GL_EARLY, GL_PASSED, GL_KNOWN, GL_ALLOWLISTED
};

struct gl_answer {
	enum gl_status	status;
	long long	ms;
	long long	n;
};

struct gl_global {
	const struct gl_cfg	*cfg;
	struct mw_redis_script	 script;
};

struct gl_state {
	long	delayed;	/* longest delay (s) a recipient went through */
	int	n_delayed;
	int	unchecked;	/* Redis unavailable, accepted (fail-open) */
};

/* ------------------------------------------------------------ config --- */

static void
gl_cfg_init(void *vc)
{
	struct gl_cfg *c = vc;

	c->mode = GL_SUSPICIOUS;
	c->score_above = 0;
	c->delay = 300;
	c->retry_window = 2 * 86400;
	c->pass_ttl = 35 * 86400;
	c->autoallow_after = 5;
	c->autoallow_ttl = 35 * 86400;
	c->ipv4_prefix = 24;
	c->ipv6_prefix = 64;
	snprintf(c->prefix, sizeof(c->prefix), "mw:gl:");
	c->fail_closed = false;
	c->add_header = true;
}

static int
gl_cfg_set(void *vc, const char *k, const char *v, char *err, size_t errlen)
{
	struct gl_cfg *c = vc;

	if (strcmp(k, "mode") == 0) {
		if (strcmp(v, "suspicious") == 0)
			c->mode = GL_SUSPICIOUS;
		else if (strcmp(v, "all") == 0)
			c->mode = GL_ALL;
		else {
			snprintf(err, errlen, "\"%s\" is not all or suspicious",
			    v);
			return -1;
		}
		return 0;
	}
	if (strcmp(k, "only_if_score_above") == 0)
		return mw_parse_double(v, -1000, 1000, &c->score_above, err,
		    errlen);
	if (strcmp(k, "delay") == 0)
		return mw_parse_duration(v, &c->delay, err, errlen);
	if (strcmp(k, "retry_window") == 0)
		return mw_parse_duration(v, &c->retry_window, err, errlen);
	if (strcmp(k, "pass_ttl") == 0)
		return mw_parse_duration(v, &c->pass_ttl, err, errlen);
	if (strcmp(k, "autoallow_after") == 0)
		return mw_parse_int(v, 0, 1000000, &c->autoallow_after, err,
		    errlen);
	if (strcmp(k, "autoallow_ttl") == 0)
		return mw_parse_duration(v, &c->autoallow_ttl, err, errlen);
	if (strcmp(k, "ipv4_prefix") == 0)
		return mw_parse_int(v, 8, 32, &c->ipv4_prefix, err, errlen);
	if (strcmp(k, "ipv6_prefix") == 0)
		return mw_parse_int(v, 16, 128, &c->ipv6_prefix, err, errlen);
	if (strcmp(k, "prefix") == 0) {
		const char *p;

		for (p = v; *p != '\0'; p++)
			if ((unsigned char)*p <= ' ' || *p == 0x7f) {
				snprintf(err, errlen, "\"%s\": no spaces or "
				    "control characters", v);
				return -1;
			}
		return mw_set_fixed(c->prefix, sizeof(c->prefix), v, "prefix",
		    err, errlen);
	}
	if (strcmp(k, "fail_mode") == 0) {
		if (strcmp(v, "open") == 0)
			c->fail_closed = false;
		else if (strcmp(v, "closed") == 0)
			c->fail_closed = true;
		else {
			snprintf(err, errlen, "\"%s\" is not open or closed", v);
			return -1;
		}
		return 0;
	}
	if (strcmp(k, "add_header") == 0)
		return mw_parse_bool(v, &c->add_header, err, errlen);
	return 1;
}

static int
gl_cfg_check(void *vc, const struct mw_config *mc, char *err, size_t errlen)
{
	struct gl_cfg *c = vc;

	(void)mc;
	if (c->delay < 1) {
		snprintf(err, errlen, "delay must be at least 1 second");
		return -1;
	}
	if (c->retry_window <= c->delay) {
		snprintf(err, errlen, "retry_window (%ld s) must be longer "
		    "than delay (%ld s)", c->retry_window, c->delay);
		return -1;
	}
	if (c->pass_ttl < 1 || c->autoallow_ttl < 1) {
		snprintf(err, errlen, "pass_ttl and autoallow_ttl must be at "
		    "least 1 second");
		return -1;
	}
	return 0;
}

static void
gl_cfg_dump(const void *vc, void *vfp)
{
	const struct gl_cfg *c = vc;
	FILE *fp = vfp;

	fprintf(fp, "mode = %s\nonly_if_score_above = %g\n"
	    "delay = %ld\nretry_window = %ld\npass_ttl = %ld\n"
	    "autoallow_after = %ld\nautoallow_ttl = %ld\n"
	    "ipv4_prefix = %ld\nipv6_prefix = %ld\n",
	    c->mode == GL_ALL ? "all" : "suspicious", c->score_above,
	    c->delay, c->retry_window, c->pass_ttl, c->autoallow_after,
	    c->autoallow_ttl, c->ipv4_prefix, c->ipv6_prefix);
	fprintf(fp, "prefix = %s\nfail_mode = %s\nadd_header = %s\n",
	    c->prefix, c->fail_closed ? "closed" : "open",
	    c->add_header ? "yes" : "no");
	fprintf(fp, "; Redis: see [redis]\n");
}

/* ------------------------------------------------------------- redis --- */

static int
gl_global_new(const struct mw_config *mc, const void *vc, void **out,
    char *err, size_t errlen)
{
	struct gl_global *g;

	(void)mc;
	*out = NULL;
	if ((g = calloc(1, sizeof(*g))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	g->cfg = vc;
	if (mw_redis_script_init(&g->script, gl_script, err, errlen) == -1) {
		free(g);
		return -1;
	}
	*out = g;
	return 0;
}

static void
gl_global_free(void *vg)
{
	free(vg);
}

static int
parse_answer(const redisReply *r, struct gl_answer *a, char *err,
    size_t errlen)
{
	size_t i;

	if (r->type != REDIS_REPLY_ARRAY || r->elements != 3)
		goto bad;
	for (i = 0; i < 3; i++)
		if (r->element[i]->type != REDIS_REPLY_INTEGER)
			goto bad;
	if (r->element[0]->integer < GL_NEW ||
	    r->element[0]->integer > GL_ALLOWLISTED)
		goto bad;
	a->status = (enum gl_status)r->element[0]->integer;
	a->ms = r->element[1]->integer;
	a->n = r->element[2]->integer;
	return 0;
bad:
	snprintf(err, errlen, "script: unexpected reply");
	return -1;
}

/*
 * Run the script for one triplet: 0 and *a, or -1 with err (and *quiet
 * when the failure was already logged).
 */
static int
gl_query(struct gl_global *g, struct mw_redis *redis, const char *tkey,
    const char *akey, int read_only, struct gl_answer *a, int *quiet,
    char *err, size_t errlen)
{
	const struct gl_cfg *c = g->cfg;
	char delay[32], rw[32], pt[32], aa[32], aat[32];
	const char *av[8];
	redisReply *r;
	int ret;

	snprintf(delay, sizeof(delay), "%ld", c->delay * 1000);
	snprintf(rw, sizeof(rw), "%ld", c->retry_window);
	snprintf(pt, sizeof(pt), "%ld", c->pass_ttl);
	snprintf(aa, sizeof(aa), "%ld", c->autoallow_after);
	snprintf(aat, sizeof(aat), "%ld", c->autoallow_ttl);
	av[0] = tkey;
	av[1] = akey;
	av[2] = delay;
	av[3] = rw;
	av[4] = pt;
	av[5] = aa;
	av[6] = aat;
	av[7] = read_only ? "1" : "0";
	if (mw_redis_eval(redis, &g->script, 2, 8, av, &r, quiet, err,
	    errlen) != MW_REDIS_OK)
		return -1;
	ret = parse_answer(r, a, err, errlen);
	freeReplyObject(r);
	return ret;
}

/* ------------------------------------------------------------ triplet --- */

/* Lower-case copy, at most outlen - 1 bytes. */
static void
lower_copy(char *out, size_t outlen, const char *in, size_t n)
{
	size_t i;

	if (outlen == 0)
		return;
	for (i = 0; i < n && i + 1 < outlen && in[i] != '\0'; i++)
		out[i] = (char)tolower((unsigned char)in[i]);
	out[i] = '\0';
}

static int
has_prefix(const char *s, const char *p)
{
	return strncmp(s, p, strlen(p)) == 0;
}

/*
 * SRS (the Sender Rewriting Scheme of forwarders):
 *   SRS0=HHH=TT=orig-domain=orig-local
 *   SRS1=HHH=first-forwarder==HHH=TT=orig-domain=orig-local
 * The hash and the timestamp change from message to message; the
 * original address is what stays.  Rewrites local@domain in place and
 * returns 1, or 0 if local is not SRS.  local is lower case already.
 */
static int
unwrap_srs(char *local, size_t locallen, char *domain, size_t domainlen)
{
	char *p, *hash, *ts, *dom, *loc;

	if ((has_prefix(local, "srs0") || has_prefix(local, "srs1")) &&
	    strchr("=+-", local[4]) != NULL && local[4] != '\0') {
		p = local + 5;
		if (local[3] == '1') {
			if ((p = strstr(p, "==")) == NULL)
				return 0;
			p += 2;
		}
		hash = p;
		if ((ts = strchr(hash, '=')) == NULL)
			return 0;
		ts++;
		if ((dom = strchr(ts, '=')) == NULL)
			return 0;
		dom++;
		if ((loc = strchr(dom, '=')) == NULL || loc == dom ||
		    loc[1] == '\0')
			return 0;
		*loc++ = '\0';
		/* dom and loc point into local: copy through a scratch. */
		{
			char d[GL_ADDR_MAX], l[GL_ADDR_MAX];

			snprintf(d, sizeof(d), "%s", dom);
			snprintf(l, sizeof(l), "%s", loc);
			snprintf(domain, domainlen, "%s", d);
			snprintf(local, locallen, "%s", l);
		}
		return 1;
	}
	return 0;
}

/*
 * BATV (signed bounce addresses): prvs=TAG=local, msprvs1=TAG=local,
 * btv1==TAG==local.  The tag changes daily.  Returns 1 if stripped.
 */
static int
unwrap_batv(char *local)
{
	static const char *const single[] = { "prvs=", "msprvs1=" };
	char *rest = NULL;
	size_t i;

	for (i = 0; i < sizeof(single) / sizeof(single[0]); i++)
		if (has_prefix(local, single[i]) &&
		    (rest = strchr(local + strlen(single[i]), '=')) != NULL)
			rest++;
	if (rest == NULL && has_prefix(local, "btv1==") &&
	    (rest = strstr(local + 6, "==")) != NULL)
		rest += 2;
	if (rest == NULL || *rest == '\0')
		return 0;
	memmove(local, rest, strlen(rest) + 1);
	return 1;
}

/*
 * The sender as it identifies a retry: lower case; SRS and BATV wrappers
 * removed; "+extension" cut; a run of digits that is a whole word of the
 * local part (VERP: list-bounces-12345-user=example.org) replaced by '#',
 * as postgrey does.  The null sender is "<>".
 */
static void
normalize_sender(const char *from, char *out, size_t outlen)
{
	char local[GL_ADDR_MAX], domain[GL_ADDR_MAX], tmp[GL_ADDR_MAX];
	const char *at;
	char *plus;
	size_t i, j;
	int round;

	if (from == NULL || *from == '\0') {
		snprintf(out, outlen, "<>");
		return;
	}
	at = strrchr(from, '@');
	lower_copy(local, sizeof(local), from,
	    at != NULL ? (size_t)(at - from) : strlen(from));
	lower_copy(domain, sizeof(domain), at != NULL ? at + 1 : "",
	    at != NULL ? strlen(at + 1) : 0);
	/* prvs=...=SRS0=... and SRS0=...=...=prvs=... both happen. */
	for (round = 0; round < 3; round++)
		if (!unwrap_srs(local, sizeof(local), domain, sizeof(domain)) &&
		    !unwrap_batv(local))
			break;
	if ((plus = strchr(local, '+')) != NULL && plus != local)
		*plus = '\0';
	for (i = j = 0; local[i] != '\0' && j + 1 < sizeof(tmp); ) {
		if (isdigit((unsigned char)local[i]) &&
		    (i == 0 || !isalnum((unsigned char)local[i - 1]))) {
			size_t k = i;

			while (isdigit((unsigned char)local[k]))
				k++;
			if (!isalpha((unsigned char)local[k])) {
				tmp[j++] = '#';
				i = k;
				continue;
			}
		}
		tmp[j++] = local[i++];
	}
	tmp[j] = '\0';
	snprintf(out, outlen, "%s@%s", tmp, domain);
}

/* Key-safe copy: ':', '%', spaces, controls and 0x7f become %XX. */
static void
key_escape(const char *in, char *out, size_t outlen)
{
	size_t j = 0;

	for (; *in != '\0' && j + 4 < outlen; in++) {
		unsigned char ch = (unsigned char)*in;

		if (ch <= ' ' || ch == 0x7f || ch == ':' || ch == '%')
			j += (size_t)snprintf(out + j, outlen - j, "%%%02X", ch);
		else
			out[j++] = (char)ch;
	}
	out[j] = '\0';
}

/* "192.0.2.0/24", "2001:db8:1:2::/64"; -1 for a non-IP client. */
static int
client_network(const struct mw_session *s, const struct gl_cfg *c,
    char *out, size_t outlen)
{
	uint8_t a[16];
	char txt[INET6_ADDRSTRLEN];
	int prefix, bytes, i;

	if (s->family == AF_INET) {
		prefix = (int)c->ipv4_prefix;
		bytes = 4;
	} else if (s->family == AF_INET6) {
		prefix = (int)c->ipv6_prefix;
		bytes = 16;
	} else
		return -1;
	memcpy(a, s->addr, sizeof(a));
	for (i = 0; i < bytes; i++) {
		int bits = prefix - 8 * i;

		if (bits <= 0)
			a[i] = 0;
		else if (bits < 8)
			a[i] &= (uint8_t)(0xff << (8 - bits));
	}
	if (inet_ntop(s->family, a, txt, sizeof(txt)) == NULL)
		return -1;
	snprintf(out, outlen, "%s/%d", txt, prefix);
	return 0;
}

/* -------------------------------------------------------------- hooks --- */

/*
 * mode = suspicious: greylisting is for mail the earlier checks found
 * doubtful.  A client is clean -- not greylisted -- when the score so far
 * is at most only_if_score_above AND its reverse DNS checked out
 * (iprev=pass) AND SPF passed for the MAIL FROM identity.  No reverse
 * DNS, no SPF record, softfail or a DNSBL score each make it suspicious.
 */
static int
looks_clean(const struct mw_session *s, const struct gl_cfg *c)
{
	return mw_session_score(s) <= c->score_above &&
	    s->res.iprev_pass && s->res.spf_done && s->res.spf == MW_AUTH_PASS;
}

static void
gl_on_rcpt(struct mw_session *s, const void *vc, void *vst, const char *rcpt)
{
	const struct gl_cfg *c = vc;
	struct gl_global *g = mw_session_global(s);
	struct gl_state *st = vst;
	const char *qid = s->queue_id != NULL ? s->queue_id : "NOQUEUE";
	char net[INET6_ADDRSTRLEN + 8], from[2 * GL_ADDR_MAX];
	char to[GL_ADDR_MAX], efrom[3 * GL_ADDR_MAX], eto[3 * GL_ADDR_MAX];
	char tkey[GL_KEY_MAX], akey[128], err[300];
	struct gl_answer a;
	long long secs;
	int quiet;

	if (g == NULL)
		return;
	if (client_network(s, c, net, sizeof(net)) == -1) {
		mw_session_note(s, "greylist", "skipped: no client address");
		return;
	}
	if (mw_session_rcpt_is_exempt(s, rcpt)) {
		mw_session_note(s, "greylist", "skipped: exempt recipient");
		return;
	}
	/* Will the policy refuse this recipient anyway?  Then no triplet. */
	if (mw_session_policy_outlook(s) == MW_REJECT) {
		mw_session_note(s, "greylist", "skipped: the policy refuses "
		    "this recipient anyway");
		return;
	}
	if (s->res.dnswl_listed) {
		mw_session_note(s, "greylist", "skipped: client is on a DNS "
		    "allowlist");
		mw_log(LOG_DEBUG, "%s: greylist: skipped, client %s is on a "
		    "DNS allowlist", qid, s->ip);
		return;
	}
	if (c->mode == GL_SUSPICIOUS && looks_clean(s, c)) {
		mw_session_note(s, "greylist", "skipped: client looks clean "
		    "(iprev=pass, spf=pass, score %g <= %g)",
		    mw_session_score(s), c->score_above);
		mw_log(LOG_DEBUG, "%s: greylist: skipped, client %s looks "
		    "clean (iprev and SPF pass, score %g)", qid, s->ip,
		    mw_session_score(s));
		return;
	}
	if (c->mode == GL_SUSPICIOUS)
		mw_session_note(s, "greylist", "suspicious: iprev %s, spf %s, "
		    "score %g (clean needs iprev=pass, spf=pass, score <= %g)",
		    s->res.iprev_pass ? "pass" : "not pass",
		    s->res.spf_done ? mw_auth_result_name(s->res.spf) : "none",
		    mw_session_score(s), c->score_above);

	normalize_sender(s->mail_from, from, sizeof(from));
	lower_copy(to, sizeof(to), rcpt, strlen(rcpt));
	key_escape(from, efrom, sizeof(efrom));
	key_escape(to, eto, sizeof(eto));
	snprintf(tkey, sizeof(tkey), "%st:%s:%s:%s", c->prefix, net, efrom,
	    eto);
	snprintf(akey, sizeof(akey), "%sa:%s", c->prefix, net);
	mw_session_note(s, "greylist", "triplet %s%s", tkey,
	    s->read_only ? " (read-only: nothing is recorded)" : "");

	if (gl_query(g, mw_session_redis(s), tkey, akey, s->read_only, &a,
	    &quiet, err, sizeof(err)) == -1) {
		mw_session_note(s, "greylist", "redis: %s: %s", err,
		    c->fail_closed ? "fail_mode = closed, tempfail" :
		    "fail_mode = open, accepted unchecked");
		mw_log(quiet ? LOG_DEBUG : LOG_WARNING, "%s: greylist: redis: "
		    "%s; %s", qid, err, c->fail_closed ?
		    "tempfail (fail_mode = closed)" :
		    "accepting (fail_mode = open)");
		if (!s->read_only)
			mw_stats_inc(mw_session_stats(s), c->fail_closed ?
			    MW_ST_REDIS_FAIL_CLOSED : MW_ST_REDIS_FAIL_OPEN);
		mw_session_result(s, "unchecked");
		if (c->fail_closed)
			mw_session_refuse(s, MW_TEMPFAIL, 451, "4.3.0",
			    "Greylisting service unavailable, please try "
			    "again later");
		else
			st->unchecked = 1;
		return;
	}
	switch (a.status) {
	case GL_NEW:
	case GL_EARLY:
		secs = (a.ms + 999) / 1000;
		if (a.status == GL_NEW)
			mw_session_note(s, "greylist", "new triplet: first "
			    "attempt, a retry after %ld s will pass", c->delay);
		else
			mw_session_note(s, "greylist", "seen before, retried "
			    "%lld s too early (delay %ld s)", secs, c->delay);
		if (!s->read_only)
			mw_log(LOG_INFO, "%s: greylist: %s %s: %s", qid, tkey,
			    a.status == GL_NEW ? "new" : "too early",
			    mw_session_policy_outlook(s) == MW_TEMPFAIL ?
			    "policy tempfails anyway" :
			    "tempfail");
		mw_session_result(s, "greylisted");
		/* The policy's own 451 says more; the triplet is recorded. */
		if (mw_session_policy_outlook(s) == MW_TEMPFAIL)
			break;
		mw_session_refuse(s, MW_TEMPFAIL, 451, "4.7.1",
		    "Greylisted: %s, please try again in %lld second%s",
		    a.status == GL_NEW ? "first delivery attempt for this "
		    "sender and recipient" : "retried too soon", secs,
		    secs == 1 ? "" : "s");
		break;
	case GL_PASSED:
		mw_session_note(s, "greylist", "passes: first seen %lld s ago "
		    "(delay %ld s); network passes: %lld", a.ms / 1000,
		    c->delay, a.n);
		if (!s->read_only)
			mw_log(LOG_INFO, "%s: greylist: %s passed after %lld s "
			    "(network passes: %lld)", qid, tkey, a.ms / 1000,
			    a.n);
		if (a.ms / 1000 > st->delayed)
			st->delayed = (long)(a.ms / 1000);
		st->n_delayed++;
		mw_session_result(s, "pass");
		break;
	case GL_KNOWN:
		mw_session_note(s, "greylist", "known: passed before (after "
		    "%lld s)", a.ms / 1000);
		mw_log(LOG_DEBUG, "%s: greylist: %s known", qid, tkey);
		mw_session_result(s, "pass");
		break;
	case GL_ALLOWLISTED:
		mw_session_note(s, "greylist", "network %s auto-allowlisted "
		    "(%lld passes, autoallow_after = %ld)", net, a.n,
		    c->autoallow_after);
		mw_log(LOG_DEBUG, "%s: greylist: network %s auto-allowlisted "
		    "(%lld passes)", qid, net, a.n);
		mw_session_result(s, "pass");
		break;
	}
}

/*
 * X-Greylist, in the form postgrey and milter-greylist made familiar,
 * rather than an Authentication-Results resinfo: greylisting is not
 * an authentication method and has no registered A-R method name.
 */
static void
gl_on_eom(struct mw_session *s, const void *vc, void *vst)
{
	const struct gl_cfg *c = vc;
	struct gl_state *st = vst;
	char v[512];

	if (!c->add_header)
		return;
	if (st->n_delayed > 0)
		snprintf(v, sizeof(v), "delayed %ld second%s by mailwarden "
		    "at %s", st->delayed, st->delayed == 1 ? "" : "s",
		    s->cfg->authserv_id);
	else if (st->unchecked)
		snprintf(v, sizeof(v), "unchecked (greylist database "
		    "unavailable) by mailwarden at %s", s->cfg->authserv_id);
	else
		return;
	mw_session_add_header(s, "X-Greylist", v);
}

static void
gl_on_reset(struct mw_session *s, const void *vc, void *vst)
{
	(void)vc;
	(void)s;
	memset(vst, 0, sizeof(struct gl_state));
}

const struct mw_module mw_module_greylist = {
	.name = "greylist",
	.inbound = 1,
	.off_by_default = 1,
	.cfg_size = sizeof(struct gl_cfg),
	.cfg_init = gl_cfg_init,
	.cfg_set = gl_cfg_set,
	.cfg_check = gl_cfg_check,
	.cfg_dump = gl_cfg_dump,
	.global_new = gl_global_new,
	.global_free = gl_global_free,
	.state_size = sizeof(struct gl_state),
	.on_rcpt = gl_on_rcpt,
	.on_eom = gl_on_eom,
	.on_reset = gl_on_reset,
};
