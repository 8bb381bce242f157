/*
 * mw_dkim -- DKIM, section [dkim]: verifies the signatures of inbound
 * mail (RFC 6376; Ed25519 per RFC 8463; RFC 8301 crypto rules) and signs
 * the mail of trusted and authenticated clients (mw_dkim_sign.c).
 *
 * One libopendkim handle (DKIM_LIB) serves the whole process; it is made
 * in global_new, with our own key lookup (dkim_set_key_lookup): keys are
 * fetched through mw_dns, the session's c-ares batch, never through the
 * library's resolver (its res_state is shared between threads).  The
 * per-message verifying handle carries a pointer to our per-message
 * state (dkim_set_user_context), which is how the callbacks find the
 * session's DNS batch.
 *
 * Verifying, per message:
 *  - each header field goes to dkim_header() as it arrives ("Name:value",
 *    the raw value, line breaks made CRLF); only the first max_signatures
 *    DKIM-Signature fields are given to the library at all, so a message
 *    with a hundred signatures costs what one with max_signatures does;
 *  - at the end of the header, dkim_eoh() calls our prescreen, which
 *    throws out signatures the library would take but must not (syntax
 *    errors, a tag twice, d=/s= that are not domain names, q= without
 *    dns/txt) and
 *    sends the DNS queries for the keys of the others: they resolve while
 *    the body streams in;
 *  - each body chunk goes to dkim_body(); nothing is buffered here, and
 *    for "simple" body canonicalization the library keeps only hash
 *    states, whatever the line length.  Its "relaxed" body
 *    canonicalization holds each run of non-blank bytes in memory
 *    until the next blank (dkim-canon.c, canon_buf grows without
 *    bound): when a signature uses it, a run longer than BODY_RUN_MAX
 *    stops verification (neutral) rather than let that buffer grow to
 *    the size of the message;
 *  - we count the canonicalized body length ourselves (both forms, a
 *    few integers of state), to tell a signature whose l= covers the
 *    whole body from one that covers part of it: the part is shown as
 *    "l=N of M body bytes", and partial_body = fail makes it "policy"
 *    (not a pass for DMARC either);
 *  - at the end, dkim_eom() verifies every signature (DELAYSIGPROC: our
 *    key callback waits for the answers), and each signature gets its own
 *    result, published in s->res.dkim[] for DMARC and written to
 *    Authentication-Results.
 *
 * Public keys: libopendkim decodes the key of every signature with
 * d2i_PUBKEY_bio(), which in OpenSSL 3.0 builds a decoder context each
 * time -- 1.1 M instructions, 40 % of the CPU a 4 kB message costs us,
 * three times the RSA verification itself.  This file defines
 * d2i_PUBKEY_bio (the library's reference binds to the executable's
 * definition first): while our thread is inside dkim_eom it looks the
 * DER bytes up in a small cache of decoded keys in the module's global
 * state (struct keycache, a mutex, at most KEYCACHE_MAX keys, the
 * oldest replaced first) and hands out a new reference to the same
 * EVP_PKEY; every other call, and every miss, goes to OpenSSL's.  The
 * cache is keyed by the key's bytes, so a changed DNS record is a new
 * key: no result can differ from decoding afresh.
 *
 * Results (RFC 8601 section 2.7.1, RFC 6376 section 6.1):
 *   pass       signature and body hash verify with a usable key
 *   fail       signature or body hash do not verify (or l= is longer
 *              than the body)
 *   policy     verifies, but we do not accept it: rsa-sha1 (RFC 8301;
 *              allow_rsa_sha1 = yes accepts it), an RSA key shorter than
 *              min_key_bits, an l= that leaves part of the body
 *              unsigned with partial_body = fail
 *   neutral    the signature itself is unusable: syntax errors, missing,
 *              repeated or bad tags, unknown algorithm or canonicalization,
 *              q= without dns/txt, expired, dated in the future
 *   permerror  the key is unusable: no key record, revoked (p= empty),
 *              record syntax, wrong key type or hash, not an e-mail key,
 *              several records at the name
 *   temperror  the key could not be looked up (timeout, SERVFAIL)
 * The configured action is taken for the best result of the message:
 * pass if any signature passes, else temperror, fail, policy, neutral,
 * permerror in that order; none when it has no signature.
 */
#include "config.h"

#include <ctype.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <opendkim/dkim.h>

#include "mw_authres.h"
#include "mw_dkim.h"
#include "mw_log.h"
#include "mw_session_priv.h"
#include "mw_text.h"

#define MAX_SIGS	MW_MAX_DKIM_RESULTS	/* upper bound of max_signatures */
#define BODY_RUN_MAX	(256 * 1024)	/* body bytes without white space */
#define SIG_NAME	"DKIM-Signature"
#define KEYCACHE_MAX	64		/* decoded public keys kept */
#define KEYDER_MAX	2048		/* DER bytes of a key we keep */

/* libopendkim is pre-C99 about const; keep the casts in one place. */
#define UC(s)		((u_char *)(s))

/* The key of one (selector, domain), asked for in the prescreen. */
struct keyq {
	char			 name[512];	/* sel._domainkey.domain */
	struct mw_dns_query	*q;
	enum mw_auth_result	 problem;	/* NONE, or why no key */
	char			 why[160];
};

/* The result for one signature. */
struct sigres {
	enum mw_auth_result	result;
	char			domain[256];
	char			selector[128];
	char			ident[320];
	char			alg[32];
	char			b[12];		/* header.b, RFC 6008 */
	char			reason[200];
	unsigned int		keybits;
	int			ed25519;
	int			show_key;
	int			partial;	/* l= covers part of the body */
	unsigned long long	l_tag;		/* then: l= */
	unsigned long long	body_len;	/* and the canonicalized body */
};

/*
 * Length of the canonicalized body (RFC 6376 3.4.3 simple, 3.4.4
 * relaxed), counted as it streams: lines end at CRLF, empty lines are
 * held back until a line with content follows (trailing ones do not
 * count), relaxed turns a run of blanks into one SP and drops it at the
 * end of a line.
 */
struct canon_len {
	unsigned long long	total;		/* bytes so far */
	unsigned long long	line;		/* of the current line */
	unsigned long long	blanks;		/* empty lines held back */
	int			wsp;		/* relaxed: blanks pending */
	int			cr;		/* a CR was the last byte */
};

/* One message being verified. */
struct verifier {
	DKIM			*dkim;
	struct keycache		*kc;		/* or NULL */
	struct mw_dns_batch	*dns;
	const struct mw_dkim_cfg *cfg;
	char			 id[64];
	int			 n_seen;	/* DKIM-Signature fields */
	int			 n_fed;		/* given to the library */
	unsigned char		 bad_syntax[MAX_SIGS];
	struct {
		enum mw_auth_result	result;	/* NONE = leave to the library */
		char			reason[160];
		int			ambiguous;	/* report no tags */
	}			 pre[MAX_SIGS];
	struct keyq		*keys[MAX_SIGS];	/* allocated as asked */
	int			 n_keys;
	/* From the prescreen, per signature: which key, whether it needs
	 * the body hashed at all (see body_needed). */
	int			 n_pre;
	signed char		 sig_key[MAX_SIGS];	/* keys[], or -1 */
	unsigned char		 sig_needs[MAX_SIGS];
	int			 nohash;	/* no signature needs the body */
	DKIM_STAT		 eoh;
	int			 eoh_done;
	size_t			 run;		/* body bytes since white space */
	int			 relaxed_body;	/* a signature uses it */
	int			 too_long;
	struct canon_len	 len_simple, len_relaxed;
	int			 last;		/* last body byte, -1 = none */
};

/* Decoded public keys, by their DER bytes (see the top). */
struct keycache {
	pthread_mutex_t		 lock;
	struct {
		unsigned char	*der;
		size_t		 len;
		EVP_PKEY	*key;
	}			 e[KEYCACHE_MAX];
	size_t			 next;		/* the slot replaced next */
};

struct dkim_global {
	DKIM_LIB		*lib;
	const struct mw_dkim_cfg *cfg;
	struct keycache		 keys;
};

/* Per connection; everything in it belongs to the current message. */
struct dkim_state {
	struct verifier		*v;
	struct mw_dkim_signer	*sg;
	int			 signing;
	int			 done;		/* results ready for authres */
	struct sigres		*res;		/* from the end of data on */
	size_t			 n_res;
	int			 n_unchecked;	/* over max_signatures */
};

static const char *default_sign_headers =
    "from, sender, reply-to, subject, date, message-id, to, cc, "
    "mime-version, content-type, content-transfer-encoding, content-id, "
    "content-description, resent-date, resent-from, resent-sender, "
    "resent-to, resent-cc, resent-message-id, in-reply-to, references, "
    "list-id, list-help, list-unsubscribe, list-subscribe, list-post, "
    "list-owner, list-archive";

