/*
 * mw_dns.c -- the DNS resolver layer over c-ares 1.18 (see mw_dns.h).
 *
 * One struct mw_dns per process holds the settings and a bounded TTL
 * cache (hash table + LRU list, one mutex) and the c-ares channels that
 * all connections share.
 *
 * Shared channels (a c-ares channel costs ~75 kB; one per held SMTP
 * connection was most of the memory of a busy milter): one resolver
 * thread per struct mw_dns, started at the first query, owns the I/O.
 * It polls the sockets of every live channel (ares_getsock + poll +
 * ares_process_fd; poll, not select, so that descriptors above
 * FD_SETSIZE are safe) and a wake-up pipe.  c-ares 1.18 channels are
 * not thread-safe: every call on a channel is made with d->rlock held.
 * New queries go to the current channel; after MW_DNS_ROTATE queries a
 * new channel (a new UDP source port) takes over and the old one is
 * destroyed once its last query has ended, so the port still changes
 * as often as it did with a channel per connection.
 *
 * What the resolver thread does with a reply is only to keep its bytes
 * (on_raw): the query's answer is parsed, cached and published by the
 * thread that owns the batch, in mw_dns_poll/wait, exactly as before;
 * so mw_dns_peek needs no lock and a query is PENDING until its owner
 * polls.  A batch freed with queries in flight leaves them to the
 * channel, marked orphan; on_raw frees them when c-ares ends them.
 *
 * TTLs: A/AAAA records carry the TTL c-ares reports per address.  For
 * the other types c-ares 1.18 gives no TTL, so we walk the raw answer
 * ourselves (scan_reply) and use the smallest TTL of the answer section
 * -- an RRset has one TTL (RFC 2181 5.2), and the CNAMEs that led to it
 * bound it too.  Negative answers live for min(SOA TTL, SOA minimum)
 * (RFC 2308), or MW_DNS_NEG_DEFAULT when the reply has no SOA.
 * Only OK, NXDOMAIN and NODATA are cached; a TEMPFAIL or PERMFAIL is a
 * fact about the path to the server, not about the name.
 */

#include <sys/types.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <fcntl.h>
#include <netdb.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <ares.h>

#include "mw_dns.h"
#include "mw_text.h"
#include "mw_stats.h"

#define MW_DNS_NEG_DEFAULT	60	/* negative TTL when no SOA came */
#define MW_DNS_NEG_MAX		3600	/* RFC 2308: one to three hours */
#define MW_DNS_POS_MAX		86400	/* do not trust a week-long TTL */
#define MW_DNS_EDNS_SIZE	1232	/* no IP fragmentation on the path */
#define MW_DNS_SLACK_MS		500	/* hard cap beyond timeout * tries */
#define MW_DNS_MAXBUCKETS	(1U << 20)
#define MW_DNS_ROTATE		256	/* queries per channel (source port) */

#define DNS_HDRSIZE		12
#define DNS_CLASS_IN		1
#define DNS_TYPE_SOA		6

/* One cached answer; the key is the lower-cased name and the type. */
struct cent {
	struct cent		*hnext;		/* hash chain */
	struct cent		*prev;		/* LRU list, head = newest */
	struct cent		*next;
	uint32_t		 hash;
	int			 type;
	char			*name;
	enum mw_dns_status	 status;
	uint64_t		 expires;	/* monotonic ms */
	int			 nrr;
	struct mw_dns_rr	*rr;
};

/* One c-ares channel, shared by every batch (see the top). */
struct chan {
	struct chan		*next;
	ares_channel		 ch;
	int			 outstanding;	/* queries c-ares holds */
	unsigned int		 sent;
};

struct mw_dns {
	char			*servers;	/* csv, or NULL: resolv.conf */
	int			 timeout_ms;
	int			 tries;
	size_t			 cache_max;	/* 0: no cache */
	struct mw_stats		*stats;		/* counters, or NULL */

	pthread_mutex_t		 rlock;		/* the resolver: below */
	struct chan		*chans;		/* live channels */
	struct chan		*cur;		/* new queries go here */
	int			 started;	/* the thread runs */
	int			 stop;
	pid_t			 pid;		/* where it runs (fork) */
	pthread_t		 thr;
	int			 wake[2];	/* pipe, to the thread */
	uint64_t		 sleep_until;	/* thread's poll ends, ms */

	pthread_mutex_t		 lock;		/* guards everything below */
	struct cent		**tab;
	size_t			 tabsize;	/* power of two */
	size_t			 ncache;
	struct cent		*lru_head;
	struct cent		*lru_tail;
};

struct mw_dns_query {
	struct mw_dns_query	*next;		/* all queries of the batch */
	struct mw_dns_batch	*b;
	struct mw_dns_answer	 ans;
	/* Both in the query's own allocation, after the struct: */
	char			*name;		/* as the caller gave it */
	char			*key;		/* asked: lower case, no final dot */
	int			 rrcap;		/* allocated ans.rr slots */
	int			 done;		/* ans is final */
	uint64_t		 deadline;	/* hard cap, monotonic ms */
	/* Under d->rlock: */
	struct chan		*chan;		/* c-ares holds it, or NULL */
	int			 orphan;	/* its batch is gone */
	struct mw_dns_query	*anext;		/* batch's arrived list */
	int			 rstatus;	/* what c-ares said */
	unsigned char		*raw;		/* and the reply's bytes */
	int			 rlen;
};

struct mw_dns_batch {
	struct mw_dns		*d;
	struct mw_dns_query	*queries;
	int			 pending;	/* queries not done */
	/* Under d->rlock: replies kept by on_raw, for the owner. */
	struct mw_dns_query	*arrived;
	pthread_cond_t		 cv;
	/* Handed out when we cannot allocate a query: submit never fails. */
	struct mw_dns_query	 oom;
};

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static unsigned int
get16(const unsigned char *p)
{
	return ((unsigned int)p[0] << 8) | p[1];
}

static uint32_t
get32(const unsigned char *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
	    ((uint32_t)p[2] << 8) | p[3];
}

static int
type_supported(int type)
{
	switch (type) {
	case MW_DNS_A:
	case MW_DNS_AAAA:
	case MW_DNS_CNAME:
	case MW_DNS_PTR:
	case MW_DNS_MX:
	case MW_DNS_TXT:
	case MW_DNS_SPF:
		return 1;
	}
	return 0;
}

/*
 * Check a name and write its cache/query key: lower case, no final dot.
 * We refuse what cannot be a DNS name we would look up: empty labels,
 * labels over 63 or names over 253 octets, and bytes c-ares would
 * interpret (backslash escapes) or that no host name holds.
 */
