/*
 * mw_dnsbl -- DNS block and allow lists of client addresses (RFC 5782),
 * scored the way Postfix's postscreen does; section [dnsbl].
 *
 *	zone = zen.spamhaus.org 127.0.0.2-11 weight=3
 *	zone = zen.spamhaus.org 127.0.0.2=5,127.0.0.4-7=3,127.0.0.10-11=1
 *	zone = list.dnswl.org 127.0.0.0/16 weight=-5
 *	threshold = 3
 *
 * Every zone is asked at connect, all at once (the IPv4 address
 * reversed, an IPv6 one nibble-reversed, under the zone).  A zone line
 * lists the answers that count, each an address, a range (127.0.0.2-11
 * or 127.0.0.2-127.0.0.11) or a network (127.0.0.0/24), each with its
 * own weight (=N) or the line's weight= (default 1); with no list, any
 * answer in 127.0.0.2-127.255.254.255 counts.  Like a postscreen
 * filter, each listed item adds its weight once if any answer record
 * matches it.  The weights of all zones add up; when the sum reaches
 * `threshold`, `action` applies (default: reject at RCPT with 550 5.7.1
 * and the list's TXT reason).  Negative weights make a zone an
 * allowlist: a match lowers the sum and sets s->res.dnswl_listed (the
 * greylisting check reads it).
 *
 * Errors are never a listing: a DNS failure, an answer outside
 * 127.0.0.0/8 (a resolver that rewrites NXDOMAIN) or one of Spamhaus'
 * error codes 127.255.255.252/254/255 (typo in the zone, public
 * resolver, too many queries; we treat all of 127.255.255.0/24 so) is
 * logged as a warning and makes that zone a temperror.  If the zones in
 * error could have tipped the sum either way, temperror_action decides
 * (auto: tempfail when action is reject, else accept).
 *
 * The TXT record of a listing is asked only once its A answer says
 * "listed"; it goes into the reject text, the log and the header.
 *
 * Authentication-Results: allowlist hits use the "dnswl" method of RFC
 * 8904 (dnswl=pass dns.zone=... policy.ip=... policy.txt=...); there is
 * no registered method for blocklists, so those use the experimental
 * "x-dnsbl" with the same properties: x-dnsbl=fail for a listing,
 * x-dnsbl=temperror for a zone in error, a single x-dnsbl=pass (and
 * dnswl=none) when no zone of that kind listed the client.
 *
 * Domain lists (DBL, RFC 5782 section 2.2) can be added later as a
 * second key (say `domain_zone`) sharing struct dnsbl_zone, the code
 * matching and the scoring here: only the name asked (a domain instead
 * of a reversed address) and the SMTP phase that knows the domain
 * (HELO, MAIL FROM, PTR names) differ.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <ctype.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mw_authres.h"
#include "mw_buf.h"
#include "mw_log.h"
#include "mw_session_priv.h"
#include "mw_text.h"

#define DNSBL_MAX_ZONES		64
#define DNSBL_TXT_MAX		200	/* bytes of a TXT reason we keep */
#define DNSBL_ZONE_MAX		180	/* a zone leaves room for 64 bytes of IPv6 */
#define DNSBL_FAM_V4		1
#define DNSBL_FAM_V6		2

/* The default when a zone line lists no codes: RFC 5782 listings. */
#define DNSBL_ANY_LO		0x7f000002u	/* 127.0.0.2 */
#define DNSBL_ANY_HI		0x7ffffeffu	/* 127.255.254.255 */

struct dnsbl_term {
	uint32_t	lo, hi;		/* answer range, host order */
	double		weight;
	bool		has_weight;	/* else the zone's weight= */
};

struct dnsbl_zone {
	char			*name;
	int			 families;	/* DNSBL_FAM_V4 | DNSBL_FAM_V6 */
	double			 weight;	/* for terms without =N */
	struct dnsbl_term	*terms;
	size_t			 nterms;	/* 0: any RFC 5782 code */
};

struct dnsbl_cfg {
	struct dnsbl_zone	*zones;
	size_t			 nzones;
	double			 threshold;
	struct mw_action	 action;
	struct mw_action	 temperror_action;
	bool			 temperror_auto;
};

