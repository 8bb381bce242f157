/*
 * mw_arc -- ARC verification (RFC 8617), section [arc]; no sealing.
 *
 * A module of the session library (hooks at the end of this file, run by
 * mw_session.c).  It validates the Authenticated Received Chain of
 * inbound mail and publishes the result in s->res.arc* for DMARC
 * (mw_dmarc.c), which may then apply the local-policy override for a
 * trusted forwarder:
 *
 *	[arc]
 *	enabled = yes
 *	trusted_sealers = lists.example.org, forwarder.example
 *	max_sets = 50
 *	min_key_bits = 1024
 *
 * Chain validation (RFC 8617 5.2), at end of message:
 *  - no ARC header field at all: cv=none;
 *  - every set 1..N must have exactly one ARC-Authentication-Results,
 *    ARC-Message-Signature and ARC-Seal; an instance twice, a gap, an
 *    instance over max_sets (at most 50), a tag list that does not parse
 *    (a tag twice, bad syntax) or a missing or bad tag: cv=fail;
 *  - the newest ARC-Seal says cv=fail: fail; set 1 must say cv=none,
 *    every later one cv=pass;
 *  - the newest ARC-Message-Signature must verify (body hash and
 *    signature); the older ones are checked for header.oldest-pass (the
 *    oldest instance from which every newer AMS verifies; 0 if all do);
 *  - every ARC-Seal, newest first, must verify: cv=pass.
 * Signatures are DKIM signatures (RFC 6376) with i= instead of the AUID:
 * rsa-sha256 (keys of min_key_bits and more) or ed25519-sha256 (RFC
 * 8463); ARC-Seal always uses relaxed header canonicalization and signs
 * the sets 1..i in order AAR, AMS, AS.  Keys come through mw_dns (the
 * session's batch, asked at the end of the header so they resolve while
 * the body streams) and are parsed by mw_dkimkey.c; canonicalization is
 * mw_canon.c, and the body is hashed as it streams, one hash state per
 * AMS, never buffered.  Header fields are kept until the end of the
 * message (the MTA bounds them).
 *
 * Trusted sealers: when cv=pass and the newest ARC-Seal (the set the
 * hop that handed us the message added) has d= at or below a domain of
 * trusted_sealers, the newest ARC-Authentication-Results is read for
 * dmarc=pass, dkim=pass (header.d / header.i) and spf=pass
 * (smtp.mailfrom) and published for DMARC, which decides alignment.
 *
 * Authentication-Results (RFC 8617 10.2, RFC 8601 registry):
 *	arc=pass (i=2 sealers lists.example.org,example.net)
 *	    smtp.remote-ip=192.0.2.25 header.oldest-pass=0
 *	arc=fail (i=1: ARC-Message-Signature 1 does not verify) ...
 */
#include "config.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "mw_authres.h"
#include "mw_canon.h"
#include "mw_dkimkey.h"
#include "mw_log.h"
#include "mw_session_priv.h"
#include "mw_text.h"

#define ARC_MAX_SETS		50	/* RFC 8617 4.2.1 */
#define ARC_MAX_HEADERS		2000	/* fields kept for h= */
#define ARC_MAX_HEADER_BYTES	(1024 * 1024)

struct arc_cfg {
	char		**trusted;
	size_t		 n_trusted;
	long		 max_sets;
	long		 min_key_bits;
};

static void
arc_cfg_init(void *vc)
{
	struct arc_cfg *c = vc;

	c->max_sets = ARC_MAX_SETS;
	c->min_key_bits = 1024;
}

static int
arc_cfg_set(void *vc, const char *k, const char *v, char *err, size_t errlen)
{
	struct arc_cfg *c = vc;
	size_t i;

	if (strcmp(k, "trusted_sealers") == 0) {
		mw_free_list(c->trusted, c->n_trusted);
		c->trusted = NULL;
		c->n_trusted = 0;
		if (mw_split_list(v, &c->trusted, &c->n_trusted, err,
		    errlen) == -1)
			return -1;
		for (i = 0; i < c->n_trusted; i++) {
			char *d = c->trusted[i], *p;

			for (p = d; *p != '\0'; p++)
				*p = (char)tolower((unsigned char)*p);
			if (!mw_domain_ok(d, MW_DOMAIN_HOST |
			    MW_DOMAIN_NO_FINAL_DOT)) {
				snprintf(err, errlen, "not a domain name: "
				    "\"%.100s\"", d);
				return -1;
			}
		}
		return 0;
	}
	if (strcmp(k, "max_sets") == 0)
		return mw_parse_int(v, 1, ARC_MAX_SETS, &c->max_sets, err,
		    errlen);
	if (strcmp(k, "min_key_bits") == 0)
		return mw_parse_int(v, 512, 16384, &c->min_key_bits, err,
		    errlen);
	return 1;
}