/* ----------------------------------------------------------- config --- */

struct cfg_extra {
	struct mw_dkim_cfg	c;
	int			sign_headers_set;
	int			oversign_set;
};

static void
dkim_cfg_init(void *vc)
{
	struct cfg_extra *x = vc;
	struct mw_dkim_cfg *c = &x->c;
	char err[100];

	c->verify = true;
	c->sign = true;
	c->max_signatures = 5;
	c->min_key_bits = 1024;
	c->header_canon = DKIM_CANON_RELAXED;
	c->body_canon = DKIM_CANON_RELAXED;
	/* All actions default to accept: annotate only, DMARC decides. */
	(void)mw_split_list(default_sign_headers, &c->sign_headers,
	    &c->n_sign_headers, err, sizeof(err));
	(void)mw_split_list("From", &c->oversign_headers,
	    &c->n_oversign_headers, err, sizeof(err));
}

static int
parse_canon(const char *v, int *h, int *b, char *err, size_t errlen)
{
	char hs[16], bs[16] = "simple";
	const char *slash = strchr(v, '/');
	size_t n = slash != NULL ? (size_t)(slash - v) : strlen(v);

	if (n >= sizeof(hs) || (slash != NULL && strlen(slash + 1) >=
	    sizeof(bs)))
		goto bad;
	memcpy(hs, v, n);
	hs[n] = '\0';
	if (slash != NULL)
		snprintf(bs, sizeof(bs), "%s", slash + 1);
	if (strcasecmp(hs, "relaxed") == 0)
		*h = DKIM_CANON_RELAXED;
	else if (strcasecmp(hs, "simple") == 0)
		*h = DKIM_CANON_SIMPLE;
	else
		goto bad;
	if (strcasecmp(bs, "relaxed") == 0)
		*b = DKIM_CANON_RELAXED;
	else if (strcasecmp(bs, "simple") == 0)
		*b = DKIM_CANON_SIMPLE;
	else
		goto bad;
	return 0;
bad:
	snprintf(err, errlen, "want relaxed/relaxed, relaxed/simple, "
	    "simple/relaxed or simple/simple");
	return -1;
}

static int
set_list(char ***v, size_t *n, int *set, const char *value, char *err,
    size_t errlen)
{
	if (!*set) {
		/* The first line replaces the default; later ones add. */
		mw_free_list(*v, *n);
		*v = NULL;
		*n = 0;
		*set = 1;
	}
	return mw_split_list(value, v, n, err, errlen);
}

static int
dkim_cfg_set(void *vc, const char *k, const char *v, char *err, size_t errlen)
{
	struct cfg_extra *x = vc;
	struct mw_dkim_cfg *c = &x->c;
	long l;

	if (strcmp(k, "verify") == 0)
		return mw_parse_bool(v, &c->verify, err, errlen);
	if (strcmp(k, "sign") == 0)
		return mw_parse_bool(v, &c->sign, err, errlen);
	if (strcmp(k, "max_signatures") == 0)
		return mw_parse_int(v, 1, MAX_SIGS, &c->max_signatures, err,
		    errlen);
	if (strcmp(k, "min_key_bits") == 0)
		return mw_parse_int(v, 512, 16384, &c->min_key_bits, err,
		    errlen);
	if (strcmp(k, "allow_rsa_sha1") == 0)
		return mw_parse_bool(v, &c->allow_rsa_sha1, err, errlen);
	if (strcmp(k, "partial_body") == 0) {
		if (strcmp(v, "accept") == 0 || strcmp(v, "fail") == 0) {
			c->partial_body_fail = strcmp(v, "fail") == 0;
			return 0;
		}
		snprintf(err, errlen, "\"%s\" is not accept or fail", v);
		return -1;
	}
	if (strcmp(k, "pass_action") == 0)
		return mw_action_parse(&c->pass_action, v, err, errlen);
	if (strcmp(k, "none_action") == 0)
		return mw_action_parse(&c->none_action, v, err, errlen);
	if (strcmp(k, "fail_action") == 0)
		return mw_action_parse(&c->fail_action, v, err, errlen);
	if (strcmp(k, "policy_action") == 0)
		return mw_action_parse(&c->policy_action, v, err, errlen);
	if (strcmp(k, "neutral_action") == 0)
		return mw_action_parse(&c->neutral_action, v, err, errlen);
	if (strcmp(k, "permerror_action") == 0)
		return mw_action_parse(&c->permerror_action, v, err, errlen);
	if (strcmp(k, "temperror_action") == 0)
		return mw_action_parse(&c->temperror_action, v, err, errlen);
	if (strcmp(k, "key") == 0)
		return mw_dkim_key_add(c, v, NULL, err, errlen);
	if (strcmp(k, "keytable") == 0)
		return mw_dkim_keytable_load(c, v, err, errlen);
	if (strcmp(k, "canonicalization") == 0)
		return parse_canon(v, &c->header_canon, &c->body_canon, err,
		    errlen);
	if (strcmp(k, "sign_headers") == 0)
		return set_list(&c->sign_headers, &c->n_sign_headers,
		    &x->sign_headers_set, v, err, errlen);
	if (strcmp(k, "oversign_headers") == 0)
		return set_list(&c->oversign_headers, &c->n_oversign_headers,
		    &x->oversign_set, v, err, errlen);
	if (strcmp(k, "sign_time") == 0) {
		if (mw_parse_int(v, 0, 4102444800L, &l, err, errlen) == -1)
			return -1;
		c->sign_time = l;
		return 0;
	}
	if (strcmp(k, "allow_world_readable_keys") == 0)
		return mw_parse_bool(v, &c->allow_world_readable_keys, err,
		    errlen);
	return 1;
}

static int
dkim_cfg_check(void *vc, const struct mw_config *mc, char *err, size_t errlen)
{
	struct mw_dkim_cfg *c = &((struct cfg_extra *)vc)->c;
	size_t i;
	int from = 0;

	(void)mc;
	for (i = 0; i < c->n_sign_headers; i++)
		if (strcasecmp(c->sign_headers[i], "from") == 0)
			from = 1;
	if (!from) {
		snprintf(err, errlen, "sign_headers must include From "
		    "(RFC 6376 section 5.4)");
		return -1;
	}
	return mw_dkim_keys_check(c, err, errlen);
}

/* A list, several lines of it if long (lines of a list key add up). */
static void
print_list(FILE *fp, const char *key, char **v, size_t n)
{
	size_t i, col;

	col = (size_t)fprintf(fp, "%s =", key);
	for (i = 0; i < n; i++) {
		if (i > 0 && col + strlen(v[i]) + 2 > 76) {
			fputc('\n', fp);
			col = (size_t)fprintf(fp, "%s =", key);
		} else if (i > 0)
			col += (size_t)fprintf(fp, ",");
		col += (size_t)fprintf(fp, " %s", v[i]);
	}
	fputc('\n', fp);
}

static void
dkim_cfg_dump(const void *vc, void *vfp)
{
	const struct mw_dkim_cfg *c = &((const struct cfg_extra *)vc)->c;
	FILE *fp = vfp;
	char a[7][40];
	size_t i;

	fprintf(fp, "verify = %s\nsign = %s\nmax_signatures = %ld\n"
	    "min_key_bits = %ld\nallow_rsa_sha1 = %s\npartial_body = %s\n",
	    c->verify ? "yes" : "no", c->sign ? "yes" : "no",
	    c->max_signatures, c->min_key_bits,
	    c->allow_rsa_sha1 ? "yes" : "no",
	    c->partial_body_fail ? "fail" : "accept");
	fprintf(fp, "pass_action = %s\nnone_action = %s\nfail_action = %s\n"
	    "policy_action = %s\nneutral_action = %s\npermerror_action = %s\n"
	    "temperror_action = %s\n",
	    mw_action_name(&c->pass_action, a[0], sizeof(a[0])),
	    mw_action_name(&c->none_action, a[1], sizeof(a[1])),
	    mw_action_name(&c->fail_action, a[2], sizeof(a[2])),
	    mw_action_name(&c->policy_action, a[3], sizeof(a[3])),
	    mw_action_name(&c->neutral_action, a[4], sizeof(a[4])),
	    mw_action_name(&c->permerror_action, a[5], sizeof(a[5])),
	    mw_action_name(&c->temperror_action, a[6], sizeof(a[6])));
	for (i = 0; i < c->n_keys; i++) {
		const struct mw_dkim_key *k = &c->keys[i];

		fprintf(fp, "; %s, %d bits%s%s\nkey = %s%s %s %s\n",
		    mw_dkim_alg_name(k->alg), k->bits, k->origin ? ", from " :
		    "", k->origin ? k->origin : "", k->wildcard ? "*." : "",
		    k->domain, k->selector, k->path);
	}
	fprintf(fp, "canonicalization = %s/%s\n",
	    c->header_canon == DKIM_CANON_RELAXED ? "relaxed" : "simple",
	    c->body_canon == DKIM_CANON_RELAXED ? "relaxed" : "simple");
	print_list(fp, "sign_headers", c->sign_headers, c->n_sign_headers);
	print_list(fp, "oversign_headers", c->oversign_headers,
	    c->n_oversign_headers);
	fprintf(fp, "sign_time = %ld\nallow_world_readable_keys = %s\n",
	    c->sign_time, c->allow_world_readable_keys ? "yes" : "no");
}