enum zstatus { Z_SKIP = 0, Z_PENDING, Z_CLEAR, Z_LISTED, Z_ERROR };

struct zstate {
	enum zstatus		 status;
	struct mw_dns_query	*a;
	struct mw_dns_query	*txt;
	double			 weight;	/* added to the sum when listed */
	char			 code[INET_ADDRSTRLEN];	/* first counted answer */
	char			 why[160];	/* error, for header and log */
	char			 reason[DNSBL_TXT_MAX + 1];	/* TXT */
};

enum outcome { OUT_UNDER = 0, OUT_OVER, OUT_UNSURE };

struct dnsbl_state {
	struct zstate		*z;		/* one per configured zone */
	size_t			 nz;
	int			 evaluated;
	double			 sum;
	enum outcome		 outcome;
	int			 top;		/* zone named in the reply text */
	int			 applied;	/* action given this transaction */
};

/* ---- configuration ---------------------------------------------------- */

static void
dnsbl_cfg_init(void *vc)
{
	struct dnsbl_cfg *c = vc;

	/*
	 * No zones by default: every list has its own terms of use (most
	 * refuse queries from public resolvers and big users without a
	 * key), so the admin chooses.  With the postscreen defaults one
	 * listing is enough, and a listed client is refused.
	 */
	c->threshold = 1;
	c->action.kind = MW_ACT_REJECT;
	c->temperror_auto = true;
}

static void
dnsbl_cfg_free(void *vc)
{
	struct dnsbl_cfg *c = vc;
	size_t i;

	for (i = 0; i < c->nzones; i++) {
		free(c->zones[i].name);
		free(c->zones[i].terms);
	}
	free(c->zones);
	c->zones = NULL;
	c->nzones = 0;
}

static int
parse_code(const char *s, uint32_t *out)
{
	struct in_addr a;

	if (inet_pton(AF_INET, s, &a) != 1)
		return -1;
	*out = ntohl(a.s_addr);
	return 0;
}

/* One "127.0.0.2", "127.0.0.2-11", "127.0.0.2-127.0.0.11", "127.0.0.0/24" [=W]. */
static int
parse_term(const char *tok, struct dnsbl_term *t, char *err, size_t errlen)
{
	char buf[64], *eq, *dash, *slash, *end;
	long last;

	memset(t, 0, sizeof(*t));
	if (strlen(tok) >= sizeof(buf))
		goto bad;
	strcpy(buf, tok);
	if ((eq = strchr(buf, '=')) != NULL) {
		*eq++ = '\0';
		if (mw_parse_double(eq, -1000, 1000, &t->weight, NULL, 0) ==
		    -1) {
			snprintf(err, errlen, "\"%s\": the weight must be a "
			    "number between -1000 and 1000", tok);
			return -1;
		}
		t->has_weight = true;
	}
	if ((slash = strchr(buf, '/')) != NULL) {
		struct mw_cidr net;
		uint32_t mask;

		if (mw_cidr_parse(&net, buf, err, errlen) == -1)
			return -1;
		if (net.family != AF_INET)
			goto bad;
		t->lo = (uint32_t)net.addr[0] << 24 | (uint32_t)net.addr[1] <<
		    16 | (uint32_t)net.addr[2] << 8 | net.addr[3];
		mask = net.prefix == 0 ? 0 : 0xffffffffu << (32 - net.prefix);
		t->hi = t->lo | ~mask;
	} else if ((dash = strchr(buf, '-')) != NULL) {
		*dash++ = '\0';
		if (parse_code(buf, &t->lo) == -1)
			goto bad;
		if (strchr(dash, '.') != NULL) {
			if (parse_code(dash, &t->hi) == -1)
				goto bad;
		} else {
			last = strtol(dash, &end, 10);
			if (*dash == '\0' || *end != '\0' || last < 0 ||
			    last > 255)
				goto bad;
			t->hi = (t->lo & 0xffffff00u) | (uint32_t)last;
		}
		if (t->hi < t->lo) {
			snprintf(err, errlen, "\"%s\": range ends before it "
			    "starts", tok);
			return -1;
		}
	} else if (parse_code(buf, &t->lo) == -1)
		goto bad;
	else
		t->hi = t->lo;
	if (t->lo >> 24 != 127 || t->hi >> 24 != 127) {
		snprintf(err, errlen, "\"%s\": DNSBL answers are in "
		    "127.0.0.0/8 (RFC 5782)", tok);
		return -1;
	}
	return 0;
bad:
	snprintf(err, errlen, "\"%s\" is not a return code: expected an "
	    "address (127.0.0.2), range (127.0.0.2-11) or network "
	    "(127.0.0.0/24), optionally =weight", tok);
	return -1;
}