static void
arc_cfg_dump(const void *vc, void *vfp)
{
	const struct arc_cfg *c = vc;
	FILE *fp = vfp;
	size_t i;

	fprintf(fp, "trusted_sealers =");
	for (i = 0; i < c->n_trusted; i++)
		fprintf(fp, "%s%s", i ? ", " : " ", c->trusted[i]);
	fprintf(fp, "\nmax_sets = %ld\nmin_key_bits = %ld\n", c->max_sets,
	    c->min_key_bits);
}

static void
arc_cfg_free(void *vc)
{
	struct arc_cfg *c = vc;

	mw_free_list(c->trusted, c->n_trusted);
}

/* ------------------------------------------------------------------ */

struct hdr {
	char		*name;
	char		*value;
};

enum kind { K_AAR = 0, K_AMS, K_AS };

struct sig {
	struct mw_taglist	 tl;
	const char		*d, *s;
	int			 ed25519;
	unsigned char		 b[1024];
	long			 blen;
	unsigned char		 bh[64];
	long			 bhlen;
	enum mw_canon		 hc, bc;
	long long		 l;		/* -1 none */
	struct mw_dns_query	*q;
	struct mw_canon_body	*body;	/* AMS */
};

struct arcset {
	int		 have[3];
	size_t		 idx[3];	/* in hdrs */
	struct sig	 ams, as;
	const char	*cv;		/* AS cv= */
};

struct arc_state {
	struct hdr	*hdrs;
	size_t		 n_hdrs;
	size_t		 bytes;
	int		 overflow;
	int		 any_arc;

	int		 parsed;	/* at end of header */
	int		 n;		/* sets */
	struct arcset	*set;		/* [1..n] */
	enum mw_auth_result cv;
	char		 why[200];
	int		 oldest_pass;
	int		 done;
};

static void
set_free(struct arc_state *st)
{
	int i;

	if (st->set == NULL)
		return;
	for (i = 0; i <= st->n; i++) {
		mw_taglist_free(&st->set[i].ams.tl);
		mw_taglist_free(&st->set[i].as.tl);
		mw_canon_body_free(st->set[i].ams.body);
	}
	free(st->set);
	st->set = NULL;
}

static void
arc_on_reset(struct mw_session *s, const void *vc, void *vst)
{
	struct arc_state *st = vst;
	size_t i;

	(void)vc;
	for (i = 0; i < st->n_hdrs; i++) {
		free(st->hdrs[i].name);
		free(st->hdrs[i].value);
	}
	free(st->hdrs);
	set_free(st);
	memset(st, 0, sizeof(*st));
	s->res.arc_done = 0;
	s->res.arc = MW_AUTH_NONE;
	s->res.arc_sealer[0] = '\0';
	s->res.arc_trusted = 0;
	s->res.arc_aar_dmarc = 0;
	s->res.arc_aar_from[0] = '\0';
	s->res.n_arc_aar_dkim = 0;
	s->res.arc_aar_spf[0] = '\0';
}

static int
kind_of(const char *name)
{
	if (mw_header_name_is(name, "ARC-Authentication-Results"))
		return K_AAR;
	if (mw_header_name_is(name, "ARC-Message-Signature"))
		return K_AMS;
	if (mw_header_name_is(name, "ARC-Seal"))
		return K_AS;
	return -1;
}

static void
arc_on_header(struct mw_session *s, const void *vc, void *vst,
    const char *name, const char *value)
{
	struct arc_state *st = vst;
	struct hdr *nv;
	size_t len = strlen(name) + strlen(value);

	(void)s;
	(void)vc;
	if (kind_of(name) >= 0)
		st->any_arc = 1;
	if (st->overflow)
		return;
	if (st->n_hdrs >= ARC_MAX_HEADERS ||
	    st->bytes + len > ARC_MAX_HEADER_BYTES ||
	    (nv = realloc(st->hdrs, (st->n_hdrs + 1) * sizeof(*nv))) == NULL) {
		st->overflow = 1;
		return;
	}
	st->hdrs = nv;
	nv[st->n_hdrs].name = strdup(name);
	nv[st->n_hdrs].value = strdup(value);
	if (nv[st->n_hdrs].name == NULL || nv[st->n_hdrs].value == NULL) {
		free(nv[st->n_hdrs].name);
		free(nv[st->n_hdrs].value);
		st->overflow = 1;
		return;
	}
	st->n_hdrs++;
	st->bytes += len;
}

