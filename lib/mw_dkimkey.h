/*
 * mw_dkimkey -- DKIM tag lists and key records (RFC 6376 3.2, 3.6.1;
 * RFC 8463 Ed25519), for signatures we verify without libopendkim (ARC).
 *
 * Tag lists: mw_taglist_parse() splits "a=rsa-sha256; b=...; d=x" into
 * tags, refusing a repeated tag or a malformed one; the values keep
 * their folding white space out (RFC 6376 3.2: FWS around '=' and ';'
 * is not part of the value, inside b=/bh=/p= it is ignored by the
 * base64 decoding).
 *
 *	struct mw_taglist tl;
 *	if (mw_taglist_parse(value, &tl, err, sizeof(err)) == -1) ...
 *	const char *d = mw_taglist_get(&tl, "d");
 *	mw_taglist_free(&tl);
 *
 * Keys: the TXT answer at selector._domainkey.domain, fetched through
 * mw_dns by the caller, becomes an EVP_PKEY with mw_dkimkey_from_answer;
 * what is wrong with it is sorted as DKIM sorts it (RFC 8601 2.7.1):
 * temperror when DNS could not answer, permerror for no key, several
 * records, a revoked or unusable key.
 */
#ifndef MW_DKIMKEY_H
#define MW_DKIMKEY_H

#include <stddef.h>

#include "mw_dns.h"
#include "mw_session.h"

#define MW_TAGLIST_MAX	32

struct mw_taglist {
	size_t	 n;
	char	*name[MW_TAGLIST_MAX];
	char	*value[MW_TAGLIST_MAX];
	char	*mem;		/* one allocation behind them all */
};

/* 0, or -1 with err set (syntax, a tag twice, too many tags). */
int	mw_taglist_parse(const char *text, struct mw_taglist *tl, char *err,
	    size_t errlen);
/* The value of a tag (white space removed at both ends), or NULL. */
const char *mw_taglist_get(const struct mw_taglist *tl, const char *name);
void	mw_taglist_free(struct mw_taglist *tl);

/*
 * base64 with folding white space ignored (b=, bh=, p=).  Returns the
 * decoded length (<= outlen), or -1 if it is not base64.
 */
long	mw_base64_decode(const char *in, unsigned char *out, size_t outlen);

enum mw_dkimkey_type { MW_DKIMKEY_RSA = 1, MW_DKIMKEY_ED25519 = 2 };

struct mw_dkimkey {
	void			*pkey;		/* EVP_PKEY */
	enum mw_dkimkey_type	 type;
	unsigned int		 bits;
};

/*
 * The key from a DNS answer.  0, or the result to report
 * (MW_AUTH_TEMPERROR, MW_AUTH_PERMERROR) with why set.  hash is the
 * signature's hash ("sha256"): a key whose h= does not allow it is
 * unusable.  Free k with mw_dkimkey_free.
 */
enum mw_auth_result mw_dkimkey_from_answer(const struct mw_dns_answer *a,
	    const char *hash, struct mw_dkimkey *k, char *why, size_t whylen);
void	mw_dkimkey_free(struct mw_dkimkey *k);

#endif /* MW_DKIMKEY_H */