static int
check_name(const char *name, char *key)
{
	size_t		 i, n = strlen(name);

	/*
	 * A space is a legal octet in a DNS label (SPF macros can produce
	 * one, RFC 7208 section 7.3); control characters, 8-bit bytes and
	 * backslashes (c-ares' escape character) are not names we will ask
	 * for.
	 */
	if (mw_domain_check(name, n, MW_DOMAIN_TEXT | MW_DOMAIN_SPACE) != NULL)
		return -1;
	if (name[n - 1] == '.')
		n--;
	for (i = 0; i < n; i++)
		key[i] = (char)((name[i] >= 'A' && name[i] <= 'Z') ?
		    name[i] + ('a' - 'A') : name[i]);
	key[n] = '\0';
	return 0;
}

/* ---- answers ---------------------------------------------------------- */

static void
rr_free(struct mw_dns_rr *rr, int nrr)
{
	int i;

	if (rr == NULL)
		return;
	for (i = 0; i < nrr; i++)
		free(rr[i].text);
	free(rr);
}

static void
query_clear_rr(struct mw_dns_query *q)
{
	rr_free(q->ans.rr, q->ans.nrr);
	q->ans.rr = NULL;
	q->ans.nrr = 0;
	q->rrcap = 0;
}

/* Append one record; text is copied and NUL-terminated.  -1: no memory. */
static int
add_rr(struct mw_dns_query *q, int type, unsigned int ttl, int pref,
    const void *text, size_t len)
{
	struct mw_dns_rr	*rr;
	int			 cap;
	char			*t;

	if (q->ans.nrr == q->rrcap) {
		cap = q->rrcap ? q->rrcap * 2 : 4;
		if (cap > INT_MAX / 2)
			return -1;
		rr = realloc(q->ans.rr, (size_t)cap * sizeof(*rr));
		if (rr == NULL)
			return -1;
		q->ans.rr = rr;
		q->rrcap = cap;
	}
	if ((t = malloc(len + 1)) == NULL)
		return -1;
	if (len > 0)
		memcpy(t, text, len);
	t[len] = '\0';
	rr = &q->ans.rr[q->ans.nrr++];
	rr->type = type;
	rr->ttl = ttl;
	rr->pref = pref;
	rr->text = t;
	rr->len = len;
	return 0;
}

/* Grow the text of a record (TXT character-strings).  -1: no memory. */
static int
rr_append(struct mw_dns_rr *rr, const void *s, size_t n)
{
	char *t;

	if (n == 0)
		return 0;
	if ((t = realloc(rr->text, rr->len + n + 1)) == NULL)
		return -1;
	memcpy(t + rr->len, s, n);
	rr->len += n;
	t[rr->len] = '\0';
	rr->text = t;
	return 0;
}

static struct mw_dns_rr *
rr_copy(const struct mw_dns_rr *src, int n)
{
	struct mw_dns_rr	*dst;
	int			 i;

	if (n <= 0)
		return NULL;
	if ((dst = calloc((size_t)n, sizeof(*dst))) == NULL)
		return NULL;
	for (i = 0; i < n; i++) {
		dst[i] = src[i];
		if ((dst[i].text = malloc(src[i].len + 1)) == NULL) {
			rr_free(dst, i);
			return NULL;
		}
		memcpy(dst[i].text, src[i].text, src[i].len + 1);
	}
	return dst;
}

/* ---- the cache -------------------------------------------------------- */

static uint32_t
hash_key(const char *key, int type)
{
	uint32_t h = 2166136261U;	/* FNV-1a */

	for (; *key != '\0'; key++) {
		h ^= (unsigned char)*key;
		h *= 16777619U;
	}
	h ^= (uint32_t)type;
	h *= 16777619U;
	return h;
}

static void
cent_free(struct cent *e)
{
	if (e == NULL)
		return;
	rr_free(e->rr, e->nrr);
	free(e->name);
	free(e);
}

/* Lock held, as for all the cache helpers below. */
static void
lru_unlink(struct mw_dns *d, struct cent *e)
{
	if (e->prev != NULL)
		e->prev->next = e->next;
	else
		d->lru_head = e->next;
	if (e->next != NULL)
		e->next->prev = e->prev;
	else
		d->lru_tail = e->prev;
	e->prev = e->next = NULL;
}

/* Unlink e from its hash chain and the LRU list. */
static void
cache_unlink(struct mw_dns *d, struct cent *e)
{
	struct cent **pp;

	for (pp = &d->tab[e->hash & (d->tabsize - 1)]; *pp != NULL;
	    pp = &(*pp)->hnext) {
		if (*pp == e) {
			*pp = e->hnext;
			break;
		}
	}
	e->hnext = NULL;
	lru_unlink(d, e);
	d->ncache--;
}

static void
lru_push_head(struct mw_dns *d, struct cent *e)
{
	e->prev = NULL;
	e->next = d->lru_head;
	if (d->lru_head != NULL)
		d->lru_head->prev = e;
	d->lru_head = e;
	if (d->lru_tail == NULL)
		d->lru_tail = e;
}

/* Lock held. */
static struct cent *
cache_find(struct mw_dns *d, const char *key, int type, uint32_t h)
{
	struct cent *e;

	for (e = d->tab[h & (d->tabsize - 1)]; e != NULL; e = e->hnext)
		if (e->hash == h && e->type == type &&
		    strcmp(e->name, key) == 0)
			return e;
	return NULL;
}

/* Fill q from the cache.  Returns 1 on a hit. */
static int
cache_get(struct mw_dns *d, struct mw_dns_query *q)
{
	struct cent		*e, *stale = NULL;
	struct mw_dns_rr	*rr = NULL;
	uint64_t		 now;
	unsigned int		 left;
	uint32_t		 h;
	int			 i, hit = 0;

	if (d->cache_max == 0)
		return 0;
	h = hash_key(q->key, q->ans.type);
	now = now_ms();
	pthread_mutex_lock(&d->lock);
	e = cache_find(d, q->key, q->ans.type, h);
	if (e != NULL && e->expires <= now) {
		cache_unlink(d, e);
		stale = e;
	} else if (e != NULL && (e->nrr == 0 ||
	    (rr = rr_copy(e->rr, e->nrr)) != NULL)) {
		/* Report what is left of the TTL, rounded up. */
		left = (unsigned int)((e->expires - now + 999) / 1000);
		for (i = 0; i < e->nrr; i++)
			if (rr[i].ttl > left)
				rr[i].ttl = left;
		q->ans.status = e->status;
		q->ans.rr = rr;
		q->ans.nrr = e->nrr;
		q->rrcap = e->nrr;
		q->ans.ttl = left;
		q->ans.from_cache = 1;
		if (d->lru_head != e) {
			lru_unlink(d, e);
			lru_push_head(d, e);
		}
		hit = 1;
	}
	pthread_mutex_unlock(&d->lock);
	cent_free(stale);
	return hit;
}