static int __attribute__((format(printf, 2, 3)))
fail(struct arc_state *st, const char *fmt, ...)
{
	va_list ap;

	if (st->cv != MW_AUTH_FAIL) {
		st->cv = MW_AUTH_FAIL;
		va_start(ap, fmt);
		vsnprintf(st->why, sizeof(st->why), fmt, ap);
		va_end(ap);
	}
	return -1;
}

/* An instance number: 1..max, digits only. */
static int
parse_instance(const char *v, long max)
{
	long n = 0;

	if (v == NULL || *v == '\0' || strlen(v) > 3)
		return -1;
	for (; *v != '\0'; v++) {
		if (!isdigit((unsigned char)*v))
			return -1;
		n = n * 10 + (*v - '0');
	}
	return n >= 1 && n <= max ? (int)n : -1;
}

/* "i=N;" at the start of an ARC-Authentication-Results value. */
static int
aar_instance(const char *v, long max)
{
	char num[8];
	size_t n = 0;

	while (*v == ' ' || *v == '\t' || *v == '\r' || *v == '\n')
		v++;
	if (v[0] != 'i' || v[1] != '=')
		return -1;
	v += 2;
	while (isdigit((unsigned char)*v) && n + 1 < sizeof(num))
		num[n++] = *v++;
	num[n] = '\0';
	while (*v == ' ' || *v == '\t' || *v == '\r' || *v == '\n')
		v++;
	if (*v != ';')
		return -1;
	return parse_instance(num, max);
}

static int
digits(const char *v)
{
	if (v == NULL || *v == '\0' || strlen(v) > 18)
		return 0;
	for (; *v != '\0'; v++)
		if (!isdigit((unsigned char)*v))
			return 0;
	return 1;
}

/* The tags both signatures share: a, b, d, s, t. */
static int
parse_sig(struct arc_state *st, struct sig *g, const char *what, int i)
{
	const char *a = mw_taglist_get(&g->tl, "a");
	const char *b = mw_taglist_get(&g->tl, "b");
	const char *t = mw_taglist_get(&g->tl, "t");

	g->d = mw_taglist_get(&g->tl, "d");
	g->s = mw_taglist_get(&g->tl, "s");
	if (a == NULL || (strcmp(a, "rsa-sha256") != 0 &&
	    strcmp(a, "ed25519-sha256") != 0))
		return fail(st, "%s %d: %s a=", what, i,
		    a == NULL ? "no" : "unsupported");
	g->ed25519 = strcmp(a, "ed25519-sha256") == 0;
	if (b == NULL || (g->blen = mw_base64_decode(b, g->b,
	    sizeof(g->b))) <= 0)
		return fail(st, "%s %d: %s b=", what, i,
		    b == NULL ? "no" : "bad");
	if (g->d == NULL || !mw_domain_ok(g->d, MW_DOMAIN_LDH |
	    MW_DOMAIN_NO_FINAL_DOT) || strchr(g->d, '.') == NULL)
		return fail(st, "%s %d: %s d=", what, i,
		    g->d == NULL ? "no" : "bad");
	if (g->s == NULL || !mw_domain_ok(g->s, MW_DOMAIN_LDH |
	    MW_DOMAIN_NO_FINAL_DOT))
		return fail(st, "%s %d: %s s=", what, i,
		    g->s == NULL ? "no" : "bad");
	if (t != NULL && !digits(t))
		return fail(st, "%s %d: bad t=", what, i);
	return 0;
}

/* Does the colon-separated h= list name the field `want`? */
static int
h_lists(const char *h, const char *want)
{
	size_t w = strlen(want);

	while (*h != '\0') {
		size_t n;

		while (isspace((unsigned char)*h))
			h++;
		n = strcspn(h, ":");
		while (n > 0 && isspace((unsigned char)h[n - 1]))
			n--;
		if (n == w && strncasecmp(h, want, w) == 0)
			return 1;
		h += strcspn(h, ":");
		if (*h == ':')
			h++;
	}
	return 0;
}

