/*
 * stub_dns -- the mw_dns API (lib/mw_dns.h) answered from memory, for the
 * fuzz harness: linked instead of lib/mw_dns.c, so that a fuzz input can
 * be a whole DNS world and no packet is sent.
 *
 * The harness sets the zone with stub_dns_set(text); each line is
 *	T KEY TEXT	a TXT record TEXT (any bytes but newline)
 *	A KEY		an address: the client's own (so a/mx/ptr match)
 *	B KEY		an address that is not the client's
 *	M KEY TARGET	an MX record
 *	P TARGET	a PTR record (of any reverse name)
 *	E KEY		a temporary error (timeout)
 *	N KEY		the name exists, no record of the asked type
 * KEY is matched against the first label of the name asked for,
 * case-insensitively; "*" matches every name.  A name no line matches
 * is NXDOMAIN.
 */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mw_dns.h"
#include "stub_dns.h"

struct mw_dns {
	int	unused;
};

struct mw_dns_query {
	struct mw_dns_answer	 ans;
	char			*name;
	struct mw_dns_query	*next;
};

struct mw_dns_batch {
	struct mw_dns_query	*queries;
};

static const char *zone = "";
static char client_ip[64] = "192.0.2.1";

void
stub_dns_set(const char *text, const char *ip)
{
	zone = text;
	snprintf(client_ip, sizeof(client_ip), "%s", ip);
}

int
mw_dns_new(struct mw_dns **dp, const char *nameservers, int timeout_ms,
    int tries, size_t cache_entries, char *err, size_t errlen)
{
	(void)nameservers;
	(void)timeout_ms;
	(void)tries;
	(void)cache_entries;
	(void)err;
	(void)errlen;
	*dp = calloc(1, sizeof(**dp));
	return *dp == NULL ? -1 : 0;
}

void
mw_dns_free(struct mw_dns *d)
{
	free(d);
}

void
mw_dns_cache_flush(struct mw_dns *d)
{
	(void)d;
}

void
mw_dns_set_stats(struct mw_dns *d, struct mw_stats *st)
{
	(void)d;
	(void)st;
}

struct mw_dns_batch *
mw_dns_batch_new(struct mw_dns *d)
{
	(void)d;
	return calloc(1, sizeof(struct mw_dns_batch));
}

void
mw_dns_batch_free(struct mw_dns_batch *b)
{
	struct mw_dns_query *q, *next;
	int i;

	if (b == NULL)
		return;
	for (q = b->queries; q != NULL; q = next) {
		next = q->next;
		for (i = 0; i < q->ans.nrr; i++)
			free(q->ans.rr[i].text);
		free(q->ans.rr);
		free(q->name);
		free(q);
	}
	free(b);
}

static void
add(struct mw_dns_query *q, int type, const char *s, size_t n, int pref)
{
	struct mw_dns_rr *nv;

	nv = realloc(q->ans.rr, (size_t)(q->ans.nrr + 1) * sizeof(*nv));
	if (nv == NULL)
		return;
	q->ans.rr = nv;
	nv[q->ans.nrr].type = type;
	nv[q->ans.nrr].ttl = 60;
	nv[q->ans.nrr].pref = pref;
	nv[q->ans.nrr].text = strndup(s, n);
	nv[q->ans.nrr].len = n;
	if (nv[q->ans.nrr].text != NULL)
		q->ans.nrr++;
}

/* Does the line's KEY (at k, klen bytes) match the name's first label? */
static int
key_match(const char *k, size_t klen, const char *name)
{
	size_t n = strcspn(name, ".");

	if (klen == 1 && k[0] == '*')
		return 1;
	return n == klen && strncasecmp(k, name, n) == 0;
}

static void
answer(struct mw_dns_query *q, const char *name, int type)
{
	const char *line = zone, *end, *k, *rest;
	size_t klen;
	int seen = 0;

	q->ans.status = MW_DNS_NXDOMAIN;
	for (; *line != '\0'; line = *end ? end + 1 : end) {
		end = strchr(line, '\n');
		if (end == NULL)
			end = line + strlen(line);
		if (end - line < 3 || line[1] != ' ')
			continue;
		k = line + 2;
		klen = strcspn(k, " \n");
		rest = k + klen < end ? k + klen + 1 : end;
		if (line[0] == 'P') {
			if (type == MW_DNS_PTR) {
				add(q, type, k, (size_t)(end - k), 0);
				seen = 1;
			}
			continue;
		}
		if (!key_match(k, klen, name))
			continue;
		seen = 1;
		switch (line[0]) {
		case 'T':
			if (type == MW_DNS_TXT)
				add(q, type, rest, (size_t)(end - rest), 0);
			break;
		case 'A':
			if (type == MW_DNS_A && strchr(client_ip, ':') == NULL)
				add(q, type, client_ip, strlen(client_ip), 0);
			if (type == MW_DNS_AAAA &&
			    strchr(client_ip, ':') != NULL)
				add(q, type, client_ip, strlen(client_ip), 0);
			break;
		case 'B':
			if (type == MW_DNS_A)
				add(q, type, "192.0.2.99", 10, 0);
			if (type == MW_DNS_AAAA)
				add(q, type, "2001:db8::99", 12, 0);
			break;
		case 'M':
			if (type == MW_DNS_MX)
				add(q, type, rest, (size_t)(end - rest), 10);
			break;
		case 'E':
			q->ans.status = MW_DNS_TEMPFAIL;
			q->ans.error = "timeout";
			return;
		default:
			break;
		}
	}
	if (q->ans.nrr > 0)
		q->ans.status = MW_DNS_OK;
	else if (seen)
		q->ans.status = MW_DNS_NODATA;
}

struct mw_dns_query *
mw_dns_submit(struct mw_dns_batch *b, const char *name, int type)
{
	struct mw_dns_query *q;
	static struct mw_dns_query oom = {
		.ans = { .status = MW_DNS_TEMPFAIL, .error = "out of memory" }
	};

	if ((q = calloc(1, sizeof(*q))) == NULL ||
	    (q->name = strdup(name)) == NULL) {
		free(q);
		return &oom;
	}
	q->ans.name = q->name;
	q->ans.type = type;
	q->next = b->queries;
	b->queries = q;
	/* what mw_dns refuses to ask */
	if (name[0] == '\0' || strlen(name) > 254 ||
	    strpbrk(name, " \\") != NULL) {
		q->ans.status = MW_DNS_PERMFAIL;
		q->ans.error = "bad name";
		return q;
	}
	answer(q, name, type);
	return q;
}

const struct mw_dns_answer *
mw_dns_peek(struct mw_dns_query *q)
{
	return &q->ans;
}

const struct mw_dns_answer *
mw_dns_wait(struct mw_dns_batch *b, struct mw_dns_query *q)
{
	(void)b;
	return &q->ans;
}

void
mw_dns_wait_all(struct mw_dns_batch *b)
{
	(void)b;
}

void
mw_dns_poll(struct mw_dns_batch *b)
{
	(void)b;
}

const struct mw_dns_answer *
mw_dns_lookup(struct mw_dns_batch *b, const char *name, int type)
{
	return mw_dns_wait(b, mw_dns_submit(b, name, type));
}

int
mw_dns_reverse(const char *ip, const char *suffix, char *out, size_t outlen)
{
	(void)ip;
	snprintf(out, outlen, "x.%s", suffix);
	return 0;
}