/* Remember a final OK/NXDOMAIN/NODATA answer; anything else is ignored. */
static void
cache_put(struct mw_dns *d, const struct mw_dns_query *q)
{
	struct cent	*e, *old, *evicted = NULL;
	unsigned int	 ttl;

	if (d->cache_max == 0 || q->ans.from_cache)
		return;
	switch (q->ans.status) {
	case MW_DNS_OK:
		ttl = q->ans.ttl < MW_DNS_POS_MAX ? q->ans.ttl : MW_DNS_POS_MAX;
		break;
	case MW_DNS_NXDOMAIN:
	case MW_DNS_NODATA:
		ttl = q->ans.ttl < MW_DNS_NEG_MAX ? q->ans.ttl : MW_DNS_NEG_MAX;
		break;
	default:
		return;		/* never TEMPFAIL, nor PERMFAIL */
	}
	if (ttl == 0)
		return;

	/* Build the entry outside the lock; a failure only costs a miss. */
	if ((e = calloc(1, sizeof(*e))) == NULL)
		return;
	if ((e->name = strdup(q->key)) == NULL ||
	    (q->ans.nrr > 0 &&
	    (e->rr = rr_copy(q->ans.rr, q->ans.nrr)) == NULL)) {
		cent_free(e);
		return;
	}
	e->nrr = e->rr != NULL ? q->ans.nrr : 0;
	e->type = q->ans.type;
	e->status = q->ans.status;
	e->hash = hash_key(e->name, e->type);
	e->expires = now_ms() + (uint64_t)ttl * 1000;

	pthread_mutex_lock(&d->lock);
	if ((old = cache_find(d, e->name, e->type, e->hash)) != NULL) {
		cache_unlink(d, old);
		old->hnext = evicted;
		evicted = old;
	}
	/* Evict from the old end; expired entries go when they are met. */
	while (d->ncache >= d->cache_max && d->lru_tail != NULL) {
		old = d->lru_tail;
		cache_unlink(d, old);
		old->hnext = evicted;
		evicted = old;
	}
	e->hnext = d->tab[e->hash & (d->tabsize - 1)];
	d->tab[e->hash & (d->tabsize - 1)] = e;
	lru_push_head(d, e);
	d->ncache++;
	pthread_mutex_unlock(&d->lock);

	while (evicted != NULL) {
		old = evicted;
		evicted = old->hnext;
		cent_free(old);
	}
}

void
mw_dns_cache_flush(struct mw_dns *d)
{
	struct cent *e, *list;
	size_t i;

	if (d == NULL || d->tab == NULL)
		return;
	pthread_mutex_lock(&d->lock);
	list = d->lru_head;
	for (i = 0; i < d->tabsize; i++)
		d->tab[i] = NULL;
	d->lru_head = d->lru_tail = NULL;
	d->ncache = 0;
	pthread_mutex_unlock(&d->lock);

	while (list != NULL) {
		e = list;
		list = e->next;
		cent_free(e);
	}
}

/* ---- the process-wide object ------------------------------------------ */

static int
channel_open(const struct mw_dns *d, ares_channel *chp)
{
	struct ares_options	opts;
	int			optmask, rc;

	memset(&opts, 0, sizeof(opts));
	/*
	 * EDNS so that DKIM keys and long TXT fit in UDP; c-ares retries
	 * without it if a server answers FORMERR, and over TCP on TC.
	 * NOCHECKRESP: hand us SERVFAIL and REFUSED as they come instead of
	 * retrying them on every try, which only delays a TEMPFAIL and ends
	 * in a misleading ECONNREFUSED.  ares_query never uses the search
	 * list, so NOSEARCH is not needed.
	 */
	opts.flags = ARES_FLAG_EDNS | ARES_FLAG_NOCHECKRESP;
	opts.ednspsz = MW_DNS_EDNS_SIZE;
	opts.timeout = d->timeout_ms;		/* ms with ARES_OPT_TIMEOUTMS */
	opts.tries = d->tries;
	optmask = ARES_OPT_FLAGS | ARES_OPT_EDNSPSZ | ARES_OPT_TIMEOUTMS |
	    ARES_OPT_TRIES;
	if ((rc = ares_init_options(chp, &opts, optmask)) != ARES_SUCCESS)
		return rc;
	if (d->servers != NULL &&
	    (rc = ares_set_servers_ports_csv(*chp, d->servers)) !=
	    ARES_SUCCESS) {
		ares_destroy(*chp);
		*chp = NULL;
		return rc;
	}
	return ARES_SUCCESS;
}

int
mw_dns_new(struct mw_dns **dp, const char *nameservers, int timeout_ms,
    int tries, size_t cache_entries, char *err, size_t errlen)
{
	struct mw_dns	*d;
	ares_channel	 ch;
	size_t		 n;
	int		 rc;

	*dp = NULL;
	if (timeout_ms <= 0 || tries < 1) {
		snprintf(err, errlen, "dns: timeout and tries must be > 0");
		return -1;
	}
	if ((rc = ares_library_init(ARES_LIB_INIT_ALL)) != ARES_SUCCESS) {
		snprintf(err, errlen, "dns: ares_library_init: %s",
		    ares_strerror(rc));
		return -1;
	}
	if ((d = calloc(1, sizeof(*d))) == NULL)
		goto oom;
	d->timeout_ms = timeout_ms;
	d->tries = tries;
	d->cache_max = cache_entries;
	if (nameservers != NULL && *nameservers != '\0' &&
	    (d->servers = strdup(nameservers)) == NULL)
		goto oom;
	if (cache_entries > 0) {
		for (n = 16; n < cache_entries && n < MW_DNS_MAXBUCKETS; n *= 2)
			;
		if ((d->tab = calloc(n, sizeof(*d->tab))) == NULL)
			goto oom;
		d->tabsize = n;
	}
	d->wake[0] = d->wake[1] = -1;
	if (pthread_mutex_init(&d->lock, NULL) != 0) {
		snprintf(err, errlen, "dns: pthread_mutex_init failed");
		free(d->tab);
		free(d->servers);
		free(d);
		ares_library_cleanup();
		return -1;
	}
	if (pthread_mutex_init(&d->rlock, NULL) != 0) {
		snprintf(err, errlen, "dns: pthread_mutex_init failed");
		pthread_mutex_destroy(&d->lock);
		free(d->tab);
		free(d->servers);
		free(d);
		ares_library_cleanup();
		return -1;
	}

	/* Try the configuration once now, so a bad list fails at startup. */
	if ((rc = channel_open(d, &ch)) != ARES_SUCCESS) {
		snprintf(err, errlen, "dns: nameservers \"%s\": %s",
		    nameservers ? nameservers : "", ares_strerror(rc));
		mw_dns_free(d);
		return -1;
	}
	ares_destroy(ch);
	*dp = d;
	return 0;

oom:
	snprintf(err, errlen, "dns: out of memory");
	if (d != NULL) {
		free(d->servers);
		free(d);
	}
	ares_library_cleanup();
	return -1;
}

