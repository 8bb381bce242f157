/*
 * mw_dkimkey -- DKIM tag lists, base64 and key records (RFC 6376 3.2,
 * 3.6.1, RFC 8463) for the signatures we verify ourselves (mw_arc.c).
 * Interface in mw_dkimkey.h.  libopendkim, which mw_dkim.c uses, parses
 * its keys inside the library and offers no parser to share.
 */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "mw_dkimkey.h"

static int
is_fws(int c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

int
mw_taglist_parse(const char *text, struct mw_taglist *tl, char *err,
    size_t errlen)
{
	char *p, *end;
	size_t i;

	memset(tl, 0, sizeof(*tl));
	if ((tl->mem = strdup(text)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	p = tl->mem;
	for (;;) {
		char *name, *value, *semi;
		size_t n;

		while (is_fws((unsigned char)*p))
			p++;
		if (*p == '\0')
			break;
		name = p;
		if (!isalpha((unsigned char)*p))
			goto bad;
		while (isalnum((unsigned char)*p) || *p == '_')
			p++;
		end = p;
		while (is_fws((unsigned char)*p))
			p++;
		if (*p != '=')
			goto bad;
		*end = '\0';
		p++;
		while (is_fws((unsigned char)*p))
			p++;
		value = p;
		semi = strchr(p, ';');
		end = semi != NULL ? semi : p + strlen(p);
		for (; p < end; p++)
			if (!is_fws((unsigned char)*p) &&
			    (*p < 0x21 || *p > 0x7e))
				goto bad;
		while (end > value && is_fws((unsigned char)end[-1]))
			end--;
		n = tl->n;
		if (n >= MW_TAGLIST_MAX) {
			snprintf(err, errlen, "too many tags");
			goto fail;
		}
		for (i = 0; i < n; i++)
			if (strcmp(tl->name[i], name) == 0) {
				snprintf(err, errlen, "tag %.20s= twice", name);
				goto fail;
			}
		tl->name[n] = name;
		tl->value[n] = value;
		tl->n++;
		if (semi == NULL) {
			*end = '\0';
			break;
		}
		*end = '\0';
		p = semi + 1;
	}
	return 0;
bad:
	snprintf(err, errlen, "tag list syntax error");
fail:
	mw_taglist_free(tl);
	return -1;
}

const char *
mw_taglist_get(const struct mw_taglist *tl, const char *name)
{
	size_t i;

	for (i = 0; i < tl->n; i++)
		if (strcmp(tl->name[i], name) == 0)
			return tl->value[i];
	return NULL;
}

void
mw_taglist_free(struct mw_taglist *tl)
{
	free(tl->mem);
	memset(tl, 0, sizeof(*tl));
}

static int
b64val(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

long
mw_base64_decode(const char *in, unsigned char *out, size_t outlen)
{
	unsigned long acc = 0;
	size_t n = 0, pad = 0, chars = 0;
	int bits = 0;

	for (; *in != '\0'; in++) {
		int v;

		if (is_fws((unsigned char)*in))
			continue;
		if (*in == '=') {
			pad++;
			continue;
		}
		if (pad > 0 || (v = b64val((unsigned char)*in)) < 0)
			return -1;
		chars++;
		acc = (acc << 6) | (unsigned long)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (n >= outlen)
				return -1;
			out[n++] = (unsigned char)(acc >> bits);
			acc &= (1UL << bits) - 1;
		}
	}
	if (pad > 2 || (chars + pad) % 4 != 0)
		return -1;
	return (long)n;
}

static enum mw_auth_result
problem(char *why, size_t whylen, enum mw_auth_result r, const char *text)
{
	snprintf(why, whylen, "%s", text);
	return r;
}

/* Is word in the colon-separated list? */
static int
in_list(const char *list, const char *word)
{
	size_t w = strlen(word);
	const char *p = list;

	while (*p != '\0') {
		size_t n;

		while (is_fws((unsigned char)*p))
			p++;
		n = strcspn(p, ":");
		while (n > 0 && is_fws((unsigned char)p[n - 1]))
			n--;
		if (n == w && strncasecmp(p, word, w) == 0)
			return 1;
		p += strcspn(p, ":");
		if (*p == ':')
			p++;
	}
	return 0;
}

enum mw_auth_result
mw_dkimkey_from_answer(const struct mw_dns_answer *a, const char *hash,
    struct mw_dkimkey *k, char *why, size_t whylen)
{
	struct mw_taglist tl;
	const char *v, *kt, *p, *h, *srv;
	unsigned char der[2048];
	const unsigned char *dp;
	char *txt, err[64];
	long n;
	EVP_PKEY *pk = NULL;

	memset(k, 0, sizeof(*k));
	switch (a->status) {
	case MW_DNS_OK:
		break;
	case MW_DNS_NXDOMAIN:
	case MW_DNS_NODATA:
		return problem(why, whylen, MW_AUTH_PERMERROR, "no key");
	case MW_DNS_PERMFAIL:
		return problem(why, whylen, MW_AUTH_PERMERROR,
		    "key lookup failed");
	default:
		return problem(why, whylen, MW_AUTH_TEMPERROR,
		    "key lookup failed");
	}
	if (a->nrr != 1)
		return problem(why, whylen, MW_AUTH_PERMERROR, a->nrr > 1 ?
		    "several key records at one name" : "no key");
	if (memchr(a->rr[0].text, '\0', a->rr[0].len) != NULL)
		return problem(why, whylen, MW_AUTH_PERMERROR,
		    "key record holds a NUL");
	if ((txt = strndup(a->rr[0].text, a->rr[0].len)) == NULL)
		return problem(why, whylen, MW_AUTH_TEMPERROR, "out of memory");
	n = mw_taglist_parse(txt, &tl, err, sizeof(err));
	free(txt);
	if (n == -1)
		return problem(why, whylen, MW_AUTH_PERMERROR,
		    "key record syntax");
	v = mw_taglist_get(&tl, "v");
	kt = mw_taglist_get(&tl, "k");
	p = mw_taglist_get(&tl, "p");
	h = mw_taglist_get(&tl, "h");
	srv = mw_taglist_get(&tl, "s");
	if (v != NULL && (strcmp(v, "DKIM1") != 0 ||
	    strcmp(tl.name[0], "v") != 0)) {
		mw_taglist_free(&tl);
		return problem(why, whylen, MW_AUTH_PERMERROR,
		    "key record: bad v=");
	}
	if (p == NULL || (h != NULL && !in_list(h, hash)) ||
	    (srv != NULL && !in_list(srv, "*") && !in_list(srv, "email"))) {
		mw_taglist_free(&tl);
		return problem(why, whylen, MW_AUTH_PERMERROR, p == NULL ?
		    "key record without p=" : h != NULL && !in_list(h, hash) ?
		    "key record h= does not allow the hash" :
		    "not an e-mail key");
	}
	if (*p == '\0') {
		mw_taglist_free(&tl);
		return problem(why, whylen, MW_AUTH_PERMERROR, "key revoked");
	}
	n = mw_base64_decode(p, der, sizeof(der));
	if (kt == NULL || strcasecmp(kt, "rsa") == 0) {
		k->type = MW_DKIMKEY_RSA;
		if (n > 0) {
			dp = der;
			pk = d2i_PUBKEY(NULL, &dp, n);
			if (pk == NULL) {
				dp = der;
				pk = d2i_PublicKey(EVP_PKEY_RSA, NULL, &dp, n);
			}
			if (pk != NULL && EVP_PKEY_base_id(pk) != EVP_PKEY_RSA) {
				EVP_PKEY_free(pk);
				pk = NULL;
			}
		}
	} else if (strcasecmp(kt, "ed25519") == 0) {
		k->type = MW_DKIMKEY_ED25519;
		if (n == 32)
			pk = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519,
			    NULL, der, 32);
	} else {
		mw_taglist_free(&tl);
		return problem(why, whylen, MW_AUTH_PERMERROR,
		    "unknown key type");
	}
	mw_taglist_free(&tl);
	if (pk == NULL)
		return problem(why, whylen, MW_AUTH_PERMERROR,
		    "key does not parse");
	k->pkey = pk;
	k->bits = (unsigned int)EVP_PKEY_bits(pk);
	return MW_AUTH_NONE;
}

void
mw_dkimkey_free(struct mw_dkimkey *k)
{
	if (k->pkey != NULL)
		EVP_PKEY_free(k->pkey);
	memset(k, 0, sizeof(*k));
}