static int
parse_ams(struct arc_state *st, struct sig *g, int i)
{
	const char *bh = mw_taglist_get(&g->tl, "bh");
	const char *c = mw_taglist_get(&g->tl, "c");
	const char *h = mw_taglist_get(&g->tl, "h");
	const char *l = mw_taglist_get(&g->tl, "l");

	if (parse_sig(st, g, "ARC-Message-Signature", i) == -1)
		return -1;
	if (bh == NULL || (g->bhlen = mw_base64_decode(bh, g->bh,
	    sizeof(g->bh))) != 32)
		return fail(st, "ARC-Message-Signature %d: %s bh=", i,
		    bh == NULL ? "no" : "bad");
	g->hc = g->bc = MW_CANON_SIMPLE;	/* RFC 6376 3.5 c= default */
	if (c != NULL && mw_canon_parse(c, &g->hc, &g->bc) == -1)
		return fail(st, "ARC-Message-Signature %d: bad c=", i);
	if (h == NULL)
		return fail(st, "ARC-Message-Signature %d: no h=", i);
	if (h_lists(h, "ARC-Seal"))
		return fail(st, "ARC-Message-Signature %d: h= lists ARC-Seal",
		    i);
	g->l = -1;
	if (l != NULL) {
		if (!digits(l))
			return fail(st, "ARC-Message-Signature %d: bad l=", i);
		g->l = strtoll(l, NULL, 10);
	}
	return 0;
}

static int
parse_as(struct arc_state *st, struct arcset *a, int i)
{
	if (parse_sig(st, &a->as, "ARC-Seal", i) == -1)
		return -1;
	if (mw_taglist_get(&a->as.tl, "h") != NULL)
		return fail(st, "ARC-Seal %d: h= is not allowed", i);
	a->cv = mw_taglist_get(&a->as.tl, "cv");
	if (a->cv == NULL || (strcmp(a->cv, "none") != 0 &&
	    strcmp(a->cv, "pass") != 0 && strcmp(a->cv, "fail") != 0))
		return fail(st, "ARC-Seal %d: %s cv=", i,
		    a->cv == NULL ? "no" : "bad");
	return 0;
}

static struct mw_dns_query *
key_query(struct mw_session *s, const struct sig *g)
{
	char name[600];

	snprintf(name, sizeof(name), "%s._domainkey.%s", g->s, g->d);
	return mw_dns_submit(s->dns, name, MW_DNS_TXT);
}

/*
 * End of the header: find the sets, check their form, send the key
 * queries, start the body hashes.  Any fault of form is cv=fail at once.
 */
static void
parse_chain(struct mw_session *s, const struct arc_cfg *c,
    struct arc_state *st)
{
	char err[100];
	size_t k;
	int i, max = 0;