static void	resolver_stop(struct mw_dns *d);

void
mw_dns_free(struct mw_dns *d)
{
	if (d == NULL)
		return;
	resolver_stop(d);
	mw_dns_cache_flush(d);
	pthread_mutex_destroy(&d->rlock);
	pthread_mutex_destroy(&d->lock);
	free(d->tab);
	free(d->servers);
	free(d);
	ares_library_cleanup();
}

/* ---- reading replies -------------------------------------------------- */

/* Offset just past the (maybe compressed) name at off, or -1. */
static int
skip_name(const unsigned char *m, int len, int off)
{
	int n;

	for (n = 0; n < 128; n++) {		/* 127 labels at most */
		if (off < 0 || off >= len)
			return -1;
		if (m[off] == 0)
			return off + 1;
		if ((m[off] & 0xc0) == 0xc0)
			return off + 2 <= len ? off + 2 : -1;
		if ((m[off] & 0xc0) != 0)
			return -1;		/* obsolete label types */
		off += 1 + m[off];
	}
	return -1;
}

#define DNS_TYPE_CNAME_RR	5
#define MW_DNS_MAX_CNAMES	16	/* CNAMEs of one answer we follow */

struct scan {
	unsigned int	minttl;		/* smallest TTL in the answer section */
	int		nmatch;		/* answer records of the asked type */
	unsigned int	negttl;		/* from an SOA in authority */
	int		cname_loop;	/* no data, and the CNAMEs loop */
};

/* "a.example." and "A.Example" are the same name. */
static int
same_name(const char *a, const char *b)
{
	size_t na = strlen(a), nb = strlen(b);

	if (na > 0 && a[na - 1] == '.')
		na--;
	if (nb > 0 && b[nb - 1] == '.')
		nb--;
	return na == nb && strncasecmp(a, b, na) == 0;
}

/*
 * An answer without the asked type: do its CNAMEs, followed from the
 * name asked, come back to a name already seen?  (A recursive resolver
 * answers a loop with SERVFAIL; a server that hands us the loop itself
 * must not make it read as "no record".)
 */
static int
cname_loops(const char *qname, char *const *owner, char *const *target,
    int n)
{
	const char *seen[MW_DNS_MAX_CNAMES + 1];
	const char *cur = qname;
	int nseen = 0, i, j;

	seen[nseen++] = qname;
	for (;;) {
		for (i = 0; i < n && !same_name(owner[i], cur); i++)
			;
		if (i == n)
			return 0;	/* the chain ends */
		cur = target[i];
		for (j = 0; j < nseen; j++)
			if (same_name(seen[j], cur))
				return 1;
		if (nseen > MW_DNS_MAX_CNAMES)
			return 0;
		seen[nseen++] = cur;
	}
}

/*
 * Record data we decode ourselves: CNAME (c-ares has no parser for it)
 * and SPF (ares_parse_txt_reply_ext takes type 16 only).  -1 bad data,
 * -2 no memory.
 */
static int
collect_rr(struct mw_dns_query *q, const unsigned char *m, int len,
    int off, int rdlen, unsigned int ttl)
{
	struct mw_dns_rr	*rr;
	char			*s;
	long			 enclen;
	int			 end, n;

	if (q->ans.type == MW_DNS_CNAME) {
		if (ares_expand_name(m + off, m, len, &s, &enclen) !=
		    ARES_SUCCESS)
			return -1;
		n = add_rr(q, MW_DNS_CNAME, ttl, 0, s, strlen(s));
		ares_free_string(s);
		return n == 0 ? 0 : -2;
	}
	/* SPF: character-strings, concatenated like TXT. */
	if (add_rr(q, q->ans.type, ttl, 0, "", 0) == -1)
		return -2;
	rr = &q->ans.rr[q->ans.nrr - 1];
	for (end = off + rdlen; off < end; off += n) {
		n = m[off++];
		if (off + n > end)
			return -1;
		if (rr_append(rr, m + off, (size_t)n) == -1)
			return -2;
	}
	return 0;
}

/*
 * Walk the reply for what the c-ares parsers do not tell: TTLs of the
 * answer section and the negative TTL.  With collect, also decode the
 * records of the asked type (collect_rr).  0, -1 malformed, -2 no memory.
 */
static int
scan_reply(struct mw_dns_query *q, const unsigned char *m, int len,
    struct scan *s, int collect)
{
	unsigned int	qd, an, ns, i, ttl, min;
	int		off, p, type, rdlen, rc, ncn = 0, k;
	char		*owner[MW_DNS_MAX_CNAMES], *target[MW_DNS_MAX_CNAMES];
	long		enclen;

	s->minttl = UINT_MAX;
	s->nmatch = 0;
	s->negttl = MW_DNS_NEG_DEFAULT;
	s->cname_loop = 0;
	if (m == NULL || len < DNS_HDRSIZE)
		return -1;
	qd = get16(m + 4);
	an = get16(m + 6);
	ns = get16(m + 8);
	off = DNS_HDRSIZE;
	for (i = 0; i < qd; i++) {
		if ((off = skip_name(m, len, off)) < 0 || off + 4 > len)
			return -1;
		off += 4;
	}
	for (i = 0; i < an + ns; i++) {
		int name_off = off;

		if ((off = skip_name(m, len, off)) < 0 || off + 10 > len)
			goto bad;
		type = (int)get16(m + off);
		ttl = get32(m + off + 4);
		if (ttl > INT32_MAX)
			ttl = 0;		/* RFC 2181 section 8 */
		rdlen = (int)get16(m + off + 8);
		off += 10;
		if (off + rdlen > len)
			goto bad;
		if (i < an) {
			if (ttl < s->minttl)
				s->minttl = ttl;
			if (type == q->ans.type) {
				s->nmatch++;
				if (collect && (rc = collect_rr(q, m, len, off,
				    rdlen, ttl)) != 0) {
					for (k = 0; k < ncn; k++) {
						ares_free_string(owner[k]);
						ares_free_string(target[k]);
					}
					return rc;
				}
			} else if (type == DNS_TYPE_CNAME_RR &&
			    ncn < MW_DNS_MAX_CNAMES) {
				if (ares_expand_name(m + name_off, m, len,
				    &owner[ncn], &enclen) != ARES_SUCCESS)
					goto bad;
				if (ares_expand_name(m + off, m, len,
				    &target[ncn], &enclen) != ARES_SUCCESS) {
					ares_free_string(owner[ncn]);
					goto bad;
				}
				ncn++;
			}
		} else if (type == DNS_TYPE_SOA) {
			/* mname, rname, then five 32-bit numbers. */
			p = skip_name(m, off + rdlen, off);
			p = skip_name(m, off + rdlen, p);
			if (p < 0 || p + 20 > off + rdlen)
				goto bad;
			min = get32(m + p + 16);
			s->negttl = ttl < min ? ttl : min;
		}
		off += rdlen;
	}
	if (s->minttl == UINT_MAX)
		s->minttl = 0;
	if (s->nmatch == 0 && ncn > 0 && q->ans.name != NULL)
		s->cname_loop = cname_loops(q->ans.name, owner, target, ncn);
	for (k = 0; k < ncn; k++) {
		ares_free_string(owner[k]);
		ares_free_string(target[k]);
	}
	return 0;
bad:
	for (k = 0; k < ncn; k++) {
		ares_free_string(owner[k]);
		ares_free_string(target[k]);
	}
	return -1;
}