static void
dkim_cfg_free(void *vc)
{
	struct mw_dkim_cfg *c = &((struct cfg_extra *)vc)->c;

	mw_dkim_keys_free(c);
	mw_free_list(c->sign_headers, c->n_sign_headers);
	mw_free_list(c->oversign_headers, c->n_oversign_headers);
}

/* ------------------------------------------------------- key cache --- */

/*
 * The cache of the verification in progress on this thread, set only
 * around dkim_eom(): how d2i_PUBKEY_bio, called by libopendkim, finds
 * it.
 */
static __thread struct keycache *keycache_now;

typedef EVP_PKEY *(*d2i_pubkey_bio_fn)(BIO *, EVP_PKEY **);

/* OpenSSL's d2i_PUBKEY_bio, the one ours stands in front of: a library
 * handle, looked up once. */
static pthread_once_t real_once = PTHREAD_ONCE_INIT;
static d2i_pubkey_bio_fn real_d2i;

static void
real_d2i_init(void)
{
	void *f = dlsym(RTLD_NEXT, "d2i_PUBKEY_bio");

	memcpy(&real_d2i, &f, sizeof(real_d2i));
}

static EVP_PKEY *
real_d2i_pubkey_bio(BIO *bp, EVP_PKEY **a)
{
	(void)pthread_once(&real_once, real_d2i_init);
	return real_d2i != NULL ? real_d2i(bp, a) : NULL;
}

EVP_PKEY *
d2i_PUBKEY_bio(BIO *bp, EVP_PKEY **a)
{
	struct keycache *kc = keycache_now;
	char *der;
	long n;
	size_t i, len;
	EVP_PKEY *k;
	unsigned char *copy;

	if (kc == NULL || a != NULL || bp == NULL ||
	    BIO_method_type(bp) != BIO_TYPE_MEM ||
	    (n = BIO_get_mem_data(bp, &der)) <= 0 || n > KEYDER_MAX)
		return real_d2i_pubkey_bio(bp, a);
	len = (size_t)n;
	pthread_mutex_lock(&kc->lock);
	for (i = 0; i < KEYCACHE_MAX; i++)
		if (kc->e[i].key != NULL && kc->e[i].len == len &&
		    memcmp(kc->e[i].der, der, len) == 0) {
			k = kc->e[i].key;
			if (EVP_PKEY_up_ref(k) != 1)
				k = NULL;
			pthread_mutex_unlock(&kc->lock);
			if (k == NULL)
				return real_d2i_pubkey_bio(bp, a);
			return k;
		}
	pthread_mutex_unlock(&kc->lock);
	/* A miss: decode (without the lock), keep a reference. */
	if ((copy = malloc(len)) == NULL)
		return real_d2i_pubkey_bio(bp, a);
	memcpy(copy, der, len);
	if ((k = real_d2i_pubkey_bio(bp, a)) == NULL ||
	    EVP_PKEY_up_ref(k) != 1) {
		free(copy);
		return k;
	}
	pthread_mutex_lock(&kc->lock);
	i = kc->next;
	kc->next = (kc->next + 1) % KEYCACHE_MAX;
	if (kc->e[i].key != NULL)
		EVP_PKEY_free(kc->e[i].key);
	free(kc->e[i].der);
	kc->e[i].der = copy;
	kc->e[i].len = len;
	kc->e[i].key = k;
	pthread_mutex_unlock(&kc->lock);
	return k;
}

static void
keycache_free(struct keycache *kc)
{
	size_t i;

	for (i = 0; i < KEYCACHE_MAX; i++) {
		if (kc->e[i].key != NULL)
			EVP_PKEY_free(kc->e[i].key);
		free(kc->e[i].der);
	}
	pthread_mutex_destroy(&kc->lock);
}

/* ---------------------------------------------------- DNS callbacks --- */

/* q= is a colon-separated list; dns/txt must be one (RFC 6376 3.5). */
static int
query_method_ok(const char *q)
{
	const char *p = q;

	while (*p != '\0') {
		size_t n = strcspn(p, ":");

		while (n > 0 && isspace((unsigned char)p[n - 1]))
			n--;
		while (n > 0 && isspace((unsigned char)*p))
			p++, n--;
		if (n == 7 && strncasecmp(p, "dns/txt", 7) == 0)
			return 1;
		p += strcspn(p, ":");
		if (*p == ':')
			p++;
	}
	return 0;
}

/* The index of the key of (selector, domain) in v->keys, asked for now
 * if submit; -1 if there is none (or no room, or no memory). */
static int
key_index(struct verifier *v, const char *domain, const char *selector,
    int submit)
{
	char name[sizeof(((struct keyq *)NULL)->name)];
	struct keyq *k;
	int i;

	if (snprintf(name, sizeof(name), "%s._domainkey.%s", selector,
	    domain) >= (int)sizeof(name))
		return -1;
	for (i = 0; i < v->n_keys; i++)
		if (strcasecmp(v->keys[i]->name, name) == 0)
			return i;
	if (!submit || v->n_keys >= MAX_SIGS ||
	    (k = calloc(1, sizeof(*k))) == NULL)
		return -1;
	memcpy(k->name, name, sizeof(name));
	k->q = mw_dns_submit(v->dns, name, MW_DNS_TXT);
	v->keys[v->n_keys] = k;
	return v->n_keys++;
}

static struct keyq *
key_query(struct verifier *v, const char *domain, const char *selector,
    int submit)
{
	int i = key_index(v, domain, selector, submit);

	return i < 0 ? NULL : v->keys[i];
}

/*
 * dkim_eoh() calls this with every signature: weed out what the library
 * would accept but must not, and start the key lookups.
 */
static DKIM_CBSTAT
prescreen(DKIM *dkim, DKIM_SIGINFO **sigs, int nsigs)
{
	struct verifier *v = dkim_get_user_context(dkim);
	int i;

	if (v == NULL)
		return DKIM_CBSTAT_CONTINUE;
	for (i = 0; i < nsigs; i++) {
		DKIM_SIGINFO *sig = sigs[i];
		const char *d, *s, *q;
		int k;

		if (i >= MAX_SIGS || i >= v->n_fed) {
			dkim_sig_ignore(sig);
			continue;
		}
		/* Until shown otherwise, it needs the body. */
		v->n_pre = i + 1;
		v->sig_key[i] = -1;
		v->sig_needs[i] = 1;
		if (v->bad_syntax[i]) {
			/* The reason was noted when the field came. */
			v->pre[i].result = MW_AUTH_NEUTRAL;
			v->sig_needs[i] = 0;
			dkim_sig_ignore(sig);
			continue;
		}
		/* Errors the library found are reported at the end. */
		if (dkim_sig_geterror(sig) != DKIM_SIGERROR_UNKNOWN)
			continue;
		d = (const char *)dkim_sig_getdomain(sig);
		s = (const char *)dkim_sig_getselector(sig);
		q = (const char *)dkim_sig_gettagvalue(sig, 0, UC("q"));
		if (!mw_domain_ok(d, MW_DOMAIN_LDH) ||
		    !mw_domain_ok(s, MW_DOMAIN_LDH)) {
			v->pre[i].result = MW_AUTH_NEUTRAL;
			snprintf(v->pre[i].reason, sizeof(v->pre[i].reason),
			    "d= or s= is not a domain name");
			v->sig_needs[i] = 0;
			dkim_sig_ignore(sig);
			continue;
		}
		if (q != NULL && !query_method_ok(q)) {
			v->pre[i].result = MW_AUTH_NEUTRAL;
			snprintf(v->pre[i].reason, sizeof(v->pre[i].reason),
			    "no supported query method in q=");
			v->sig_needs[i] = 0;
			dkim_sig_ignore(sig);
			continue;
		}
		if ((k = key_index(v, d, s, 1)) >= 0 &&
		    dkim_sig_gettagvalue(sig, 0, UC("l")) == NULL)
			v->sig_key[i] = (signed char)k;
	}
	return DKIM_CBSTAT_CONTINUE;
}

