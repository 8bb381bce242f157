/*
 * mw_dns -- the one DNS resolver layer of mailwarden, over c-ares.
 *
 * Every check (iprev, HELO, DNSBL, and the SPF/DKIM/DMARC library glue)
 * asks DNS questions through this module only, so that [dns] nameservers,
 * timeouts and the cache apply everywhere and tests can point us at a
 * DNS server on loopback.
 *
 * Model: one process-wide struct mw_dns (settings, a bounded TTL cache
 * shared by all threads, mutex-protected, and a resolver thread that
 * does the I/O of every query on c-ares channels shared by all
 * connections), and one struct mw_dns_batch per SMTP connection, used
 * only by the thread that owns the connection (libmilter runs one thread
 * per connection): its queries, and the replies the resolver thread
 * keeps for it until that thread polls or waits.
 *
 * Queries are submitted without waiting (mw_dns_submit) so that all
 * lookups a phase needs run in parallel; mw_dns_wait() drives the channel
 * until one given query is answered, mw_dns_wait_all() until none is
 * outstanding.  Completed answers stay owned by the batch until it is
 * freed.
 *
 *	struct mw_dns *d;
 *	mw_dns_new(&d, "127.0.0.1:5353", 2000, 2, 4096, err, sizeof(err));
 *	struct mw_dns_batch *b = mw_dns_batch_new(d);
 *	struct mw_dns_query *q1 = mw_dns_submit(b, "1.2.0.192.in-addr.arpa", MW_DNS_PTR);
 *	struct mw_dns_query *q2 = mw_dns_submit(b, "1.2.0.192.zen.example", MW_DNS_A);
 *	const struct mw_dns_answer *a = mw_dns_wait(b, q1);
 *	...
 *	mw_dns_batch_free(b);
 *	mw_dns_free(d);
 */
#ifndef MW_DNS_H
#define MW_DNS_H

#include <stddef.h>

/* Record types we ask for (values are the DNS wire type numbers). */
enum mw_dns_type {
	MW_DNS_A = 1,
	MW_DNS_CNAME = 5,
	MW_DNS_PTR = 12,
	MW_DNS_MX = 15,
	MW_DNS_TXT = 16,
	MW_DNS_AAAA = 28,
	MW_DNS_SPF = 99
};

/*
 * Outcome of one query.  The difference between "does not exist" and
 * "could not find out" matters for every check: a temporary error must
 * never be read as "not listed" or "no PTR".
 */
/*
 * One classification of every DNS outcome, for every check (RFC 8601
 * section 2.7: temperror is "a temporary (generally DNS) error",
 * permerror "a permanent error ... in the record"):
 *
 *   OK        records of the asked type (a CNAME chain followed)
 *   NXDOMAIN  the name does not exist                -> "no record"
 *   NODATA    the name exists, no record of the type -> "no record"
 *   TEMPFAIL  timeout, SERVFAIL, REFUSED, NOTIMP, FORMERR, a malformed
 *             or truncated reply, a CNAME loop (resolvers answer it with
 *             SERVFAIL), network error, out of memory: the answer may be
 *             different later                        -> temperror
 *   PERMFAIL  the name itself cannot be asked (empty label, label over
 *             63 or name over 253 bytes), or a well-formed reply whose
 *             record data its type does not allow (a PTR target that is
 *             no host name)                          -> permerror
 *
 * What a record says (syntax, a NUL in it, a duplicated tag) is the
 * check's business, never the DNS layer's: the DNS layer hands over the
 * record bytes exactly (TXT may hold NULs: use len).  error is a short
 * reason for TEMPFAIL/PERMFAIL for logs and notes.
 */
enum mw_dns_status {
	MW_DNS_PENDING = 0,	/* still outstanding */
	MW_DNS_OK,		/* at least one record of the asked type */
	MW_DNS_NXDOMAIN,	/* the name does not exist */
	MW_DNS_NODATA,		/* the name exists, no record of this type */
	MW_DNS_TEMPFAIL,	/* timeout, SERVFAIL, malformed reply, loop */
	MW_DNS_PERMFAIL		/* a name that cannot be asked, bad record data */
};