	/* Once per message; a second end of header starts afresh. */
	set_free(st);
	st->n = 0;
	st->why[0] = '\0';
	st->parsed = 1;
	st->cv = MW_AUTH_NONE;
	if (!st->any_arc)
		return;
	if (st->overflow) {
		(void)fail(st, "header too large to verify");
		return;
	}
	/* Instance numbers first, to size the sets. */
	for (k = 0; k < st->n_hdrs; k++) {
		int kind = kind_of(st->hdrs[k].name), n;
		struct mw_taglist tl;

		if (kind < 0)
			continue;
		if (kind == K_AAR)
			n = aar_instance(st->hdrs[k].value, c->max_sets);
		else {
			if (mw_taglist_parse(st->hdrs[k].value, &tl, err,
			    sizeof(err)) == -1) {
				(void)fail(st, "%s: %s", kind == K_AMS ?
				    "ARC-Message-Signature" : "ARC-Seal", err);
				return;
			}
			n = parse_instance(mw_taglist_get(&tl, "i"),
			    c->max_sets);
			mw_taglist_free(&tl);
		}
		if (n < 0) {
			(void)fail(st, "%s: bad or missing i= (at most %ld "
			    "sets)", kind == K_AAR ? "ARC-Authentication-"
			    "Results" : kind == K_AMS ? "ARC-Message-Signature"
			    : "ARC-Seal", c->max_sets);
			return;
		}
		if (n > max)
			max = n;
	}
	if ((st->set = calloc((size_t)max + 1, sizeof(*st->set))) == NULL) {
		(void)fail(st, "out of memory");
		return;
	}
	st->n = max;
	for (k = 0; k < st->n_hdrs; k++) {
		int kind = kind_of(st->hdrs[k].name), n;
		struct arcset *a;

		if (kind < 0)
			continue;
		if (kind == K_AAR)
			n = aar_instance(st->hdrs[k].value, c->max_sets);
		else {
			struct mw_taglist tl;

			(void)mw_taglist_parse(st->hdrs[k].value, &tl, err,
			    sizeof(err));
			n = parse_instance(mw_taglist_get(&tl, "i"),
			    c->max_sets);
			a = &st->set[n];
			if (!a->have[kind]) {
				if (kind == K_AMS)
					a->ams.tl = tl;
				else
					a->as.tl = tl;
			} else
				mw_taglist_free(&tl);
		}
		a = &st->set[n];
		if (a->have[kind]) {
			(void)fail(st, "two %s with i=%d", kind == K_AAR ?
			    "ARC-Authentication-Results" : kind == K_AMS ?
			    "ARC-Message-Signatures" : "ARC-Seals", n);
			return;
		}
		a->have[kind] = 1;
		a->idx[kind] = k;
	}
	for (i = 1; i <= st->n; i++) {
		struct arcset *a = &st->set[i];

		if (!a->have[K_AAR] || !a->have[K_AMS] || !a->have[K_AS]) {
			(void)fail(st, "set %d has no %s", i, !a->have[K_AAR] ?
			    "ARC-Authentication-Results" : !a->have[K_AMS] ?
			    "ARC-Message-Signature" : "ARC-Seal");
			return;
		}
		if (parse_as(st, a, i) == -1 || parse_ams(st, &a->ams, i) == -1)
			return;
	}
	if (strcmp(st->set[st->n].cv, "fail") == 0) {
		(void)fail(st, "ARC-Seal %d says cv=fail", st->n);
		return;
	}
	for (i = 1; i <= st->n; i++)
		if (strcmp(st->set[i].cv, i == 1 ? "none" : "pass") != 0) {
			(void)fail(st, "ARC-Seal %d: cv=%s, want %s", i,
			    st->set[i].cv, i == 1 ? "none" : "pass");
			return;
		}
	for (i = 1; i <= st->n; i++) {
		struct arcset *a = &st->set[i];

		a->ams.body = mw_canon_body_new(a->ams.bc, "sha256",
		    a->ams.l);
		if (a->ams.body == NULL) {
			(void)fail(st, "out of memory");
			return;
		}
		a->ams.q = key_query(s, &a->ams);
		a->as.q = key_query(s, &a->as);
	}
	st->cv = MW_AUTH_PASS;	/* so far: the signatures are checked last */
}

static void
arc_on_eoh(struct mw_session *s, const void *vc, void *vst)
{
	parse_chain(s, vc, vst);
}

static void
arc_on_body(struct mw_session *s, const void *vc, void *vst,
    const unsigned char *buf, size_t len)
{
	struct arc_state *st = vst;
	int i;

	(void)s;
	(void)vc;
	if (st->cv != MW_AUTH_PASS || st->set == NULL)
		return;
	for (i = 1; i <= st->n; i++)
		mw_canon_body_update(st->set[i].ams.body, buf, len);
}

/* The field value with the b= tag's value taken out (RFC 6376 3.7). */
static char *
strip_b(const char *v)
{
	char *out = malloc(strlen(v) + 1), *o = out;
	const char *p = v;

	if (out == NULL)
		return NULL;
	while (*p != '\0') {
		const char *q = p, *semi;

		while (*q == ' ' || *q == '\t' || *q == '\r' || *q == '\n')
			q++;
		semi = strchr(q, ';');
		if (semi == NULL)
			semi = q + strlen(q);
		if (*q == 'b') {
			const char *e = q + 1;

			while (*e == ' ' || *e == '\t' || *e == '\r' ||
			    *e == '\n')
				e++;
			if (*e == '=') {
				memcpy(o, p, (size_t)(e + 1 - p));
				o += e + 1 - p;
				p = semi;
				if (*p == ';')
					*o++ = *p++;
				continue;
			}
		}
		memcpy(o, p, (size_t)(semi - p));
		o += semi - p;
		p = semi;
		if (*p == ';')
			*o++ = *p++;
	}
	*o = '\0';
	return out;
}