/* Why there is no key: what, and a detail if not NULL. */
static void
key_problem(struct keyq *k, enum mw_auth_result r, const char *what,
    const char *detail)
{
	k->problem = r;
	snprintf(k->why, sizeof(k->why), "%s%s%s", what, detail ? ": " : "",
	    detail ? detail : "");
}

/*
 * The library's key lookup.  Every failure is handed back as "not
 * found": any other status would stop the library from going on to the
 * other signatures.  Why there was no key is kept in the keyq, and the
 * result (permerror, temperror) is made from it at the end.
 */
static DKIM_CBSTAT
key_lookup(DKIM *dkim, DKIM_SIGINFO *sig, u_char *buf, size_t buflen)
{
	struct verifier *v = dkim_get_user_context(dkim);
	const struct mw_dns_answer *a;
	struct keyq *k;
	const char *d = (const char *)dkim_sig_getdomain(sig);
	const char *s = (const char *)dkim_sig_getselector(sig);

	if (v == NULL || d == NULL || s == NULL ||
	    (k = key_query(v, d, s, 1)) == NULL)
		return DKIM_CBSTAT_NOTFOUND;
	a = mw_dns_wait(v->dns, k->q);
	k->problem = MW_AUTH_NONE;
	switch (a->status) {
	case MW_DNS_OK:
		break;
	case MW_DNS_NXDOMAIN:
	case MW_DNS_NODATA:
		key_problem(k, MW_AUTH_PERMERROR, "no key for signature", NULL);
		return DKIM_CBSTAT_NOTFOUND;
	case MW_DNS_PERMFAIL:
		key_problem(k, MW_AUTH_PERMERROR, "key lookup failed",
		    a->error != NULL ? a->error : "bad answer");
		return DKIM_CBSTAT_NOTFOUND;
	default:
		key_problem(k, MW_AUTH_TEMPERROR, "key lookup failed",
		    a->error != NULL ? a->error : "timeout");
		return DKIM_CBSTAT_NOTFOUND;
	}
	if (a->nrr != 1) {
		key_problem(k, MW_AUTH_PERMERROR, a->nrr > 1 ? "several key "
		    "records at one name" : "no key for signature", NULL);
		return DKIM_CBSTAT_NOTFOUND;
	}
	if (a->rr[0].len >= buflen || memchr(a->rr[0].text, '\0',
	    a->rr[0].len) != NULL) {
		key_problem(k, MW_AUTH_PERMERROR, a->rr[0].len >= buflen ?
		    "key record too long" : "key record holds a NUL", NULL);
		return DKIM_CBSTAT_NOTFOUND;
	}
	memcpy(buf, a->rr[0].text, a->rr[0].len);
	buf[a->rr[0].len] = '\0';
	return DKIM_CBSTAT_CONTINUE;
}

/* ------------------------------------------------------- verifying --- */

static struct verifier *
verifier_new(DKIM_LIB *lib, const struct mw_dkim_cfg *c,
    struct mw_dns_batch *dns, const char *id)
{
	struct verifier *v;
	DKIM_STAT st;

	if ((v = calloc(1, sizeof(*v))) == NULL)
		return NULL;
	v->cfg = c;
	v->dns = dns;
	v->last = -1;
	snprintf(v->id, sizeof(v->id), "%s", id);
	if ((v->dkim = dkim_verify(lib, UC(v->id), NULL, &st)) == NULL) {
		mw_log(LOG_ERR, "%s: dkim_verify: %s", id,
		    dkim_getresultstr(st));
		free(v);
		return NULL;
	}
	dkim_set_user_context(v->dkim, v);
	return v;
}

static void
verifier_free(struct verifier *v)
{
	int i;

	if (v == NULL)
		return;
	if (v->dkim != NULL)
		dkim_free(v->dkim);
	for (i = 0; i < v->n_keys; i++)
		free(v->keys[i]);
	free(v);
}

/* Is this field name DKIM-Signature (the library ignores trailing WSP)? */
static int
is_signature(const char *name)
{
	size_t n = strlen(name);

	while (n > 0 && (name[n - 1] == ' ' || name[n - 1] == '\t'))
		n--;
	return n == sizeof(SIG_NAME) - 1 && strncasecmp(name, SIG_NAME, n) == 0;
}

/*
 * RFC 6376 3.2: a tag-list with a tag twice is invalid.  libopendkim
 * keeps the last value, so "d=bank.example; d=evil.example" would be
 * verified for one domain while other readers of the field see the
 * other.  Returns 1 (name set) if a tag name repeats.
 */
static int
duplicate_tag(const char *v, char *name, size_t namelen)
{
	char seen[64][16];
	size_t nseen = 0, i, n;
	const char *p = v;

	while (*p != '\0' && nseen < 64) {
		while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
			p++;
		for (n = 0; isalnum((unsigned char)p[n]) || p[n] == '_'; n++)
			;
		if (n > 0 && n < sizeof(seen[0])) {
			for (i = 0; i < nseen; i++)
				if (strlen(seen[i]) == n &&
				    strncmp(seen[i], p, n) == 0) {
					snprintf(name, namelen, "%.*s", (int)n, p);
					return 1;
				}
			memcpy(seen[nseen], p, n);
			seen[nseen++][n] = '\0';
		}
		if ((p = strchr(p, ';')) == NULL)
			break;
		p++;
	}
	return 0;
}

static void
verifier_header(struct verifier *v, const char *name, const char *value)
{
	size_t len;
	char *f;

	/* No handle (unsigned message after its end of header): ignore. */
	if (v->dkim == NULL || v->eoh_done)
		return;
	if (is_signature(name)) {
		v->n_seen++;
		/* Beyond the limit the library never sees the field. */
		if (v->n_fed >= (int)v->cfg->max_signatures)
			return;
	}
	if ((f = mw_dkim_field(name, value, &len)) == NULL)
		return;
	if (is_signature(name)) {
		char *body = strchr(f, ':') + 1, tag[16];

		if (duplicate_tag(body, tag, sizeof(tag))) {
			v->bad_syntax[v->n_fed] = 1;
			v->pre[v->n_fed].ambiguous = 1;
			snprintf(v->pre[v->n_fed].reason,
			    sizeof(v->pre[v->n_fed].reason),
			    "signature syntax error: tag %s= twice", tag);
		} else if (dkim_sig_syntax(v->dkim, UC(body), strlen(body)) !=
		    DKIM_STAT_OK) {
			v->bad_syntax[v->n_fed] = 1;
			snprintf(v->pre[v->n_fed].reason,
			    sizeof(v->pre[v->n_fed].reason),
			    "signature syntax error: %s",
			    dkim_geterror(v->dkim) != NULL ?
			    dkim_geterror(v->dkim) : "unknown");
		}
		v->n_fed++;
	}
	(void)dkim_header(v->dkim, UC(f), len);
	free(f);
}

static void
verifier_eoh(struct verifier *v)
{
	DKIM_SIGINFO **sigs = NULL;
	dkim_canon_t hc, bc;
	int i, nsigs = 0;

	if (v->dkim == NULL || v->eoh_done)
		return;
	v->eoh = dkim_eoh(v->dkim);
	v->eoh_done = 1;
	if (v->eoh != DKIM_STAT_OK ||
	    dkim_getsiglist(v->dkim, &sigs, &nsigs) != DKIM_STAT_OK)
		return;
	for (i = 0; i < nsigs; i++)
		if (dkim_sig_getcanons(sigs[i], &hc, &bc) != DKIM_STAT_OK ||
		    bc != DKIM_CANON_SIMPLE)
			v->relaxed_body = 1;
}

static void
canon_len_endline(struct canon_len *c)
{
	if (c->line == 0) {
		c->blanks++;
	} else {
		c->total += c->blanks * 2 + c->line + 2;
		c->blanks = 0;
	}
	c->line = 0;
	c->wsp = 0;
}

/* One body byte into both counts. */
static inline void
canon_len_byte(struct verifier *v, unsigned char ch)
{
	struct canon_len *sp = &v->len_simple, *rl = &v->len_relaxed;

	if (sp->cr) {
		sp->cr = rl->cr = 0;
		if (ch == '\n') {
			canon_len_endline(sp);
			canon_len_endline(rl);
			return;
		}
		/* a CR inside a line is a byte of it */
		sp->line++;
		rl->line += 1 + (unsigned long long)rl->wsp;
		rl->wsp = 0;
	}
	if (ch == '\r') {
		sp->cr = rl->cr = 1;
		return;
	}
	sp->line++;
	if (ch == ' ' || ch == '\t') {
		rl->wsp = 1;
	} else {
		rl->line += 1 + (unsigned long long)rl->wsp;
		rl->wsp = 0;
	}
}