struct mw_dns_rr {
	int		 type;	/* enum mw_dns_type */
	unsigned int	 ttl;
	int		 pref;	/* MX preference, else 0 */
	/*
	 * A/AAAA: the address in presentation form ("192.0.2.1", "2001:db8::1");
	 * PTR/CNAME/MX: the target name without trailing dot;
	 * TXT/SPF: the character-strings of one record concatenated.
	 */
	char		*text;
	size_t		 len;	/* strlen(text), or TXT length (may hold NULs) */
};

struct mw_dns_answer {
	enum mw_dns_status	 status;
	const char		*name;	/* the name asked for */
	int			 type;
	int			 nrr;
	struct mw_dns_rr	*rr;
	unsigned int		 ttl;	/* min TTL (negative TTL for NX/NODATA) */
	int			 from_cache;	/* 1 if served by the cache */
	const char		*error;	/* short reason for TEMPFAIL/PERMFAIL */
};

struct mw_dns;
struct mw_dns_batch;
struct mw_dns_query;

/*
 * nameservers: NULL or "" = /etc/resolv.conf; else a comma-separated list
 * of ip[:port], IPv6 as [addr]:port.  timeout_ms: per try; tries >= 1;
 * cache_entries: 0 disables the cache.  Returns 0, or -1 with err set.
 */
int	mw_dns_new(struct mw_dns **dp, const char *nameservers, int timeout_ms,
	    int tries, size_t cache_entries, char *err, size_t errlen);
void	mw_dns_free(struct mw_dns *d);
/* Count queries, cache hits and errors into st (mw_stats.h), or NULL. */
struct mw_stats;
void	mw_dns_set_stats(struct mw_dns *d, struct mw_stats *st);
/* Drop every cached answer (tests, and SIGHUP). */
void	mw_dns_cache_flush(struct mw_dns *d);

struct mw_dns_batch	*mw_dns_batch_new(struct mw_dns *d);
void			 mw_dns_batch_free(struct mw_dns_batch *b);

/*
 * Send a query now (or take it from the cache) and return at once.
 * Never returns NULL: on an invalid name the query completes with
 * MW_DNS_PERMFAIL.  The handle is valid until the batch is freed.
 */
struct mw_dns_query	*mw_dns_submit(struct mw_dns_batch *b, const char *name,
			    int type);
/* The answer so far (status MW_DNS_PENDING if not complete); no I/O. */
const struct mw_dns_answer *mw_dns_peek(struct mw_dns_query *q);
/* Drive the batch until q is complete (bounded by timeout * tries). */
const struct mw_dns_answer *mw_dns_wait(struct mw_dns_batch *b,
			    struct mw_dns_query *q);
/* Drive the batch until no query is outstanding. */
void			 mw_dns_wait_all(struct mw_dns_batch *b);
/* Process whatever has arrived without blocking. */
void			 mw_dns_poll(struct mw_dns_batch *b);

/* Synchronous convenience: submit + wait. */
const struct mw_dns_answer *mw_dns_lookup(struct mw_dns_batch *b,
			    const char *name, int type);

/*
 * Name helpers: reverse names for an IP in presentation form.
 * mw_dns_reverse(ip, suffix, out, outlen): "192.0.2.1","in-addr.arpa" ->
 * "1.2.0.192.in-addr.arpa"; IPv6 nibble-reversed ("ip6.arpa" or a DNSBL
 * zone).  Returns 0, or -1 if ip does not parse or out is too small.
 */
int	mw_dns_reverse(const char *ip, const char *suffix, char *out,
	    size_t outlen);

/*
 * Text for logs, evidence and reports: "A", "MX", ...; and one answer as
 * "MX example.org: 10 mx.example.org" or "A x.example: NXDOMAIN (no such
 * name)", TXT quoted with unprintable bytes as \xHH, appended to b.
 */
struct mw_buf;
const char	*mw_dns_type_name(int type);
void		 mw_dns_answer_format(struct mw_buf *b,
		    const struct mw_dns_answer *a);

#endif /* MW_DNS_H */