/* Verify sig over data with the key the signature names. */
static int
verify(struct mw_session *s, const struct arc_cfg *c, struct arc_state *st,
    const struct sig *g, const struct mw_buf *data, const char *what, int i)
{
	const struct mw_dns_answer *a = mw_dns_wait(s->dns, g->q);
	struct mw_dkimkey k;
	EVP_MD_CTX *ctx;
	unsigned char h[32];
	unsigned int hl = 0;
	char why[100];
	int ok = 0;

	mw_session_note_dns(s, "arc", a);
	if (mw_dkimkey_from_answer(a, "sha256", &k, why, sizeof(why)) !=
	    MW_AUTH_NONE) {
		snprintf(st->why, sizeof(st->why), "%s %d: %s", what, i, why);
		return -1;
	}
	if ((k.type == MW_DKIMKEY_ED25519) != g->ed25519) {
		snprintf(st->why, sizeof(st->why), "%s %d: the key is not of "
		    "the type a= says", what, i);
		mw_dkimkey_free(&k);
		return -1;
	}
	if (k.type == MW_DKIMKEY_RSA && k.bits < (unsigned)c->min_key_bits) {
		snprintf(st->why, sizeof(st->why), "%s %d: %u-bit key is too "
		    "short", what, i, k.bits);
		mw_dkimkey_free(&k);
		return -1;
	}
	if ((ctx = EVP_MD_CTX_new()) != NULL) {
		if (g->ed25519)
			ok = EVP_Digest(mw_buf_str(data), data->len, h, &hl,
			    EVP_sha256(), NULL) == 1 &&
			    EVP_DigestVerifyInit(ctx, NULL, NULL, NULL,
			    k.pkey) == 1 && EVP_DigestVerify(ctx, g->b,
			    (size_t)g->blen, h, hl) == 1;
		else
			ok = EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(),
			    NULL, k.pkey) == 1 && EVP_DigestVerify(ctx, g->b,
			    (size_t)g->blen, (const unsigned char *)
			    mw_buf_str(data), data->len) == 1;
		EVP_MD_CTX_free(ctx);
	}
	mw_dkimkey_free(&k);
	if (!ok)
		snprintf(st->why, sizeof(st->why), "%s %d: signature does "
		    "not verify", what, i);
	return ok ? 0 : -1;
}

/* Check ARC-Message-Signature i: body hash, then the signature. */
static int
check_ams(struct mw_session *s, const struct arc_cfg *c,
    struct arc_state *st, int i)
{
	struct sig *g = &st->set[i].ams;
	struct mw_buf data = MW_BUF_INIT(ARC_MAX_HEADER_BYTES * 2);
	unsigned char md[64];
	unsigned long long total = 0;
	const char *h = mw_taglist_get(&g->tl, "h");
	const struct hdr *self = &st->hdrs[st->set[i].idx[K_AMS]];
	unsigned char *used;
	char *stripped;
	int n, rc;

	n = mw_canon_body_final(g->body, md, &total);
	mw_canon_body_free(g->body);
	g->body = NULL;
	if (n != 32 || (g->l >= 0 && (unsigned long long)g->l > total) ||
	    memcmp(md, g->bh, 32) != 0) {
		snprintf(st->why, sizeof(st->why), "ARC-Message-Signature %d: "
		    "body hash does not verify", i);
		return -1;
	}
	if ((used = calloc(st->n_hdrs + 1, 1)) == NULL)
		return -1;
	while (*h != '\0') {
		char name[256];
		size_t len;
		size_t k;

		while (isspace((unsigned char)*h))
			h++;
		len = strcspn(h, ":");
		snprintf(name, sizeof(name), "%.*s", (int)len, h);
		h += len;
		if (*h == ':')
			h++;
		while (len > 0 && isspace((unsigned char)name[len - 1]))
			name[--len] = '\0';
		if (len == 0)
			continue;
		for (k = st->n_hdrs; k-- > 0; )
			if (!used[k] && mw_header_name_is(st->hdrs[k].name,
			    name)) {
				used[k] = 1;
				mw_canon_header(&data, g->hc, st->hdrs[k].name,
				    st->hdrs[k].value, 1);
				break;
			}
	}
	free(used);
	if ((stripped = strip_b(self->value)) == NULL) {
		mw_buf_free(&data);
		return -1;
	}
	mw_canon_header(&data, g->hc, self->name, stripped, 0);
	free(stripped);
	rc = data.truncated ? -1 : verify(s, c, st, g, &data,
	    "ARC-Message-Signature", i);
	mw_buf_free(&data);
	return rc;
}

/* Check ARC-Seal i: sets 1..i, AAR, AMS, AS each, relaxed. */
static int
check_as(struct mw_session *s, const struct arc_cfg *c,
    struct arc_state *st, int i)
{
	struct mw_buf data = MW_BUF_INIT(ARC_MAX_HEADER_BYTES * 2);
	int j, kind, rc;