static void
complete(struct mw_dns_query *q, enum mw_dns_status st, const char *why)
{
	if (q->done)
		return;
	if (st != MW_DNS_OK)
		query_clear_rr(q);
	q->ans.status = st;
	q->ans.error = why;
	q->done = 1;
	q->b->pending--;
	if (st == MW_DNS_TEMPFAIL)
		mw_stats_inc(q->b->d->stats, strcmp(why, "timeout") == 0 ?
		    MW_ST_DNS_TIMEOUTS : strcmp(why, "SERVFAIL") == 0 ?
		    MW_ST_DNS_SERVFAIL : MW_ST_DNS_OTHER_ERRORS);
}

/* A c-ares parser said no: map its code. */
static void
parse_failed(struct mw_dns_query *q, int rc, const struct scan *s)
{
	switch (rc) {
	case ARES_ENODATA:
		/* e.g. only a CNAME to a name without the type */
		if (s->cname_loop) {
			complete(q, MW_DNS_TEMPFAIL, "CNAME loop");
			break;
		}
		q->ans.ttl = s->negttl;
		complete(q, MW_DNS_NODATA, NULL);
		break;
	case ARES_ENOMEM:
		complete(q, MW_DNS_TEMPFAIL, "out of memory");
		break;
	default:
		/*
		 * The message was well formed (scan_reply read it) but the
		 * record data is not what its type allows (a PTR target that
		 * is no host name): a property of the record, permanent.
		 */
		complete(q, MW_DNS_PERMFAIL, "bad record data");
		break;
	}
}

static void
parse_reply(struct mw_dns_query *q, const unsigned char *abuf, int alen)
{
	struct scan		 s;
	struct ares_addrttl	*a4 = NULL;
	struct ares_addr6ttl	*a6 = NULL;
	struct ares_txt_ext	*txt = NULL, *t;
	struct ares_mx_reply	*mx = NULL, *x;
	struct hostent		*he = NULL;
	struct in_addr		 dummy;
	char			 buf[INET6_ADDRSTRLEN];
	int			 i, n, rc, custom, type = q->ans.type;

	/* CNAME and SPF records are decoded by scan_reply itself. */
	custom = type == MW_DNS_CNAME || type == MW_DNS_SPF;
	if ((rc = scan_reply(q, abuf, alen, &s, custom)) != 0) {
		if (rc == -2)
			complete(q, MW_DNS_TEMPFAIL, "out of memory");
		else
			complete(q, MW_DNS_TEMPFAIL, "malformed reply");
		return;
	}
	rc = ARES_SUCCESS;
	n = s.nmatch > 0 ? s.nmatch : 1;
	switch (type) {
	case MW_DNS_A:
		if ((a4 = calloc((size_t)n, sizeof(*a4))) == NULL) {
			rc = ARES_ENOMEM;
			break;
		}
		if ((rc = ares_parse_a_reply(abuf, alen, NULL, a4, &n)) !=
		    ARES_SUCCESS)
			break;
		for (i = 0; i < n && rc == ARES_SUCCESS; i++) {
			if (inet_ntop(AF_INET, &a4[i].ipaddr, buf,
			    sizeof(buf)) == NULL)
				rc = ARES_EBADRESP;
			else if (add_rr(q, type, a4[i].ttl > 0 ?
			    (unsigned int)a4[i].ttl : 0, 0, buf,
			    strlen(buf)) == -1)
				rc = ARES_ENOMEM;
		}
		break;
	case MW_DNS_AAAA:
		if ((a6 = calloc((size_t)n, sizeof(*a6))) == NULL) {
			rc = ARES_ENOMEM;
			break;
		}
		if ((rc = ares_parse_aaaa_reply(abuf, alen, NULL, a6, &n)) !=
		    ARES_SUCCESS)
			break;
		for (i = 0; i < n && rc == ARES_SUCCESS; i++) {
			if (inet_ntop(AF_INET6, &a6[i].ip6addr, buf,
			    sizeof(buf)) == NULL)
				rc = ARES_EBADRESP;
			else if (add_rr(q, type, a6[i].ttl > 0 ?
			    (unsigned int)a6[i].ttl : 0, 0, buf,
			    strlen(buf)) == -1)
				rc = ARES_ENOMEM;
		}
		break;
	case MW_DNS_TXT:
		if ((rc = ares_parse_txt_reply_ext(abuf, alen, &txt)) !=
		    ARES_SUCCESS)
			break;
		/* A record is its strings until the next record_start. */
		for (t = txt; t != NULL && rc == ARES_SUCCESS; t = t->next) {
			if ((t->record_start || q->ans.nrr == 0) &&
			    add_rr(q, type, s.minttl, 0, "", 0) == -1)
				rc = ARES_ENOMEM;
			else if (rr_append(&q->ans.rr[q->ans.nrr - 1], t->txt,
			    t->length) == -1)
				rc = ARES_ENOMEM;
		}
		break;
	case MW_DNS_MX:
		if ((rc = ares_parse_mx_reply(abuf, alen, &mx)) !=
		    ARES_SUCCESS)
			break;
		for (x = mx; x != NULL && rc == ARES_SUCCESS; x = x->next)
			if (add_rr(q, type, s.minttl, x->priority, x->host,
			    strlen(x->host)) == -1)
				rc = ARES_ENOMEM;
		break;
	case MW_DNS_PTR:
		/*
		 * The address is only copied into the hostent; give a dummy
		 * rather than NULL.  Every PTR lands in h_aliases in answer
		 * order (h_name is just the last one).
		 */
		memset(&dummy, 0, sizeof(dummy));
		if ((rc = ares_parse_ptr_reply(abuf, alen, &dummy,
		    sizeof(dummy), AF_INET, &he)) != ARES_SUCCESS)
			break;
		for (i = 0; he->h_aliases != NULL && he->h_aliases[i] != NULL &&
		    rc == ARES_SUCCESS; i++)
			if (add_rr(q, type, s.minttl, 0, he->h_aliases[i],
			    strlen(he->h_aliases[i])) == -1)
				rc = ARES_ENOMEM;
		if (q->ans.nrr == 0 && rc == ARES_SUCCESS &&
		    add_rr(q, type, s.minttl, 0, he->h_name,
		    strlen(he->h_name)) == -1)
			rc = ARES_ENOMEM;
		break;
	default:
		break;		/* CNAME, SPF: collected by scan_reply */
	}
	free(a4);
	free(a6);
	if (txt != NULL)
		ares_free_data(txt);
	if (mx != NULL)
		ares_free_data(mx);
	if (he != NULL)
		ares_free_hostent(he);

	if (rc != ARES_SUCCESS) {
		parse_failed(q, rc, &s);
		return;
	}
	if (q->ans.nrr == 0) {
		if (s.cname_loop) {
			complete(q, MW_DNS_TEMPFAIL, "CNAME loop");
			return;
		}
		q->ans.ttl = s.negttl;
		complete(q, MW_DNS_NODATA, NULL);
		return;
	}
	q->ans.ttl = s.minttl;
	complete(q, MW_DNS_OK, NULL);
}