/* The lengths once the body is complete (ends with CRLF, see finish). */
static unsigned long long
canon_len_final(const struct canon_len *c, int simple)
{
	unsigned long long t = c->total + (c->line > 0 ?
	    c->blanks * 2 + c->line + 2 : 0);

	/* RFC 6376 3.4.3: an empty body is one CRLF in simple. */
	return simple && t == 0 ? 2 : t;
}

/* The bytes that end a run of the body: SP, HTAB, CR, LF. */
static const unsigned char blank_byte[256] = {
	[' '] = 1, ['\t'] = 1, ['\r'] = 1, ['\n'] = 1
};

/*
 * Count a body chunk (canon_len_byte for every byte, and the run of
 * non-blank bytes), in bulk where it can: a stretch of bytes that are
 * not blank (and follow no CR) adds its length to both line counts and
 * to the run, which is what canon_len_byte would do byte by byte.
 * Returns -1 when the run gets too long for relaxed canonicalization.
 */
static int
count_body(struct verifier *v, const unsigned char *buf, size_t len)
{
	struct canon_len *sp = &v->len_simple, *rl = &v->len_relaxed;
	size_t i = 0, j;

	while (i < len) {
		if (!sp->cr) {
			for (j = i; j < len && !blank_byte[buf[j]]; j++)
				;
			if (j > i) {
				sp->line += j - i;
				rl->line += j - i + (unsigned long long)rl->wsp;
				rl->wsp = 0;
				v->run += j - i;
				if (v->run > BODY_RUN_MAX && v->relaxed_body)
					return -1;
				if ((i = j) == len)
					break;
			}
			/* SP or HTAB after a byte that is no CR: inline */
			if (buf[i] == ' ' || buf[i] == '\t') {
				sp->line++;
				rl->wsp = 1;
				v->run = 0;
				i++;
				continue;
			}
		}
		canon_len_byte(v, buf[i]);
		if (blank_byte[buf[i]])
			v->run = 0;
		else if (++v->run > BODY_RUN_MAX && v->relaxed_body)
			return -1;
		i++;
	}
	return 0;
}

/*
 * Does any signature still need the body hashed?  Not one whose key
 * lookup has failed (no record, several, an error: key_lookup will say
 * "no key" at the end, whatever the body), nor one the prescreen threw
 * out.  One with l= is left alone (the library checks l= against the
 * body), and so is one the library found an error in.  Asked while the
 * body streams in; once no signature needs it, the rest of the body
 * goes to our length counts only.
 */
static int
body_needed(struct verifier *v)
{
	const struct mw_dns_answer *a;
	int i, failed = 0;

	for (i = 0; i < v->n_pre; i++) {
		if (!v->sig_needs[i])
			continue;
		if (v->sig_key[i] < 0)
			return 1;
		a = mw_dns_peek(v->keys[(int)v->sig_key[i]]->q);
		switch (a->status) {
		case MW_DNS_OK:
			if (a->nrr == 1)
				return 1;
			break;
		case MW_DNS_NXDOMAIN:
		case MW_DNS_NODATA:
		case MW_DNS_PERMFAIL:
		case MW_DNS_TEMPFAIL:
			break;
		default:	/* not answered yet */
			return 1;
		}
		failed++;
	}
	return failed == 0;
}

static void
verifier_body(struct verifier *v, const unsigned char *buf, size_t len)
{
	if (v->dkim == NULL || !v->eoh_done || v->too_long ||
	    v->eoh != DKIM_STAT_OK)
		return;
	if (count_body(v, buf, len) == -1) {
		v->too_long = 1;
		return;
	}
	if (v->nohash)
		return;
	(void)dkim_body(v->dkim, (u_char *)buf, len);
	/* the last byte the library got (verifier_finish ends its line) */
	if (len > 0)
		v->last = buf[len - 1];
	/* Take in key answers as they come, so none of them times out. */
	if (v->n_keys > 0) {
		mw_dns_poll(v->dns);
		if (!body_needed(v))
			v->nohash = 1;
	}
}

static void
copy_tag(char *out, size_t outlen, const u_char *v)
{
	snprintf(out, outlen, "%s", v != NULL ? (const char *)v : "");
}

/*
 * l= that covers less than the whole (canonicalized) body: note both
 * lengths in r.  l=0 signs nothing of a non-empty body: shown the same.
 */
static void
partial_coverage(const struct verifier *v, DKIM_SIGINFO *sig,
    struct sigres *r)
{
	const u_char *l = dkim_sig_gettagvalue(sig, 0, UC("l"));
	dkim_canon_t hc, bc = DKIM_CANON_RELAXED;
	unsigned long long lv, full;
	char *end;

	if (l == NULL)
		return;
	lv = strtoull((const char *)l, &end, 10);
	(void)dkim_sig_getcanons(sig, &hc, &bc);
	full = bc == DKIM_CANON_SIMPLE ? canon_len_final(&v->len_simple, 1) :
	    canon_len_final(&v->len_relaxed, 0);
	if (end == (const char *)l || lv >= full)
		return;
	r->partial = 1;
	r->l_tag = lv;
	r->body_len = full;
}

/* Describe one signature and give it its result. */
static void
classify(struct verifier *v, DKIM_SIGINFO *sig, int idx, struct sigres *r)
{
	const struct mw_dkim_cfg *c = v->cfg;
	int err = dkim_sig_geterror(sig);
	unsigned int flags = dkim_sig_getflags(sig);
	int bh = dkim_sig_getbh(sig);
	dkim_alg_t alg = DKIM_SIGN_UNKNOWN;
	const u_char *b;
	struct keyq *k;
	unsigned int bits = 0;
	u_char ident[320];

	memset(r, 0, sizeof(*r));
	copy_tag(r->domain, sizeof(r->domain), dkim_sig_getdomain(sig));
	copy_tag(r->selector, sizeof(r->selector), dkim_sig_getselector(sig));
	copy_tag(r->alg, sizeof(r->alg), dkim_sig_gettagvalue(sig, 0, UC("a")));
	if ((b = dkim_sig_gettagvalue(sig, 0, UC("b"))) != NULL)
		snprintf(r->b, sizeof(r->b), "%.8s", (const char *)b);
	if (dkim_sig_gettagvalue(sig, 0, UC("i")) != NULL &&
	    dkim_sig_getidentity(v->dkim, sig, ident, sizeof(ident)) ==
	    DKIM_STAT_OK)
		copy_tag(r->ident, sizeof(r->ident), ident);
	else if (r->domain[0] != '\0')
		snprintf(r->ident, sizeof(r->ident), "@%s", r->domain);
	(void)dkim_sig_getsignalg(sig, &alg);
	r->ed25519 = alg == DKIM_SIGN_ED25519SHA256;
	if (dkim_sig_getkeysize(sig, &bits) == DKIM_STAT_OK)
		r->keybits = bits;
	k = r->domain[0] && r->selector[0] ?
	    key_query(v, r->domain, r->selector, 0) : NULL;

	if (idx < MAX_SIGS && v->pre[idx].result != MW_AUTH_NONE) {
		if (v->pre[idx].ambiguous)
			memset(r, 0, sizeof(*r));
		r->result = v->pre[idx].result;
		snprintf(r->reason, sizeof(r->reason), "%s",
		    v->pre[idx].reason);
		return;
	}
	if (v->too_long) {
		r->result = MW_AUTH_NEUTRAL;
		snprintf(r->reason, sizeof(r->reason), "body has a run of "
		    "more than %d kB without blanks, too long to verify with "
		    "relaxed canonicalization", BODY_RUN_MAX / 1024);
		return;
	}
	switch (err) {
	case DKIM_SIGERROR_OK:
	case DKIM_SIGERROR_UNKNOWN:
		if ((flags & DKIM_SIGFLAG_PASSED) && bh == DKIM_SIGBH_MATCH) {
			r->result = MW_AUTH_PASS;
			r->show_key = 1;
			partial_coverage(v, sig, r);
			if (alg == DKIM_SIGN_RSASHA1 && !c->allow_rsa_sha1) {
				r->result = MW_AUTH_POLICY;
				snprintf(r->reason, sizeof(r->reason),
				    "rsa-sha1 is not accepted (RFC 8301)");
			} else if (r->partial && c->partial_body_fail) {
				r->result = MW_AUTH_POLICY;
				snprintf(r->reason, sizeof(r->reason),
				    "l= leaves part of the body unsigned "
				    "(partial_body = fail)");
			}
		} else if (k != NULL && k->problem == MW_AUTH_TEMPERROR) {
			r->result = MW_AUTH_TEMPERROR;
			snprintf(r->reason, sizeof(r->reason), "%s", k->why);
		} else {
			r->result = MW_AUTH_NEUTRAL;
			snprintf(r->reason, sizeof(r->reason), "signature not "
			    "verified: %s", dkim_geterror(v->dkim) ?
			    dkim_geterror(v->dkim) : "internal error");
		}
		break;
	case DKIM_SIGERROR_BADSIG:
		r->result = MW_AUTH_FAIL;
		r->show_key = 1;
		snprintf(r->reason, sizeof(r->reason), "%s",
		    bh == DKIM_SIGBH_MISMATCH ? "body hash mismatch" :
		    "signature verification failed");
		break;
	case DKIM_SIGERROR_TOOLARGE_L:
		r->result = MW_AUTH_FAIL;
		snprintf(r->reason, sizeof(r->reason), "body shorter than l=");
		break;
	case DKIM_SIGERROR_KEYTOOSMALL:
		r->result = MW_AUTH_POLICY;
		r->show_key = 1;
		snprintf(r->reason, sizeof(r->reason), "key shorter than %ld "
		    "bits", c->min_key_bits);
		break;
	case DKIM_SIGERROR_MBSFAILED:
		r->result = MW_AUTH_POLICY;
		snprintf(r->reason, sizeof(r->reason), "%s",
		    dkim_sig_geterrorstr(err));
		break;
	case DKIM_SIGERROR_NOKEY:
		if (k != NULL && k->problem != MW_AUTH_NONE) {
			r->result = k->problem;
			snprintf(r->reason, sizeof(r->reason), "%s", k->why);
		} else {
			r->result = MW_AUTH_PERMERROR;
			snprintf(r->reason, sizeof(r->reason), "no key for "
			    "signature");
		}
		break;
	case DKIM_SIGERROR_KEYFAIL:
		r->result = MW_AUTH_TEMPERROR;
		snprintf(r->reason, sizeof(r->reason), "key lookup failed");
		break;
	case DKIM_SIGERROR_KEYREVOKED:
	case DKIM_SIGERROR_DNSSYNTAX:
	case DKIM_SIGERROR_MULTIREPLY:
	case DKIM_SIGERROR_KEYVERSION:
	case DKIM_SIGERROR_KEYUNKNOWNHASH:
	case DKIM_SIGERROR_KEYHASHMISMATCH:
	case DKIM_SIGERROR_NOTEMAILKEY:
	case DKIM_SIGERROR_KEYTYPEMISSING:
	case DKIM_SIGERROR_KEYTYPEUNKNOWN:
	case DKIM_SIGERROR_KEYDECODE:
	case DKIM_SIGERROR_SUBDOMAIN:
		r->result = MW_AUTH_PERMERROR;
		snprintf(r->reason, sizeof(r->reason), "%s",
		    dkim_sig_geterrorstr(err));
		break;
	default:
		/* The signature itself: syntax, tags, version, dates. */
		r->result = MW_AUTH_NEUTRAL;
		snprintf(r->reason, sizeof(r->reason), "%s",
		    dkim_sig_geterrorstr(err) ? dkim_sig_geterrorstr(err) :
		    "unusable signature");
		break;
	}
}