static int
parse_zone(struct dnsbl_cfg *c, const char *v, char *err, size_t errlen)
{
	struct dnsbl_zone z;
	char **tok = NULL;
	size_t ntok = 0, i, n;
	struct dnsbl_zone *nv;
	int rc = -1;

	memset(&z, 0, sizeof(z));
	z.weight = 1;
	z.families = DNSBL_FAM_V4 | DNSBL_FAM_V6;
	if (c->nzones >= DNSBL_MAX_ZONES) {
		snprintf(err, errlen, "more than %d zones", DNSBL_MAX_ZONES);
		return -1;
	}
	if (mw_split_list(v, &tok, &ntok, err, errlen) == -1)
		goto out;
	if (ntok == 0) {
		snprintf(err, errlen, "expected a zone name, then return "
		    "codes, weight= and family=");
		goto out;
	}
	n = strlen(tok[0]);
	if (n > 1 && tok[0][n - 1] == '.')
		tok[0][n - 1] = '\0';
	if (strlen(tok[0]) > DNSBL_ZONE_MAX ||
	    !mw_domain_ok(tok[0], MW_DOMAIN_DOTTED | MW_DOMAIN_NO_FINAL_DOT)) {
		snprintf(err, errlen, "\"%s\" is not a DNS zone name", tok[0]);
		goto out;
	}
	if ((z.name = strdup(tok[0])) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	for (i = 0; z.name[i] != '\0'; i++)
		z.name[i] = (char)tolower((unsigned char)z.name[i]);
	for (i = 1; i < ntok; i++) {
		struct dnsbl_term t, *nt;

		if (strncmp(tok[i], "weight=", 7) == 0) {
			if (mw_parse_double(tok[i] + 7, -1000, 1000, &z.weight,
			    NULL, 0) == -1) {
				snprintf(err, errlen, "\"%s\": the weight must "
				    "be a number between -1000 and 1000",
				    tok[i]);
				goto out;
			}
			continue;
		}
		if (strncmp(tok[i], "family=", 7) == 0) {
			const char *f = tok[i] + 7;

			if (strcmp(f, "4") == 0 || strcmp(f, "ipv4") == 0)
				z.families = DNSBL_FAM_V4;
			else if (strcmp(f, "6") == 0 || strcmp(f, "ipv6") == 0)
				z.families = DNSBL_FAM_V6;
			else if (strcmp(f, "any") == 0)
				z.families = DNSBL_FAM_V4 | DNSBL_FAM_V6;
			else {
				snprintf(err, errlen, "\"%s\": expected "
				    "family=4, family=6 or family=any", tok[i]);
				goto out;
			}
			continue;
		}
		if (parse_term(tok[i], &t, err, errlen) == -1)
			goto out;
		if ((nt = realloc(z.terms, (z.nterms + 1) * sizeof(*nt))) ==
		    NULL) {
			snprintf(err, errlen, "out of memory");
			goto out;
		}
		z.terms = nt;
		z.terms[z.nterms++] = t;
	}
	/* weight= applies to every code without its own, wherever it stood. */
	for (i = 0; i < z.nterms; i++)
		if (!z.terms[i].has_weight)
			z.terms[i].weight = z.weight;
	if ((nv = realloc(c->zones, (c->nzones + 1) * sizeof(*nv))) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	c->zones = nv;
	c->zones[c->nzones++] = z;
	memset(&z, 0, sizeof(z));
	rc = 0;
out:
	free(z.name);
	free(z.terms);
	mw_free_list(tok, ntok);
	return rc;
}

static int
dnsbl_cfg_set(void *vc, const char *k, const char *v, char *err, size_t errlen)
{
	struct dnsbl_cfg *c = vc;

	if (strcmp(k, "zone") == 0)
		return parse_zone(c, v, err, errlen);
	if (strcmp(k, "threshold") == 0)
		return mw_parse_double(v, 0.001, 10000, &c->threshold, err,
		    errlen);
	if (strcmp(k, "action") == 0)
		return mw_action_parse(&c->action, v, err, errlen);
	if (strcmp(k, "temperror_action") == 0) {
		if (strcmp(v, "auto") == 0) {
			c->temperror_auto = true;
			return 0;
		}
		c->temperror_auto = false;
		return mw_action_parse(&c->temperror_action, v, err, errlen);
	}
	return 1;
}

/* The most and the least a zone can add to the sum. */
static void
zone_bounds(const struct dnsbl_zone *z, double *maxpos, double *minneg)
{
	size_t i;

	*maxpos = *minneg = 0;
	if (z->nterms == 0) {
		if (z->weight > 0)
			*maxpos = z->weight;
		else
			*minneg = z->weight;
		return;
	}
	for (i = 0; i < z->nterms; i++) {
		if (z->terms[i].weight > 0)
			*maxpos += z->terms[i].weight;
		else
			*minneg += z->terms[i].weight;
	}
}

/* An allowlist: a match can only lower the sum. */
static int
zone_is_allow(const struct dnsbl_zone *z)
{
	double maxpos, minneg;

	zone_bounds(z, &maxpos, &minneg);
	return maxpos <= 0 && minneg < 0;
}

static struct mw_action
temperror_effective(const struct dnsbl_cfg *c)
{
	struct mw_action a = { MW_ACT_ACCEPT, 0 };

	if (!c->temperror_auto)
		return c->temperror_action;
	if (c->action.kind == MW_ACT_REJECT)
		a.kind = MW_ACT_TEMPFAIL;
	return a;
}

static void
print_code(FILE *fp, uint32_t a)
{
	fprintf(fp, "%u.%u.%u.%u", a >> 24, (a >> 16) & 0xff, (a >> 8) & 0xff,
	    a & 0xff);
}

static void
dnsbl_cfg_dump(const void *vc, void *vfp)
{
	const struct dnsbl_cfg *c = vc;
	struct mw_action t = temperror_effective(c);
	FILE *fp = vfp;
	char buf[32];
	size_t i, j;

	for (i = 0; i < c->nzones; i++) {
		const struct dnsbl_zone *z = &c->zones[i];

		fprintf(fp, "zone = %s", z->name);
		if (z->nterms == 0) {
			fprintf(fp, " ");
			print_code(fp, DNSBL_ANY_LO);
			fprintf(fp, "-");
			print_code(fp, DNSBL_ANY_HI);
			fprintf(fp, "=%g", z->weight);
		}
		for (j = 0; j < z->nterms; j++) {
			fprintf(fp, "%s", j == 0 ? " " : ",");
			print_code(fp, z->terms[j].lo);
			if (z->terms[j].hi != z->terms[j].lo) {
				fprintf(fp, "-");
				print_code(fp, z->terms[j].hi);
			}
			fprintf(fp, "=%g", z->terms[j].weight);
		}
		fprintf(fp, " family=%s%s\n", z->families == DNSBL_FAM_V4 ?
		    "4" : z->families == DNSBL_FAM_V6 ? "6" : "any",
		    zone_is_allow(z) ? " ; allowlist" : "");
	}
	fprintf(fp, "threshold = %g\naction = %s\n", c->threshold,
	    mw_action_name(&c->action, buf, sizeof(buf)));
	fprintf(fp, "temperror_action = %s%s%s\n", c->temperror_auto ?
	    "auto (" : "", mw_action_name(&t, buf, sizeof(buf)),
	    c->temperror_auto ? ")" : "");
}

/* ---- lookups ---------------------------------------------------------- */

static void
dnsbl_on_connect(struct mw_session *s, const void *vc, void *vst)
{
	const struct dnsbl_cfg *c = vc;
	struct dnsbl_state *st = vst;
	char name[320];
	size_t i, j;
	int fam;

	if (c->nzones == 0 || s->family == 0)
		return;
	if ((st->z = calloc(c->nzones, sizeof(*st->z))) == NULL) {
		mw_log(LOG_ERR, "dnsbl: out of memory");
		return;
	}
	st->nz = c->nzones;
	fam = s->family == AF_INET6 ? DNSBL_FAM_V6 : DNSBL_FAM_V4;
	for (i = 0; i < st->nz; i++) {
		if (!(c->zones[i].families & fam) ||
		    mw_dns_reverse(s->ip, c->zones[i].name, name,
		    sizeof(name)) == -1)
			continue;
		st->z[i].status = Z_PENDING;
		/* Two lines for one zone (different codes): one query. */
		for (j = 0; j < i; j++)
			if (st->z[j].status != Z_SKIP && strcmp(c->zones[j].name,
			    c->zones[i].name) == 0) {
				st->z[i].a = st->z[j].a;
				break;
			}
		if (st->z[i].a == NULL)
			st->z[i].a = mw_dns_submit(s->dns, name, MW_DNS_A);
	}
}

/* Spamhaus' error answers (https://www.spamhaus.org/faqs/dnsbl-usage/). */
static const char *
error_code_meaning(uint32_t a)
{
	switch (a & 0xff) {
	case 252:
		return "typing error in the DNSBL name";
	case 254:
		return "query through a public or open resolver, refused";
	case 255:
		return "excessive number of queries";
	default:
		return "an error code, not a listing";
	}
}

/* The A answer of zone i is in: listed, clear or error. */
static void
classify(struct mw_session *s, const struct dnsbl_zone *z, struct zstate *zs,
    const struct mw_dns_answer *a)
{
	uint32_t code[32];
	int i, n = 0;
	size_t t;

	switch (a->status) {
	case MW_DNS_OK:
		break;
	case MW_DNS_NXDOMAIN:
	case MW_DNS_NODATA:
		zs->status = Z_CLEAR;
		return;
	default:
		zs->status = Z_ERROR;
		snprintf(zs->why, sizeof(zs->why), "%s", a->error ? a->error :
		    "lookup failed");
		mw_log(LOG_NOTICE, "dnsbl: %s: lookup for [%s] failed: %s",
		    z->name, s->ip, zs->why);
		return;
	}
	for (i = 0; i < a->nrr && n < 32; i++) {
		if (parse_code(a->rr[i].text, &code[n]) == -1)
			continue;
		if (code[n] >> 8 == 0x7fffffu) {
			zs->status = Z_ERROR;
			snprintf(zs->code, sizeof(zs->code), "%s",
			    a->rr[i].text);
			snprintf(zs->why, sizeof(zs->why), "%s: %s",
			    a->rr[i].text, error_code_meaning(code[n]));
			mw_log(LOG_WARNING, "dnsbl: %s answered %s for [%s]: "
			    "%s; this is not a listing, and the list is not "
			    "working for us", z->name, a->rr[i].text, s->ip,
			    error_code_meaning(code[n]));
			return;
		}
		if (code[n] >> 24 != 127) {
			zs->status = Z_ERROR;
			snprintf(zs->why, sizeof(zs->why), "%s: not a DNSBL "
			    "answer", a->rr[i].text);
			mw_log(LOG_WARNING, "dnsbl: %s answered %s for [%s], "
			    "outside 127.0.0.0/8: not a listing (does the "
			    "resolver rewrite NXDOMAIN?)", z->name,
			    a->rr[i].text, s->ip);
			return;
		}
		n++;
	}
	zs->status = Z_CLEAR;
	zs->weight = 0;
	if (z->nterms == 0) {
		for (i = 0; i < n; i++)
			if (code[i] >= DNSBL_ANY_LO && code[i] <= DNSBL_ANY_HI) {
				zs->status = Z_LISTED;
				zs->weight = z->weight;
				snprintf(zs->code, sizeof(zs->code), "%u.%u.%u.%u",
				    code[i] >> 24, (code[i] >> 16) & 0xff,
				    (code[i] >> 8) & 0xff, code[i] & 0xff);
				break;
			}
		return;
	}
	/* Each listed item counts once, if any answer record matches it. */
	for (t = 0; t < z->nterms; t++)
		for (i = 0; i < n; i++)
			if (code[i] >= z->terms[t].lo &&
			    code[i] <= z->terms[t].hi) {
				if (zs->status != Z_LISTED)
					snprintf(zs->code, sizeof(zs->code),
					    "%u.%u.%u.%u", code[i] >> 24,
					    (code[i] >> 16) & 0xff,
					    (code[i] >> 8) & 0xff,
					    code[i] & 0xff);
				zs->status = Z_LISTED;
				zs->weight += z->terms[t].weight;
				break;
			}
}

/*
 * Take in the answers that have arrived (with block: all of them) and
 * ask for the TXT reason of each listing.
 */
static void
collect(struct mw_session *s, const struct dnsbl_cfg *c,
    struct dnsbl_state *st, int block)
{
	const struct mw_dns_answer *a;
	char name[320];
	size_t i, j;

	if (!block)
		mw_dns_poll(s->dns);
	for (i = 0; i < st->nz; i++) {
		struct zstate *zs = &st->z[i];

		if (zs->status != Z_PENDING)
			continue;
		a = block ? mw_dns_wait(s->dns, zs->a) : mw_dns_peek(zs->a);
		if (a->status == MW_DNS_PENDING)
			continue;
		classify(s, &c->zones[i], zs, a);
		if (zs->status != Z_LISTED)
			continue;
		for (j = 0; j < i; j++)
			if (st->z[j].a == zs->a && st->z[j].txt != NULL)
				zs->txt = st->z[j].txt;
		if (zs->txt == NULL && mw_dns_reverse(s->ip, c->zones[i].name,
		    name, sizeof(name)) == 0)
			zs->txt = mw_dns_submit(s->dns, name, MW_DNS_TXT);
	}
}

/* First TXT string, printable ASCII only, bounded. */
static void
take_reason(struct zstate *zs, const struct mw_dns_answer *a)
{
	size_t i, o = 0;

	if (a->status != MW_DNS_OK || a->nrr == 0)
		return;
	for (i = 0; i < a->rr[0].len && o < DNSBL_TXT_MAX; i++) {
		unsigned char ch = (unsigned char)a->rr[0].text[i];

		zs->reason[o++] = mw_printable_char(ch);
	}
	zs->reason[o] = '\0';
}

/*
 * Evidence for mailwarden-check, noted when the sum is made (the first
 * RCPT): each zone's answer and TXT, whether its weight counted, the sum.
 */
static void
explain(struct mw_session *s, const struct dnsbl_cfg *c,
    const struct dnsbl_state *st)
{
	const struct mw_dns_answer *a;
	size_t i, j;
	int shared, shared_txt;

	if (!s->explain)
		return;
	for (i = 0; i < st->nz; i++) {
		const struct zstate *zs = &st->z[i];
		const char *zn = c->zones[i].name;

		if (zs->status == Z_SKIP) {
			mw_session_note(s, "dnsbl", "%s: not asked (not a zone "
			    "for IPv%c addresses)", zn,
			    s->family == AF_INET6 ? '6' : '4');
			continue;
		}
		/* Lines for one zone share their answers: show them once. */
		for (shared = shared_txt = 0, j = 0; j < i; j++) {
			if (st->z[j].a == zs->a)
				shared = 1;
			if (zs->txt != NULL && st->z[j].txt == zs->txt)
				shared_txt = 1;
		}
		a = mw_dns_peek(zs->a);
		if (!shared)
			mw_session_note_dns(s, "dnsbl", a);
		switch (zs->status) {
		case Z_LISTED:
			if (!shared_txt && zs->txt != NULL)
				mw_session_note_dns(s, "dnsbl",
				    mw_dns_peek(zs->txt));
			mw_session_note(s, "dnsbl", "%s: listed (%s), weight "
			    "%+g counted", zn, zs->code, zs->weight);
			break;
		case Z_ERROR:
			mw_session_note(s, "dnsbl", "%s: error, not counted: "
			    "%s", zn, zs->why);
			break;
		default:
			if (a->status == MW_DNS_OK)
				mw_session_note(s, "dnsbl", "%s: no answer is "
				    "one of the zone's codes, not counted", zn);
			else
				mw_session_note(s, "dnsbl", "%s: not listed",
				    zn);
			break;
		}
	}
	mw_session_note(s, "dnsbl", "sum %g, threshold %g: %s", st->sum,
	    c->threshold, st->outcome == OUT_OVER ? "reached" :
	    st->outcome == OUT_UNSURE ? "unsure (zones in error could reach "
	    "it)" : "not reached");
}

static void
evaluate(struct mw_session *s, const struct dnsbl_cfg *c,
    struct dnsbl_state *st)
{
	struct mw_buf log = MW_BUF_INIT(4096);
	double maxpos = 0, minneg = 0, hi, lo;
	size_t i;

	collect(s, c, st, 1);
	st->sum = 0;
	st->top = -1;
	for (i = 0; i < st->nz; i++) {
		struct zstate *zs = &st->z[i];

		if (zs->status == Z_LISTED) {
			if (zs->txt != NULL)
				take_reason(zs, mw_dns_wait(s->dns, zs->txt));
			st->sum += zs->weight;
			if (zs->weight < 0)
				s->res.dnswl_listed = 1;
			if (zs->weight > 0 && (st->top < 0 ||
			    zs->weight > st->z[st->top].weight))
				st->top = (int)i;
			mw_buf_printf(&log, "%s%s=%s (%+g)%s%s%s", log.len ?
			    ", " : "", c->zones[i].name, zs->code, zs->weight,
			    zs->reason[0] ? " \"" : "", zs->reason,
			    zs->reason[0] ? "\"" : "");
		} else if (zs->status == Z_ERROR) {
			zone_bounds(&c->zones[i], &hi, &lo);
			maxpos += hi;
			minneg += lo;
		}
	}
	/* Could the zones in error have changed which side we are on? */
	if (st->sum + minneg >= c->threshold)
		st->outcome = OUT_OVER;
	else if (st->sum + maxpos >= c->threshold)
		st->outcome = OUT_UNSURE;
	else
		st->outcome = OUT_UNDER;
	if (log.len > 0)
		mw_log(LOG_INFO, "%s: dnsbl: client [%s] listed: %s; sum %g, "
		    "threshold %g%s", s->queue_id ? s->queue_id : "NOQUEUE",
		    s->ip, mw_buf_str(&log), st->sum, c->threshold,
		    st->outcome == OUT_OVER ? ", over" : "");
	mw_buf_free(&log);
	st->evaluated = 1;
	explain(s, c, st);
}

static void
dnsbl_on_helo(struct mw_session *s, const void *vc, void *vst)
{
	const struct dnsbl_cfg *c = vc;
	struct dnsbl_state *st = vst;

	if (st->nz > 0 && !st->evaluated)
		collect(s, c, st, 0);
}

static void
dnsbl_on_mail(struct mw_session *s, const void *vc, void *vst)
{
	dnsbl_on_helo(s, vc, vst);
}

/* The zone that errored with the most weight at stake, for the text. */
static int
worst_error(const struct dnsbl_cfg *c, const struct dnsbl_state *st)
{
	double best = -1, hi, lo;
	size_t i;
	int w = -1;

	for (i = 0; i < st->nz; i++) {
		if (st->z[i].status != Z_ERROR)
			continue;
		zone_bounds(&c->zones[i], &hi, &lo);
		if (hi - lo > best) {
			best = hi - lo;
			w = (int)i;
		}
	}
	return w;
}

static void
dnsbl_on_rcpt(struct mw_session *s, const void *vc, void *vst, const char *rcpt)
{
	const struct dnsbl_cfg *c = vc;
	struct dnsbl_state *st = vst;
	struct mw_action t;
	const char *zone;
	int w;

	(void)rcpt;
	if (st->nz == 0 || st->applied)
		return;
	if (!st->evaluated)
		evaluate(s, c, st);
	st->applied = 1;
	if (st->outcome == OUT_OVER) {
		zone = st->top >= 0 ? c->zones[st->top].name : "DNSBL";
		if (c->action.kind == MW_ACT_SCORE)
			mw_session_act(s, &c->action, 550, "5.7.1",
			    "dnsbl %s", zone);
		else if (st->top >= 0 && st->z[st->top].reason[0] != '\0')
			mw_session_act(s, &c->action, 550, "5.7.1", "Service "
			    "unavailable; Client host [%s] blocked using %s; "
			    "%s", s->ip, zone, st->z[st->top].reason);
		else
			mw_session_act(s, &c->action, 550, "5.7.1", "Service "
			    "unavailable; Client host [%s] blocked using %s",
			    s->ip, zone);
	} else if (st->outcome == OUT_UNSURE) {
		t = temperror_effective(c);
		w = worst_error(c, st);
		zone = w >= 0 ? c->zones[w].name : "DNSBL";
		if (t.kind == MW_ACT_SCORE)
			mw_session_act(s, &t, 451, "4.7.1", "dnsbl temperror");
		else
			mw_session_act(s, &t, 451, "4.7.1", "Service "
			    "unavailable; Client host [%s]: lookup in %s "
			    "failed (%s), try again later", s->ip, zone,
			    w >= 0 ? st->z[w].why : "error");
	}
}

static void
dnsbl_authres(struct mw_session *s, const void *vc, void *vst,
    struct mw_authres *ar)
{
	const struct dnsbl_cfg *c = vc;
	struct dnsbl_state *st = vst;
	int bl_asked = 0, bl_said = 0, wl_asked = 0, wl_said = 0, allow;
	size_t i;

	(void)s;
	if (st->nz == 0 || !st->evaluated)
		return;
	for (i = 0; i < st->nz; i++) {
		const struct zstate *zs = &st->z[i];
		const char *method;

		if (zs->status == Z_SKIP)
			continue;
		allow = zone_is_allow(&c->zones[i]);
		if (allow)
			wl_asked = 1;
		else
			bl_asked = 1;
		if (zs->status == Z_LISTED) {
			allow = zs->weight < 0;
			method = allow ? "dnswl" : "x-dnsbl";
			mw_authres_result(ar, method, allow ? "pass" : "fail");
			mw_authres_prop(ar, "dns", "zone", c->zones[i].name);
			mw_authres_prop(ar, "policy", "ip", zs->code);
			if (zs->reason[0] != '\0')
				mw_authres_prop(ar, "policy", "txt",
				    zs->reason);
			if (!allow)
				mw_authres_comment(ar, "weight %g", zs->weight);
		} else if (zs->status == Z_ERROR) {
			mw_authres_result(ar, allow ? "dnswl" : "x-dnsbl",
			    "temperror");
			mw_authres_prop(ar, "dns", "zone", c->zones[i].name);
			mw_authres_comment(ar, "%s", zs->why);
		} else
			continue;
		if (allow)
			wl_said = 1;
		else
			bl_said = 1;
	}
	if (bl_asked && !bl_said)
		mw_authres_result(ar, "x-dnsbl", "pass");
	if (wl_asked && !wl_said)
		mw_authres_result(ar, "dnswl", "none");
}

static void
dnsbl_on_reset(struct mw_session *s, const void *vc, void *vst)
{
	struct dnsbl_state *st = vst;

	(void)vc;
	(void)s;
	st->applied = 0;
}

static void
dnsbl_on_close(struct mw_session *s, const void *vc, void *vst)
{
	struct dnsbl_state *st = vst;

	(void)vc;
	(void)s;
	free(st->z);
	st->z = NULL;
	st->nz = 0;
}

const struct mw_module mw_module_dnsbl = {
	.name = "dnsbl",
	.inbound = 1,
	.cfg_size = sizeof(struct dnsbl_cfg),
	.cfg_init = dnsbl_cfg_init,
	.cfg_set = dnsbl_cfg_set,
	.cfg_dump = dnsbl_cfg_dump,
	.cfg_free = dnsbl_cfg_free,
	.state_size = sizeof(struct dnsbl_state),
	.on_connect = dnsbl_on_connect,
	.on_helo = dnsbl_on_helo,
	.on_mail = dnsbl_on_mail,
	.on_rcpt = dnsbl_on_rcpt,
	.authres = dnsbl_authres,
	.on_reset = dnsbl_on_reset,
	.on_close = dnsbl_on_close,
};