/* The ares_query callback: map the outcome, then maybe cache it. */
static void
on_reply(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct mw_dns_query	*q = arg;
	struct scan		 s;

	(void)timeouts;
	if (q->done)		/* given up on already by the hard cap */
		return;
	switch (status) {
	case ARES_SUCCESS:
		parse_reply(q, abuf, alen);
		break;
	case ARES_ENOTFOUND:	/* c-ares' name for NXDOMAIN */
	case ARES_ENODATA:	/* NOERROR, empty answer section */
		/* A bad authority section only costs the default TTL. */
		if (scan_reply(q, abuf, alen, &s, 0) != 0) {
			s.negttl = MW_DNS_NEG_DEFAULT;
			s.cname_loop = 0;
		}
		if (s.cname_loop) {
			complete(q, MW_DNS_TEMPFAIL, "CNAME loop");
			break;
		}
		q->ans.ttl = s.negttl;
		complete(q, status == ARES_ENOTFOUND ? MW_DNS_NXDOMAIN :
		    MW_DNS_NODATA, NULL);
		break;
	case ARES_ETIMEOUT:
		complete(q, MW_DNS_TEMPFAIL, "timeout");
		break;
	case ARES_ESERVFAIL:
		complete(q, MW_DNS_TEMPFAIL, "SERVFAIL");
		break;
	case ARES_EREFUSED:
		complete(q, MW_DNS_TEMPFAIL, "REFUSED");
		break;
	case ARES_ECONNREFUSED:
		complete(q, MW_DNS_TEMPFAIL, "connection refused");
		break;
	case ARES_ENOTIMP:
		complete(q, MW_DNS_TEMPFAIL, "NOTIMP");
		break;
	case ARES_ENOMEM:
		complete(q, MW_DNS_TEMPFAIL, "out of memory");
		break;
	case ARES_EDESTRUCTION:
	case ARES_ECANCELLED:
		complete(q, MW_DNS_TEMPFAIL, "cancelled");
		break;
	case ARES_EBADRESP:
		complete(q, MW_DNS_TEMPFAIL, "malformed reply");
		break;
	case ARES_EFORMERR:
		complete(q, MW_DNS_TEMPFAIL, "FORMERR");
		break;
	case ARES_EBADNAME:
		complete(q, MW_DNS_PERMFAIL, "bad name");
		break;
	default:
		complete(q, MW_DNS_TEMPFAIL, ares_strerror(status));
		break;
	}
	cache_put(q->b->d, q);
}

void
mw_dns_set_stats(struct mw_dns *d, struct mw_stats *st)
{
	if (d != NULL)
		d->stats = st;
}

/* ---- the resolver thread ------------------------------------------- */

/*
 * c-ares ends a query (a reply, a timeout, a cancel, the channel's end):
 * keep what it said for the batch's owner, or free an orphan.  Runs
 * with d->rlock held, in the resolver thread or inside ares_query.
 */
static void
on_raw(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct mw_dns_query	*q = arg;
	struct mw_dns_batch	*b;

	(void)timeouts;
	if (q->chan != NULL)
		q->chan->outstanding--;
	q->chan = NULL;
	if (q->orphan) {
		free(q);
		return;
	}
	b = q->b;
	q->rstatus = status;
	if (abuf != NULL && alen > 0) {
		if ((q->raw = malloc((size_t)alen)) == NULL)
			q->rstatus = ARES_ENOMEM;
		else {
			memcpy(q->raw, abuf, (size_t)alen);
			q->rlen = alen;
		}
	}
	q->anext = b->arrived;
	b->arrived = q;
	pthread_cond_signal(&b->cv);
}

static void
wake_thread(struct mw_dns *d)
{
	char c = 0;

	if (d->wake[1] != -1 && write(d->wake[1], &c, 1) == -1) {
		/* full pipe (EAGAIN): the thread wakes anyway */
	}
}

/* Destroy the channels that are done with (not current, nothing held). */
static void
reap_channels(struct mw_dns *d)
{
	struct chan **pp = &d->chans, *c;

	while ((c = *pp) != NULL) {
		if (c != d->cur && c->outstanding == 0) {
			*pp = c->next;
			ares_destroy(c->ch);
			free(c);
		} else
			pp = &c->next;
	}
}