/* Finish a message: fill res[] (at most max), return how many. */
static size_t
verifier_finish(struct verifier *v, struct sigres *res, size_t max)
{
	DKIM_SIGINFO **sigs = NULL;
	int i, nsigs = 0;
	size_t n = 0;

	if (v->n_fed == 0 || v->dkim == NULL)
		return 0;
	if (v->eoh_done && v->eoh == DKIM_STAT_OK && !v->too_long) {
		/*
		 * SMTP ends every body with CRLF; a body that came without
		 * one (a local submission) is delivered with it.
		 */
		if (v->last == '\r') {
			(void)dkim_body(v->dkim, UC("\n"), 1);
			canon_len_byte(v, '\n');
		} else if (v->last != -1 && v->last != '\n') {
			(void)dkim_body(v->dkim, UC("\r\n"), 2);
			canon_len_byte(v, '\r');
			canon_len_byte(v, '\n');
		}
		keycache_now = v->kc;
		(void)dkim_eom(v->dkim, NULL);
		keycache_now = NULL;
	}
	if (!v->eoh_done ||
	    dkim_getsiglist(v->dkim, &sigs, &nsigs) != DKIM_STAT_OK)
		nsigs = 0;
	for (i = 0; i < nsigs && n < max; i++)
		classify(v, sigs[i], i, &res[n++]);
	/* Signatures the library could not even list. */
	for (; i < v->n_fed && n < max; i++) {
		memset(&res[n], 0, sizeof(res[n]));
		res[n].result = MW_AUTH_NEUTRAL;
		snprintf(res[n].reason, sizeof(res[n].reason), "%s",
		    dkim_geterror(v->dkim) ? dkim_geterror(v->dkim) :
		    "signature not processed");
		n++;
	}
	return n;
}

/* ---------------------------------------------------------- module --- */