	for (j = 1; j <= i; j++)
		for (kind = K_AAR; kind <= K_AS; kind++) {
			const struct hdr *f = &st->hdrs[st->set[j].idx[kind]];

			if (j == i && kind == K_AS) {
				char *stripped = strip_b(f->value);

				if (stripped == NULL) {
					mw_buf_free(&data);
					return -1;
				}
				mw_canon_header(&data, MW_CANON_RELAXED,
				    f->name, stripped, 0);
				free(stripped);
			} else
				mw_canon_header(&data, MW_CANON_RELAXED,
				    f->name, f->value, 1);
		}
	rc = data.truncated ? -1 : verify(s, c, st, &st->set[i].as, &data,
	    "ARC-Seal", i);
	mw_buf_free(&data);
	return rc;
}

static int
is_trusted(const struct arc_cfg *c, const char *d)
{
	size_t i, n = strlen(d), m;

	for (i = 0; i < c->n_trusted; i++) {
		m = strlen(c->trusted[i]);
		if (n == m && strcasecmp(d, c->trusted[i]) == 0)
			return 1;
		if (n > m && d[n - m - 1] == '.' &&
		    strcasecmp(d + n - m, c->trusted[i]) == 0)
			return 1;
	}
	return 0;
}

/*
 * The ARC-Authentication-Results of a trusted sealer: comments and
 * quoted strings removed, then each resinfo "method=result props".
 * Only passes are kept: dmarc (and its header.from), dkim (header.d, or
 * the domain of header.i), spf (the domain of smtp.mailfrom).
 */
static void
read_aar(struct mw_session *s, const char *v)
{
	struct mw_shared_results *r = &s->res;
	char *t = malloc(strlen(v) + 1), *o, *save = NULL, *ri;
	int depth = 0, first = 1;

	if (t == NULL)
		return;
	for (o = t; *v != '\0'; v++) {
		if (*v == '\\' && depth > 0 && v[1] != '\0') {
			v++;
			continue;
		}
		if (*v == '(') {
			depth++;
			continue;
		}
		if (*v == ')' && depth > 0) {
			depth--;
			*o++ = ' ';
			continue;
		}
		if (depth > 0)
			continue;
		*o++ = *v == '"' ? ' ' : *v;
	}
	*o = '\0';
	/* i=N; authserv-id; resinfo; resinfo ... */
	for (ri = strtok_r(t, ";", &save); ri != NULL;
	    ri = strtok_r(NULL, ";", &save)) {
		char *tok, *save2 = NULL, method[32] = "", result[32] = "";
		char dom[256] = "";

		if (first-- > 0 || strstr(ri, "=") == NULL)
			continue;
		for (tok = strtok_r(ri, " \t\r\n", &save2); tok != NULL;
		    tok = strtok_r(NULL, " \t\r\n", &save2)) {
			char *eq = strchr(tok, '='), *at;

			if (eq == NULL)
				continue;
			*eq = '\0';
			if (method[0] == '\0') {
				snprintf(method, sizeof(method), "%s", tok);
				snprintf(result, sizeof(result), "%s", eq + 1);
				continue;
			}
			at = strrchr(eq + 1, '@');
			if ((strcasecmp(method, "dkim") == 0 &&
			    (strcasecmp(tok, "header.d") == 0 ||
			    (strcasecmp(tok, "header.i") == 0 &&
			    dom[0] == '\0'))) ||
			    (strcasecmp(method, "spf") == 0 &&
			    (strcasecmp(tok, "smtp.mailfrom") == 0 ||
			    strcasecmp(tok, "smtp.mfrom") == 0)) ||
			    (strcasecmp(method, "dmarc") == 0 &&
			    strcasecmp(tok, "header.from") == 0))
				snprintf(dom, sizeof(dom), "%s",
				    at != NULL ? at + 1 : eq + 1);
		}
		if (strcasecmp(result, "pass") != 0)
			continue;
		if (!mw_domain_ok(dom, MW_DOMAIN_LDH))
			dom[0] = '\0';
		if (strcasecmp(method, "dmarc") == 0) {
			r->arc_aar_dmarc = 1;
			snprintf(r->arc_aar_from, sizeof(r->arc_aar_from), "%s",
			    dom);
		} else if (strcasecmp(method, "dkim") == 0 && dom[0] != '\0' &&
		    r->n_arc_aar_dkim < MW_MAX_ARC_AAR_DKIM)
			snprintf(r->arc_aar_dkim[r->n_arc_aar_dkim++],
			    sizeof(r->arc_aar_dkim[0]), "%s", dom);
		else if (strcasecmp(method, "spf") == 0 && dom[0] != '\0')
			snprintf(r->arc_aar_spf, sizeof(r->arc_aar_spf), "%s",
			    dom);
	}
	free(t);
}