static void *
resolver_main(void *arg)
{
	struct mw_dns	*d = arg;
	struct pollfd	*pfd = NULL, *np;
	struct chan	**owner = NULL, **no, *c;
	size_t		 cap = 0, n, i;
	ares_socket_t	 socks[ARES_GETSOCK_MAXNUM];
	struct timeval	 tv, best = { 0, 0 }, *tvp;
	int		 bits, k, ms, rc, have;
	char		 junk[64];

	pthread_mutex_lock(&d->rlock);
	while (!d->stop) {
		reap_channels(d);
		/* The wake-up pipe, then every channel's sockets. */
		n = 0;
		have = 0;
		for (c = d->chans; ; c = c->next) {
			if (n + ARES_GETSOCK_MAXNUM + 1 > cap) {
				size_t ncap = cap ? cap * 2 : 64;

				np = realloc(pfd, ncap * sizeof(*pfd));
				no = np ? realloc(owner, ncap * sizeof(*owner)) :
				    NULL;
				if (np != NULL)
					pfd = np;
				if (no == NULL)
					break;	/* poll what we have */
				owner = no;
				cap = ncap;
			}
			if (n == 0) {
				pfd[0].fd = d->wake[0];
				pfd[0].events = POLLIN;
				pfd[0].revents = 0;
				owner[0] = NULL;
				n = 1;
			}
			if (c == NULL)
				break;
			bits = ares_getsock(c->ch, socks, ARES_GETSOCK_MAXNUM);
			for (k = 0; k < ARES_GETSOCK_MAXNUM; k++) {
				if (!ARES_GETSOCK_READABLE(bits, k) &&
				    !ARES_GETSOCK_WRITABLE(bits, k))
					break;
				pfd[n].fd = socks[k];
				pfd[n].events = 0;
				pfd[n].revents = 0;
				if (ARES_GETSOCK_READABLE(bits, k))
					pfd[n].events |= POLLIN;
				if (ARES_GETSOCK_WRITABLE(bits, k))
					pfd[n].events |= POLLOUT;
				owner[n++] = c;
			}
			if ((tvp = ares_timeout(c->ch, NULL, &tv)) != NULL &&
			    (!have || tvp->tv_sec < best.tv_sec ||
			    (tvp->tv_sec == best.tv_sec &&
			    tvp->tv_usec < best.tv_usec))) {
				best = *tvp;
				have = 1;
			}
		}
		if (n == 0)	/* no memory even for the pipe: nap */
			ms = 100;
		else
			ms = have ? (int)(best.tv_sec * 1000 +
			    (best.tv_usec + 999) / 1000) : -1;
		d->sleep_until = ms < 0 ? UINT64_MAX : now_ms() + (uint64_t)ms;
		pthread_mutex_unlock(&d->rlock);
		rc = n > 0 ? poll(pfd, (nfds_t)n, ms) : poll(NULL, 0, ms);
		pthread_mutex_lock(&d->rlock);
		if (rc > 0 && (pfd[0].revents & POLLIN))
			while (read(d->wake[0], junk, sizeof(junk)) > 0)
				;
		/*
		 * A channel polled here may be gone (reaped, never while
		 * it holds queries) only if it was not current and empty:
		 * its descriptors had nothing to say.  Skip those.
		 */
		for (i = 1; rc > 0 && i < n; i++) {
			ares_socket_t rfd, wfd;

			if (pfd[i].revents == 0)
				continue;
			for (c = d->chans; c != NULL && c != owner[i]; c = c->next)
				;
			if (c == NULL)
				continue;
			rfd = pfd[i].revents & (POLLIN | POLLERR | POLLHUP) ?
			    pfd[i].fd : ARES_SOCKET_BAD;
			wfd = pfd[i].revents & POLLOUT ? pfd[i].fd :
			    ARES_SOCKET_BAD;
			ares_process_fd(c->ch, rfd, wfd);
		}
		/* Timeouts and retries. */
		for (c = d->chans; c != NULL; c = c->next)
			if (c->outstanding > 0)
				ares_process_fd(c->ch, ARES_SOCKET_BAD,
				    ARES_SOCKET_BAD);
	}
	pthread_mutex_unlock(&d->rlock);
	free(pfd);
	free(owner);
	return NULL;
}

