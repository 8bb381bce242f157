/*
 * mw_dkim.h -- what mw_dkim.c (the module: settings, verifying, the
 * `mailwarden -t` key check) and mw_dkim_sign.c (signing keys, signing)
 * share.  Only these two include it.
 */
#ifndef MW_DKIM_H
#define MW_DKIM_H

#include <sys/types.h>
#include <stdbool.h>
#include <stddef.h>

#include "mw_verdict.h"

struct mw_ctx;
struct mw_session;

/* Keys one message may be signed with (say RSA and Ed25519 for a domain). */
#define MW_DKIM_MAX_SIGNERS	4

/* One signing key: a `key =` line or a line of a `keytable =` file. */
struct mw_dkim_key {
	char		*domain;	/* lowercase, without a leading "*." */
	int		 wildcard;	/* "*.example.org": its subdomains */
	char		*selector;
	char		*path;
	char		*origin;	/* "keytable FILE:LINE", or NULL */
	char		*pem;		/* the key as PKCS#8 PEM */
	void		*pkey;		/* Ed25519: the EVP_PKEY we sign with */
	int		 alg;		/* DKIM_SIGN_RSASHA256 / _ED25519SHA256 */
	int		 bits;		/* RSA modulus size; 256 for Ed25519 */
	mode_t		 mode;		/* file permissions, checked later */
};

/* The [dkim] section. */
struct mw_dkim_cfg {
	bool		 verify;
	bool		 sign;
	long		 max_signatures;
	long		 min_key_bits;
	bool		 allow_rsa_sha1;
	bool		 partial_body_fail;	/* partial_body = fail */
	struct mw_action pass_action;
	struct mw_action none_action;
	struct mw_action fail_action;
	struct mw_action policy_action;
	struct mw_action neutral_action;
	struct mw_action permerror_action;
	struct mw_action temperror_action;

	struct mw_dkim_key *keys;
	size_t		 n_keys;
	int		 header_canon;	/* DKIM_CANON_* */
	int		 body_canon;
	char		**sign_headers;
	size_t		 n_sign_headers;
	char		**oversign_headers;
	size_t		 n_oversign_headers;
	long		 sign_time;	/* tests: fixed t=, 0 = now */
	bool		 allow_world_readable_keys;
};

/* The signing half of a message's state (mw_dkim_sign.c). */
struct mw_dkim_signer;

/* mw_dkim_sign.c: keys */
int	mw_dkim_key_add(struct mw_dkim_cfg *c, const char *spec,
	    const char *origin, char *err, size_t errlen);
int	mw_dkim_keytable_load(struct mw_dkim_cfg *c, const char *path,
	    char *err, size_t errlen);
int	mw_dkim_keys_check(const struct mw_dkim_cfg *c, char *err,
	    size_t errlen);
void	mw_dkim_keys_free(struct mw_dkim_cfg *c);
const char *mw_dkim_alg_name(int alg);

/* mw_dkim_sign.c: signing one message (lib is the shared DKIM_LIB) */
struct mw_dkim_signer *mw_dkim_signer_new(void);
void	mw_dkim_signer_free(struct mw_dkim_signer *sg);
void	mw_dkim_signer_reset(struct mw_dkim_signer *sg);
void	mw_dkim_sign_header(struct mw_dkim_signer *sg, const char *name,
	    const char *value);
void	mw_dkim_sign_eoh(struct mw_dkim_signer *sg, void *lib,
	    const struct mw_dkim_cfg *c, const char *id);
void	mw_dkim_sign_body(struct mw_dkim_signer *sg, const unsigned char *buf,
	    size_t len);
/*
 * Finish: calls add(arg, value) once per signature, the value folded with
 * "\n\t" and without the "DKIM-Signature:" name, in key order.  Returns
 * the number of signatures made, or -1 on error (logged).
 */
int	mw_dkim_sign_eom(struct mw_dkim_signer *sg, const char *id,
	    void (*add)(void *arg, const struct mw_dkim_key *k,
	    const char *value), void *arg);
/*
 * Sign a whole small message (fields "Name:value", CRLF breaks; body with
 * CRLF) with one key; *out gets the DKIM-Signature value (malloc'd, CRLF
 * folds kept).  0, or -1 with err set.  For the self-check.
 */
int	mw_dkim_sign_message(void *lib, const struct mw_dkim_cfg *c,
	    const struct mw_dkim_key *k, char *const *fields, size_t n,
	    const char *body, char **out, char *err, size_t errlen);

/*
 * "Name:value" as libopendkim wants it: the value as it came (leading
 * space included), its line breaks made CRLF.  Returns malloc'd text.
 */
char	*mw_dkim_field(const char *name, const char *value, size_t *lenp);

#endif /* MW_DKIM_H */