static int
dkim_global_new(const struct mw_config *mc, const void *vc, void **gp,
    char *err, size_t errlen)
{
	const struct mw_dkim_cfg *c = &((const struct cfg_extra *)vc)->c;
	struct dkim_global *g;
	const char **sh = NULL, **os = NULL;
	unsigned int flags, minbits;
	uint64_t fixed;
	size_t i;

	(void)mc;
	*gp = NULL;
	if (!c->verify && !(c->sign && c->n_keys > 0))
		return 0;
	if ((g = calloc(1, sizeof(*g))) == NULL ||
	    (g->lib = dkim_init(NULL, NULL)) == NULL) {
		free(g);
		snprintf(err, errlen, "[dkim] cannot initialize libopendkim");
		return -1;
	}
	if (pthread_mutex_init(&g->keys.lock, NULL) != 0) {
		dkim_close(g->lib);
		free(g);
		snprintf(err, errlen, "[dkim] pthread_mutex_init failed");
		return -1;
	}
	g->cfg = c;
	for (i = 0; i < c->n_keys; i++)
		if (c->keys[i].alg == DKIM_SIGN_ED25519SHA256 &&
		    !dkim_libfeature(g->lib, DKIM_FEATURE_ED25519)) {
			snprintf(err, errlen, "[dkim] key %s: this libopendkim "
			    "cannot sign with Ed25519", c->keys[i].path);
			goto fail;
		}
	/*
	 * BADSIGHANDLES: a signature with syntax errors still gets its
	 * handle, hence its own result.  DELAYSIGPROC: keys are fetched at
	 * the end of the message, when their answers have had the body's
	 * transfer time to arrive.
	 */
	flags = DKIM_LIBFLAGS_BADSIGHANDLES | DKIM_LIBFLAGS_DELAYSIGPROC;
	minbits = (unsigned int)c->min_key_bits;
	if ((sh = calloc(c->n_sign_headers + 1, sizeof(*sh))) == NULL ||
	    (os = calloc(c->n_oversign_headers + 1, sizeof(*os))) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	for (i = 0; i < c->n_sign_headers; i++)
		sh[i] = c->sign_headers[i];
	for (i = 0; i < c->n_oversign_headers; i++)
		os[i] = c->oversign_headers[i];
	if (dkim_options(g->lib, DKIM_OP_SETOPT, DKIM_OPTS_FLAGS, &flags,
	    sizeof(flags)) != DKIM_STAT_OK ||
	    dkim_options(g->lib, DKIM_OP_SETOPT, DKIM_OPTS_MINKEYBITS,
	    &minbits, sizeof(minbits)) != DKIM_STAT_OK ||
	    dkim_options(g->lib, DKIM_OP_SETOPT, DKIM_OPTS_SIGNHDRS, sh,
	    sizeof(sh)) != DKIM_STAT_OK ||
	    (c->n_oversign_headers > 0 && dkim_options(g->lib,
	    DKIM_OP_SETOPT, DKIM_OPTS_OVERSIGNHDRS, os, sizeof(os)) !=
	    DKIM_STAT_OK) ||
	    dkim_set_key_lookup(g->lib, key_lookup) != DKIM_STAT_OK ||
	    dkim_set_prescreen(g->lib, prescreen) != DKIM_STAT_OK) {
		snprintf(err, errlen, "[dkim] cannot set libopendkim options");
		goto fail;
	}
	if (c->sign_time > 0) {
		fixed = (uint64_t)c->sign_time;
		(void)dkim_options(g->lib, DKIM_OP_SETOPT, DKIM_OPTS_FIXEDTIME,
		    &fixed, sizeof(fixed));
	}
	/* The library keeps its own copies of the header lists. */
	free(sh);
	free(os);
	*gp = g;
	return 0;
fail:
	free(sh);
	free(os);
	dkim_close(g->lib);
	keycache_free(&g->keys);
	free(g);
	return -1;
}

static void
dkim_global_free(void *vg)
{
	struct dkim_global *g = vg;

	if (g == NULL)
		return;
	dkim_close(g->lib);
	keycache_free(&g->keys);
	free(g);
}

static struct dkim_global *
global_of(struct mw_session *s)
{
	return mw_session_global(s);
}

static const char *
msg_id(struct mw_session *s)
{
	return s->queue_id != NULL ? s->queue_id : "NOQUEUE";
}

static void
dkim_on_header(struct mw_session *s, const void *vc, void *vst,
    const char *name, const char *value)
{
	struct dkim_state *st = vst;
	struct dkim_global *g = global_of(s);

	(void)vc;
	if (g == NULL)
		return;
	if (s->skip_inbound) {
		/* Trusted or authenticated: sign, do not verify. */
		if (!g->cfg->sign || g->cfg->n_keys == 0)
			return;
		if (st->sg == NULL && !st->signing) {
			st->signing = 1;
			st->sg = mw_dkim_signer_new();
		}
		if (st->sg != NULL)
			mw_dkim_sign_header(st->sg, name, value);
		return;
	}
	if (!g->cfg->verify)
		return;
	if (st->v == NULL && !st->done &&
	    (st->v = verifier_new(g->lib, g->cfg, s->dns, msg_id(s))) == NULL)
		st->done = -1;	/* cannot verify this message */
	else if (st->v != NULL)
		st->v->kc = &g->keys;
	if (st->v != NULL)
		verifier_header(st->v, name, value);
}

static void
dkim_on_eoh(struct mw_session *s, const void *vc, void *vst)
{
	struct dkim_state *st = vst;
	struct dkim_global *g = global_of(s);

	(void)vc;
	if (g == NULL)
		return;
	if (st->sg != NULL)
		mw_dkim_sign_eoh(st->sg, g->lib, g->cfg, msg_id(s));
	if (st->v != NULL && st->v->dkim != NULL) {
		if (st->v->n_fed == 0) {
			/* Unsigned: nothing to hash. */
			dkim_free(st->v->dkim);
			st->v->dkim = NULL;
		} else
			verifier_eoh(st->v);
	}
}

static void
dkim_on_body(struct mw_session *s, const void *vc, void *vst,
    const unsigned char *buf, size_t len)
{
	struct dkim_state *st = vst;

	(void)vc;
	(void)s;
	if (st->sg != NULL)
		mw_dkim_sign_body(st->sg, buf, len);
	if (st->v != NULL && st->v->dkim != NULL)
		verifier_body(st->v, buf, len);
}

/* Collect the signatures of mw_dkim_sign_eom(), to insert them at the top. */
struct added {
	const char	*id;
	char		*v[MW_DKIM_MAX_SIGNERS];
	int		 n;
};

static void
collect(void *arg, const struct mw_dkim_key *k, const char *value)
{
	struct added *a = arg;

	if (a->n < MW_DKIM_MAX_SIGNERS && (a->v[a->n] = strdup(value)) != NULL) {
		a->n++;
		mw_log(LOG_INFO, "%s: DKIM-Signature added: d=%s s=%s a=%s",
		    a->id, k->domain, k->selector, mw_dkim_alg_name(k->alg));
	}
}

static void
sign_eom(struct mw_session *s, struct dkim_state *st)
{
	struct added a;
	int i;

	memset(&a, 0, sizeof(a));
	a.id = msg_id(s);
	(void)mw_dkim_sign_eom(st->sg, msg_id(s), collect, &a);
	/* Each goes to the top: the last inserted ends up first. */
	for (i = a.n - 1; i >= 0; i--) {
		mw_session_insert_header(s, SIG_NAME, a.v[i]);
		mw_stats_inc(mw_session_stats(s), MW_ST_DKIM_SIGNED);
		free(a.v[i]);
	}
}

/* The result that stands for the message, for the configured actions. */
static enum mw_auth_result
message_result(const struct dkim_state *st, const struct sigres **which)
{
	static const enum mw_auth_result order[] = {
		MW_AUTH_PASS, MW_AUTH_TEMPERROR, MW_AUTH_FAIL, MW_AUTH_POLICY,
		MW_AUTH_NEUTRAL, MW_AUTH_PERMERROR
	};
	size_t i, j;

	*which = NULL;
	for (i = 0; i < sizeof(order) / sizeof(order[0]); i++)
		for (j = 0; j < st->n_res; j++)
			if (st->res[j].result == order[i]) {
				*which = &st->res[j];
				return order[i];
			}
	return MW_AUTH_NONE;
}

static void
act(struct mw_session *s, const struct mw_dkim_cfg *c,
    const struct dkim_state *st)
{
	const struct sigres *r;
	const char *d;

	switch (message_result(st, &r)) {
	case MW_AUTH_PASS:
		mw_session_act(s, &c->pass_action, 550, "5.7.1",
		    "DKIM signature of %s verified", r->domain);
		break;
	case MW_AUTH_NONE:
		mw_session_act(s, &c->none_action, 550, "5.7.20",
		    "No DKIM signature found");
		break;
	case MW_AUTH_TEMPERROR:
		mw_session_act(s, &c->temperror_action, 451, "4.4.3",
		    "DKIM key of %s could not be looked up, try again later",
		    r->domain);
		break;
	case MW_AUTH_FAIL:
		mw_session_act(s, &c->fail_action, 550, "5.7.20",
		    "No passing DKIM signature found (%s: %s)", r->domain,
		    r->reason);
		break;
	default:
		d = r->domain[0] != '\0' ? r->domain : "unknown domain";
		mw_session_act(s, r->result == MW_AUTH_POLICY ?
		    &c->policy_action : r->result == MW_AUTH_NEUTRAL ?
		    &c->neutral_action : &c->permerror_action, 550, "5.7.21",
		    "No acceptable DKIM signature found (%s: %s)", d,
		    r->reason);
		break;
	}
}

/*
 * A key record for a note, as "TXT name: ..." like any DNS answer, but
 * of the key itself (p=) only its first bytes and its length: the tags
 * are what a reader can compare.
 */
static void
note_key_record(struct mw_buf *b, const char *t, size_t n)
{
	size_t i = 0, start, j, v, end;

	mw_buf_puts(b, "\"");
	while (i < n) {
		start = i;
		while (i < n && t[i] != ';')
			i++;
		/* t[start..i) is one tag=value; is it p=? */
		for (j = start; j < i && (t[j] == ' ' || t[j] == '\t'); j++)
			;
		v = i;
		if (j < i && t[j] == 'p') {
			for (j++; j < i && (t[j] == ' ' || t[j] == '\t'); j++)
				;
			if (j < i && t[j] == '=')
				v = j + 1;
		}
		/* more than 16 bytes of key: cut, and say how long it is */
		end = v < i && i - v > 16 ? v + 16 : i;
		mw_escaped(b, t + start, end - start);
		if (end < i)
			mw_buf_printf(b, "...(%zu bytes)", i - v);
		if (i < n)
			mw_buf_append(b, t + i++, 1);
	}
	mw_buf_puts(b, "\"");
}

static void
note_key(struct mw_session *s, const struct mw_dns_answer *a)
{
	struct mw_buf b = MW_BUF_INIT(1024);
	int i;

	if (a->status != MW_DNS_OK) {
		mw_session_note_dns(s, "dkim", a);
		return;
	}
	for (i = 0; i < a->nrr; i++) {
		if (i > 0)
			mw_buf_puts(&b, ", ");
		note_key_record(&b, a->rr[i].text, a->rr[i].len);
	}
	mw_session_note(s, "dkim", "TXT %s: %s%s", a->name != NULL ? a->name :
	    "?", mw_buf_str(&b), b.truncated ? "..." : "");
	mw_buf_free(&b);
}

/*
 * Evidence for mailwarden-check, per signature: its d=, s=, a=, the
 * result and why, and the answer of its key lookup.
 */
static void
explain(struct mw_session *s, const struct dkim_state *st)
{
	const struct sigres *r;
	struct keyq *k;
	char d[256], sel[128], alg[32], key[32];
	const struct mw_dns_answer *a;
	size_t i;

	if (!s->explain)
		return;
	for (i = 0; i < st->n_res; i++) {
		r = &st->res[i];
		mw_printable(d, sizeof(d), r->domain);
		mw_printable(sel, sizeof(sel), r->selector);
		mw_printable(alg, sizeof(alg), r->alg);
		key[0] = '\0';
		if (r->show_key && r->ed25519)
			snprintf(key, sizeof(key), ", ed25519 key");
		else if (r->show_key && r->keybits > 0)
			snprintf(key, sizeof(key), ", %u-bit key", r->keybits);
		mw_session_note(s, "dkim", "signature %zu%s%s%s%s%s%s: "
		    "%s%s%s%s%s", i + 1, d[0] ? " d=" : "", d, sel[0] ?
		    " s=" : "", sel, alg[0] ? " a=" : "", alg,
		    mw_auth_result_name(r->result), r->reason[0] ? " (" : "",
		    r->reason, r->reason[0] ? ")" : "", key);
		k = d[0] && sel[0] ? key_query(st->v, r->domain, r->selector,
		    0) : NULL;
		if (k != NULL && (a = mw_dns_peek(k->q))->status !=
		    MW_DNS_PENDING)
			note_key(s, a);
	}
	if (st->n_unchecked > 0)
		mw_session_note(s, "dkim", "%d more signature%s not checked "
		    "(max_signatures)", st->n_unchecked,
		    st->n_unchecked == 1 ? "" : "s");
}

static void
dkim_on_eom(struct mw_session *s, const void *vc, void *vst)
{
	struct dkim_state *st = vst;
	struct dkim_global *g = global_of(s);
	size_t i;

	(void)vc;
	if (g == NULL)
		return;
	if (st->sg != NULL)
		sign_eom(s, st);
	if (st->v == NULL)
		return;
	if ((st->res = calloc((size_t)g->cfg->max_signatures,
	    sizeof(*st->res))) == NULL) {
		mw_log(LOG_ERR, "%s: out of memory verifying DKIM", msg_id(s));
		return;
	}
	st->n_res = verifier_finish(st->v, st->res,
	    (size_t)g->cfg->max_signatures);
	st->n_unchecked = st->v->n_seen - st->v->n_fed;
	if (st->n_unchecked > 0)
		mw_log(LOG_INFO, "%s: %d DKIM signatures over max_signatures "
		    "%ld not checked", msg_id(s), st->n_unchecked,
		    g->cfg->max_signatures);
	st->done = 1;
	/* For DMARC: d= in lowercase, as alignment compares it. */
	for (i = 0; i < st->n_res && i < MW_MAX_DKIM_RESULTS; i++) {
		char *p;

		s->res.dkim[i].result = st->res[i].result;
		snprintf(s->res.dkim[i].domain, sizeof(s->res.dkim[i].domain),
		    "%s", st->res[i].domain);
		for (p = s->res.dkim[i].domain; *p != '\0'; p++)
			*p = (char)tolower((unsigned char)*p);
		snprintf(s->res.dkim[i].selector,
		    sizeof(s->res.dkim[i].selector), "%s",
		    st->res[i].selector);
	}
	s->res.n_dkim = i;
	s->res.dkim_done = 1;
	explain(s, st);
	act(s, g->cfg, st);
	verifier_free(st->v);
	st->v = NULL;
}

static void
dkim_authres(struct mw_session *s, const void *vc, void *vst,
    struct mw_authres *ar)
{
	struct dkim_state *st = vst;
	size_t i;

	(void)vc;
	(void)s;
	if (st->done != 1)
		return;
	if (st->n_res == 0) {
		mw_authres_result(ar, "dkim", "none");
		return;
	}
	for (i = 0; i < st->n_res; i++) {
		const struct sigres *r = &st->res[i];
		char partial[80] = "";

		if (r->partial)
			snprintf(partial, sizeof(partial), "; l=%llu of %llu "
			    "body bytes", r->l_tag, r->body_len);
		mw_authres_result(ar, "dkim", mw_auth_result_name(r->result));
		if (r->result != MW_AUTH_PASS && r->reason[0] != '\0')
			mw_authres_reason(ar, r->reason);
		if (r->domain[0] != '\0')
			mw_authres_prop(ar, "header", "d", r->domain);
		if (r->ident[0] != '\0')
			mw_authres_prop(ar, "header", "i", r->ident);
		if (r->selector[0] != '\0')
			mw_authres_prop(ar, "header", "s", r->selector);
		if (r->alg[0] != '\0')
			mw_authres_prop(ar, "header", "a", r->alg);
		if (r->b[0] != '\0')
			mw_authres_prop(ar, "header", "b", r->b);
		if (r->show_key && r->ed25519)
			mw_authres_comment(ar, "ed25519 key%s", partial);
		else if (r->show_key && r->keybits > 0)
			mw_authres_comment(ar, "%u-bit key%s", r->keybits,
			    partial);
		else if (partial[0] != '\0')
			mw_authres_comment(ar, "%s", partial + 2);
	}
	if (st->n_unchecked > 0)
		mw_authres_comment(ar, "%d more signature%s not checked",
		    st->n_unchecked, st->n_unchecked == 1 ? "" : "s");
}

static void
dkim_on_reset(struct mw_session *s, const void *vc, void *vst)
{
	struct dkim_state *st = vst;

	(void)vc;
	/* The results published for DMARC are per message. */
	s->res.dkim_done = 0;
	s->res.n_dkim = 0;
	verifier_free(st->v);
	st->v = NULL;
	mw_dkim_signer_free(st->sg);
	st->sg = NULL;
	st->signing = 0;
	st->done = 0;
	free(st->res);
	st->res = NULL;
	st->n_res = 0;
	st->n_unchecked = 0;
}


/* ------------------------------------------------- mailwarden -t ----- */

/*
 * Sign a small message with each key and verify it through DNS, exactly
 * as a receiver would.  Warnings only: the record may not be published
 * yet, and DNS may be unreachable from where -t runs.
 */
static int
dkim_self_check(struct mw_session *s, const void *vc, void *vfp)
{
	FILE *fp = vfp;
	struct dkim_global *g;
	const struct mw_dkim_cfg *c;
	size_t i;
	int warnings = 0;

	(void)vc;
	g = global_of(s);
	c = g != NULL ? g->cfg : NULL;
	for (i = 0; c != NULL && i < c->n_keys; i++) {
		const struct mw_dkim_key *k = &c->keys[i];
		char from[300], *fields[3], *sig = NULL, err[256], *f;
		const char *body = "mailwarden key check\r\n";
		struct verifier *v = NULL;
		struct sigres r;
		size_t n = 0, j;

		/* A wildcard key signs the subdomains of its domain. */
		snprintf(from, sizeof(from), " postmaster@%s%s",
		    k->wildcard ? "key-check." : "", k->domain);
		fields[n++] = mw_dkim_field("From", from, NULL);
		fields[n++] = mw_dkim_field("Subject", " key check", NULL);
		memset(&r, 0, sizeof(r));
		if (fields[0] == NULL || fields[1] == NULL ||
		    mw_dkim_sign_message(g->lib, c, k, fields, n, body, &sig,
		    err, sizeof(err)) == -1) {
			fprintf(fp, "warning: [dkim] key %s (%s._domainkey.%s):"
			    " %s\n", k->path, k->selector, k->domain,
			    sig == NULL ? err : "out of memory");
			warnings++;
			goto next;
		}
		if ((v = verifier_new(g->lib, c, s->dns, "key-check")) == NULL)
			goto next;
		/* Feed it as the MTA would: LF breaks, leading space. */
		for (f = sig; (f = strstr(f, "\r\n")) != NULL; )
			memmove(f, f + 1, strlen(f + 1) + 1);
		{
			char *val = malloc(strlen(sig) + 2);

			if (val == NULL)
				goto next;
			snprintf(val, strlen(sig) + 2, " %s", sig);
			verifier_header(v, SIG_NAME, val);
			free(val);
		}
		verifier_header(v, "From", from);
		verifier_header(v, "Subject", " key check");
		verifier_eoh(v);
		verifier_body(v, (const unsigned char *)body, strlen(body));
		if (verifier_finish(v, &r, 1) != 1 ||
		    r.result != MW_AUTH_PASS) {
			fprintf(fp, "warning: [dkim] key %s: the public key at "
			    "%s._domainkey.%s %s (dkim=%s%s%s)\n", k->path,
			    k->selector, k->domain,
			    r.result == MW_AUTH_FAIL ? "does not match it" :
			    r.result == MW_AUTH_TEMPERROR ? "could not be "
			    "looked up" : "is not usable", mw_auth_result_name(
			    r.result), r.reason[0] ? ": " : "", r.reason);
			warnings++;
		}
next:
		verifier_free(v);
		free(sig);
		for (j = 0; j < n; j++)
			free(fields[j]);
	}
	return warnings;
}

const struct mw_module mw_module_dkim = {
	.name = "dkim",
	/* Runs for trusted clients too (to sign); it skips verifying them. */
	.inbound = 0,
	.cfg_size = sizeof(struct cfg_extra),
	.cfg_init = dkim_cfg_init,
	.cfg_set = dkim_cfg_set,
	.cfg_check = dkim_cfg_check,
	.cfg_dump = dkim_cfg_dump,
	.cfg_free = dkim_cfg_free,
	.global_new = dkim_global_new,
	.global_free = dkim_global_free,
	.state_size = sizeof(struct dkim_state),
	.on_header = dkim_on_header,
	.on_eoh = dkim_on_eoh,
	.on_body = dkim_on_body,
	.on_eom = dkim_on_eom,
	.authres = dkim_authres,
	.on_reset = dkim_on_reset,
	.self_check = dkim_self_check,
};