/* With d->rlock held: the thread runs, in this process.  0 or -1. */
static int
resolver_start(struct mw_dns *d)
{
	sigset_t all, old;
	int rc;

	if (d->started && d->pid == getpid())
		return 0;
	if (d->started) {
		/*
		 * A fork: the thread and its sockets stayed with the
		 * parent.  Forget the copies (closing them is the
		 * parent's business) and start afresh.
		 */
		d->chans = d->cur = NULL;
		d->started = 0;
		d->wake[0] = d->wake[1] = -1;
	}
	if (pipe(d->wake) == -1)
		return -1;
	(void)fcntl(d->wake[0], F_SETFL, O_NONBLOCK);
	(void)fcntl(d->wake[1], F_SETFL, O_NONBLOCK);
	(void)fcntl(d->wake[0], F_SETFD, FD_CLOEXEC);
	(void)fcntl(d->wake[1], F_SETFD, FD_CLOEXEC);
	d->stop = 0;
	d->sleep_until = UINT64_MAX;
	/* Signals are for the threads that wait for them, not this one. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&d->thr, NULL, resolver_main, d);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		close(d->wake[0]);
		close(d->wake[1]);
		d->wake[0] = d->wake[1] = -1;
		return -1;
	}
	d->started = 1;
	d->pid = getpid();
	return 0;
}

/* Stop the thread; c-ares ends the queries still held (orphans only). */
static void
resolver_stop(struct mw_dns *d)
{
	struct chan *c;

	pthread_mutex_lock(&d->rlock);
	if (d->started && d->pid == getpid()) {
		d->stop = 1;
		wake_thread(d);
		pthread_mutex_unlock(&d->rlock);
		pthread_join(d->thr, NULL);
		pthread_mutex_lock(&d->rlock);
		close(d->wake[0]);
		close(d->wake[1]);
		d->wake[0] = d->wake[1] = -1;
		d->cur = NULL;
		while ((c = d->chans) != NULL) {
			d->chans = c->next;
			ares_destroy(c->ch);	/* on_raw frees the orphans */
			free(c);
		}
	}
	d->started = 0;
	pthread_mutex_unlock(&d->rlock);
}

/*
 * With d->rlock held: hand q to c-ares on the current channel.  Returns
 * 0, or -1 if there is no resolver (then q is untouched).
 */
static int
send_query(struct mw_dns *d, struct mw_dns_query *q, int type)
{
	ares_socket_t	before[ARES_GETSOCK_MAXNUM], after[ARES_GETSOCK_MAXNUM];
	int		bb = 0, ba, fresh = 0;
	struct chan	*c;

	if (resolver_start(d) == -1)
		return -1;
	if (d->cur == NULL || d->cur->sent >= MW_DNS_ROTATE) {
		if ((c = calloc(1, sizeof(*c))) == NULL)
			return -1;
		if (channel_open(d, &c->ch) != ARES_SUCCESS) {
			free(c);
			return -1;
		}
		c->next = d->chans;
		d->chans = c;
		d->cur = c;
		fresh = 1;
	}
	c = d->cur;
	if (!fresh)
		bb = ares_getsock(c->ch, before, ARES_GETSOCK_MAXNUM);
	c->sent++;
	c->outstanding++;
	q->chan = c;
	/* may call on_raw at once, e.g. on ENOMEM */
	ares_query(c->ch, q->key, DNS_CLASS_IN, type, on_raw, q);
	ba = ares_getsock(c->ch, after, ARES_GETSOCK_MAXNUM);
	/*
	 * The thread must look again if this channel's sockets changed,
	 * or if it sleeps past this query's first timeout.
	 */
	if (fresh || ba != bb || memcmp(before, after, sizeof(before)) != 0 ||
	    d->sleep_until > now_ms() + (uint64_t)d->timeout_ms)
		wake_thread(d);
	return 0;
}

/* ---- batches ---------------------------------------------------------- */

struct mw_dns_batch *
mw_dns_batch_new(struct mw_dns *d)
{
	struct mw_dns_batch *b;

	if ((b = calloc(1, sizeof(*b))) == NULL)
		return NULL;
	if (pthread_cond_init(&b->cv, NULL) != 0) {
		free(b);
		return NULL;
	}
	b->d = d;
	b->oom.b = b;
	b->oom.name = (char *)"";
	b->oom.key = (char *)"";
	b->oom.ans.name = "";
	b->oom.ans.status = MW_DNS_TEMPFAIL;
	b->oom.ans.error = "out of memory";
	b->oom.done = 1;
	return b;
}

void
mw_dns_batch_free(struct mw_dns_batch *b)
{
	struct mw_dns_query *q;

	if (b == NULL)
		return;
	pthread_mutex_lock(&b->d->rlock);
	while ((q = b->queries) != NULL) {
		b->queries = q->next;
		query_clear_rr(q);
		free(q->raw);
		q->raw = NULL;
		if (q->chan != NULL)	/* c-ares still holds it */
			q->orphan = 1;
		else
			free(q);
	}
	b->arrived = NULL;
	pthread_mutex_unlock(&b->d->rlock);
	pthread_cond_destroy(&b->cv);
	free(b);
}

struct mw_dns_query *
mw_dns_submit(struct mw_dns_batch *b, const char *name, int type)
{
	struct mw_dns_query *q;
	size_t n;

	if (name == NULL)
		name = "";
	/* check_name writes at most strlen(name) + 1 bytes of key */
	n = strlen(name) + 1;
	if ((q = calloc(1, sizeof(*q) + 2 * n)) == NULL)
		return &b->oom;
	q->key = (char *)(q + 1);
	q->name = q->key + n;
	memcpy(q->name, name, n);
	q->b = b;
	q->ans.name = q->name;
	q->ans.type = type;
	q->ans.status = MW_DNS_PENDING;
	q->deadline = now_ms() +
	    (uint64_t)b->d->timeout_ms * (uint64_t)b->d->tries +
	    MW_DNS_SLACK_MS;
	q->next = b->queries;
	b->queries = q;
	b->pending++;

	if (!type_supported(type))
		complete(q, MW_DNS_PERMFAIL, "unsupported type");
	else if (check_name(name, q->key) == -1)
		complete(q, MW_DNS_PERMFAIL, "bad name");
	else if (cache_get(b->d, q)) {
		mw_stats_inc(b->d->stats, MW_ST_DNS_CACHE_HITS);
		complete(q, q->ans.status, NULL);
	} else {
		int rc;

		pthread_mutex_lock(&b->d->rlock);
		rc = send_query(b->d, q, type);
		pthread_mutex_unlock(&b->d->rlock);
		if (rc == -1)
			complete(q, MW_DNS_TEMPFAIL, "resolver not initialised");
		else {
			mw_stats_inc(b->d->stats, MW_ST_DNS_CACHE_MISSES);
			mw_stats_inc(b->d->stats, MW_ST_DNS_QUERIES);
		}
	}
	return q;
}

const struct mw_dns_answer *
mw_dns_peek(struct mw_dns_query *q)
{
	return &q->ans;
}

/* Give up on every query past its hard cap. */
static void
expire(struct mw_dns_batch *b)
{
	struct mw_dns_query	*q;
	uint64_t		 now;

	if (b->pending == 0)
		return;
	now = now_ms();
	for (q = b->queries; q != NULL; q = q->next)
		if (!q->done && q->deadline <= now)
			complete(q, MW_DNS_TEMPFAIL, "timeout");
}

/*
 * One round: wait at most max_ms for a reply to one of our queries,
 * take every reply that came (parse, cache, publish: on_reply), then
 * apply the hard caps.  The cap matters: c-ares 1.18 doubles the
 * per-try timeout on each round, so its own bound is about
 * timeout * (2^tries - 1).
 */
static void
drive(struct mw_dns_batch *b, int max_ms)
{
	struct mw_dns_query	*list, *q;
	struct timespec		 ts;

	pthread_mutex_lock(&b->d->rlock);
	if (b->arrived == NULL && max_ms > 0) {
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += max_ms / 1000;
		ts.tv_nsec += (long)(max_ms % 1000) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		(void)pthread_cond_timedwait(&b->cv, &b->d->rlock, &ts);
	}
	list = b->arrived;
	b->arrived = NULL;
	pthread_mutex_unlock(&b->d->rlock);
	while ((q = list) != NULL) {
		list = q->anext;
		q->anext = NULL;
		on_reply(q, q->rstatus, 0, q->raw, q->rlen);
		free(q->raw);
		q->raw = NULL;
		q->rlen = 0;
	}
	expire(b);
}

static int
ms_until(uint64_t deadline)
{
	uint64_t now = now_ms();

	if (deadline <= now)
		return 0;
	if (deadline - now > INT_MAX)
		return INT_MAX;
	return (int)(deadline - now);
}

const struct mw_dns_answer *
mw_dns_wait(struct mw_dns_batch *b, struct mw_dns_query *q)
{
	while (!q->done)
		drive(b, ms_until(q->deadline));
	return &q->ans;
}

void
mw_dns_wait_all(struct mw_dns_batch *b)
{
	struct mw_dns_query	*q;
	uint64_t		 first;

	while (b->pending > 0) {
		first = UINT64_MAX;
		for (q = b->queries; q != NULL; q = q->next)
			if (!q->done && q->deadline < first)
				first = q->deadline;
		drive(b, ms_until(first));
	}
}

void
mw_dns_poll(struct mw_dns_batch *b)
{
	if (b->pending > 0)
		drive(b, 0);
}

const struct mw_dns_answer *
mw_dns_lookup(struct mw_dns_batch *b, const char *name, int type)
{
	return mw_dns_wait(b, mw_dns_submit(b, name, type));
}

/* ---- names ------------------------------------------------------------ */

int
mw_dns_reverse(const char *ip, const char *suffix, char *out, size_t outlen)
{
	static const char	 hex[] = "0123456789abcdef";
	unsigned char		 a[16];
	size_t			 o = 0;
	int			 i, n;

	if (ip == NULL || out == NULL || outlen == 0)
		return -1;
	if (inet_pton(AF_INET, ip, a) == 1) {
		if (suffix == NULL)
			suffix = "in-addr.arpa";
		n = snprintf(out, outlen, "%u.%u.%u.%u%s%s", a[3], a[2], a[1],
		    a[0], *suffix ? "." : "", suffix);
		return n < 0 || (size_t)n >= outlen ? -1 : 0;
	}
	if (inet_pton(AF_INET6, ip, a) != 1)
		return -1;
	if (suffix == NULL)
		suffix = "ip6.arpa";
	/* 32 nibbles, each with its dot: 64 characters. */
	if (outlen < 64 + 1)
		return -1;
	for (i = 15; i >= 0; i--) {
		out[o++] = hex[a[i] & 0x0f];
		out[o++] = '.';
		out[o++] = hex[a[i] >> 4];
		out[o++] = '.';
	}
	if (*suffix == '\0')
		o--;		/* no trailing dot */
	n = snprintf(out + o, outlen - o, "%s", suffix);
	return n < 0 || (size_t)n >= outlen - o ? -1 : 0;
}