static void
arc_on_eom(struct mw_session *s, const void *vc, void *vst)
{
	const struct arc_cfg *c = vc;
	struct arc_state *st = vst;
	const char *sealer;
	int i;

	if (!st->parsed)
		parse_chain(s, c, st);
	st->done = 1;
	s->res.arc_done = 1;
	if (st->cv == MW_AUTH_PASS) {
		/* 5.2 step 4: the newest AMS */
		if (check_ams(s, c, st, st->n) == -1)
			st->cv = MW_AUTH_FAIL;
	}
	if (st->cv == MW_AUTH_PASS) {
		/* step 5: oldest-pass */
		st->oldest_pass = 0;
		for (i = st->n - 1; i >= 1; i--) {
			char keep[sizeof(st->why)];

			memcpy(keep, st->why, sizeof(keep));
			if (check_ams(s, c, st, i) == -1) {
				mw_session_note(s, "arc", "%s", st->why);
				memcpy(st->why, keep, sizeof(keep));
				st->oldest_pass = i + 1;
				break;
			}
		}
		/* step 6: every AS, newest first */
		for (i = st->n; i >= 1; i--)
			if (check_as(s, c, st, i) == -1) {
				st->cv = MW_AUTH_FAIL;
				break;
			}
	}
	s->res.arc = st->cv;
	if (st->cv == MW_AUTH_FAIL)
		mw_session_note(s, "arc", "cv=fail: %s", st->why);
	if (st->cv != MW_AUTH_PASS)
		return;
	sealer = st->set[st->n].as.d;
	snprintf(s->res.arc_sealer, sizeof(s->res.arc_sealer), "%s", sealer);
	mw_session_note(s, "arc", "cv=pass, %d sets, newest sealed by %s", st->n,
	    sealer);
	if (is_trusted(c, sealer)) {
		s->res.arc_trusted = 1;
		read_aar(s, st->hdrs[st->set[st->n].idx[K_AAR]].value);
		mw_session_note(s, "arc", "%s is a trusted sealer; its "
		    "ARC-Authentication-Results: dmarc %s, %zu dkim pass, "
		    "spf pass %s", sealer, s->res.arc_aar_dmarc ? "pass" :
		    "not pass", s->res.n_arc_aar_dkim, s->res.arc_aar_spf[0] ?
		    s->res.arc_aar_spf : "none");
	}
}

static void
arc_authres(struct mw_session *s, const void *vc, void *vst,
    struct mw_authres *ar)
{
	struct arc_state *st = vst;
	char num[16];
	int i;

	(void)vc;
	if (!st->done)
		return;
	mw_authres_result(ar, "arc", mw_auth_result_name(st->cv));
	if (st->cv == MW_AUTH_PASS) {
		struct mw_buf b = MW_BUF_INIT(4096);

		for (i = st->n; i >= 1; i--)
			mw_buf_printf(&b, "%s%s", i == st->n ? "" : ",",
			    st->set[i].as.d);
		mw_authres_comment(ar, "i=%d sealers %s", st->n,
		    mw_buf_str(&b));
		mw_buf_free(&b);
	} else if (st->cv == MW_AUTH_FAIL)
		mw_authres_comment(ar, "%s", st->why);
	if (st->cv == MW_AUTH_NONE)
		return;
	mw_authres_prop(ar, "smtp", "remote-ip", s->ip);
	if (st->cv == MW_AUTH_PASS) {
		snprintf(num, sizeof(num), "%d", st->oldest_pass);
		mw_authres_prop(ar, "header", "oldest-pass", num);
	}
}

static void
arc_on_close(struct mw_session *s, const void *vc, void *vst)
{
	arc_on_reset(s, vc, vst);
}

const struct mw_module mw_module_arc = {
	.name = "arc",
	.inbound = 1,
	.off_by_default = 1,
	.cfg_size = sizeof(struct arc_cfg),
	.cfg_init = arc_cfg_init,
	.cfg_set = arc_cfg_set,
	.cfg_dump = arc_cfg_dump,
	.cfg_free = arc_cfg_free,
	.state_size = sizeof(struct arc_state),
	.on_header = arc_on_header,
	.on_eoh = arc_on_eoh,
	.on_body = arc_on_body,
	.on_eom = arc_on_eom,
	.authres = arc_authres,
	.on_reset = arc_on_reset,
	.on_close = arc_on_close,
};
