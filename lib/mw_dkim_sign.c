/*
 * mw_dkim_sign -- DKIM signing for [dkim]: the key table and the signer
 * that mw_dkim.c runs for trusted and authenticated clients.
 *
 * Keys are read when the configuration is loaded (at start and on every
 * reload, since the daemon builds a new configuration on SIGHUP), each
 * from a `key = domain selector /path` line or a line of a
 * `keytable = FILE`.  OpenSSL parses them: PEM (PKCS#1 or PKCS#8, RSA or
 * Ed25519), DER, or the bare base64 Ed25519 seed of RFC 8463 and dkimpy.
 * A key that cannot be read or parsed stops the load with file:line; a
 * key file anyone may read is refused by mw_dkim_keys_check() unless
 * allow_world_readable_keys says otherwise.  Keys are kept as PKCS#8 PEM
 * text, the form libopendkim's dkim_sign() takes.
 *
 * A message is signed with the key(s) of the domain of its From field.
 * Its header fields are kept until the end of the header (the From field
 * may come last), then fed to one signing handle per key; the body
 * streams through.  Calling sequence, all from mw_dkim.c:
 *
 *	sg = mw_dkim_signer_new();
 *	mw_dkim_sign_header(sg, name, value);		-- per field
 *	mw_dkim_sign_eoh(sg, lib, cfg, id);		-- picks the keys
 *	mw_dkim_sign_body(sg, buf, len);		-- per chunk
 *	mw_dkim_sign_eom(sg, id, add, arg);		-- one add() per signature
 *	mw_dkim_signer_reset(sg);			-- next message
 *	mw_dkim_signer_free(sg);
 */
#include "config.h"

#include <sys/types.h>
#include <sys/stat.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <opendkim/dkim.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "mw_config.h"
#include "mw_dkim.h"
#include "mw_session_priv.h"
#include "mw_log.h"
#include "mw_text.h"

#define KEY_FILE_MAX		(64 * 1024)	/* bytes of one key file */
#define SIGN_HEADER_MAX		(4 * 1024 * 1024)	/* kept header bytes */
#define MIN_SIGNING_BITS	1024		/* RFC 8301 section 3.2 */

struct field {
	char	*text;		/* "Name:value", CRLF line breaks */
	size_t	 len;
};

const char *
mw_dkim_alg_name(int alg)
{
	switch (alg) {
	case DKIM_SIGN_RSASHA1:
		return "rsa-sha1";
	case DKIM_SIGN_RSASHA256:
		return "rsa-sha256";
	case DKIM_SIGN_ED25519SHA256:
		return "ed25519-sha256";
	}
	return "unknown";
}

char *
mw_dkim_field(const char *name, const char *value, size_t *lenp)
{
	size_t nl = strlen(name), vl = strlen(value), i, o, extra = 0;
	char *t;

	/* Folded lines come from the MTA with bare LF; DKIM hashes CRLF. */
	for (i = 0; i < vl; i++)
		if (value[i] == '\n' && (i == 0 || value[i - 1] != '\r'))
			extra++;
	if ((t = malloc(nl + 1 + vl + extra + 1)) == NULL)
		return NULL;
	memcpy(t, name, nl);
	o = nl;
	t[o++] = ':';
	for (i = 0; i < vl; i++) {
		if (value[i] == '\n' && (i == 0 || value[i - 1] != '\r'))
			t[o++] = '\r';
		t[o++] = value[i];
	}
	t[o] = '\0';
	if (lenp != NULL)
		*lenp = o;
	return t;
}

/* ------------------------------------------------------------ keys --- */

/* Never ask for a passphrase on the terminal: such keys are refused. */
static int
no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1;
}

static void
ssl_error(char *err, size_t errlen, const char *what)
{
	unsigned long e = ERR_get_error();
	char buf[160];

	if (e != 0) {
		ERR_error_string_n(e, buf, sizeof(buf));
		snprintf(err, errlen, "%s (%s)", what, buf);
	} else
		snprintf(err, errlen, "%s", what);
	ERR_clear_error();
}

/*
 * Parse key file contents: PEM, base64 (a 32-byte Ed25519 seed or DER),
 * or binary DER.
 */
static EVP_PKEY *
parse_key(const unsigned char *data, size_t len, char *err, size_t errlen)
{
	EVP_PKEY *pk = NULL;
	unsigned char *b64 = NULL, *raw = NULL;
	const unsigned char *p;
	size_t i, n = 0;
	int rawlen, pad = 0;

	ERR_clear_error();
	if (memmem(data, len, "-----BEGIN", 10) != NULL) {
		BIO *bio = BIO_new_mem_buf(data, (int)len);

		if (bio != NULL) {
			pk = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase,
			    NULL);
			BIO_free(bio);
		}
		if (pk == NULL)
			ssl_error(err, errlen, "not a usable PEM private key "
			    "(encrypted keys are not supported)");
		return pk;
	}
	/* Base64 text?  Drop the white space and decode it. */
	if ((b64 = malloc(len + 1)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	for (i = 0; i < len; i++) {
		if (isspace(data[i]))
			continue;
		if (!isalnum(data[i]) && data[i] != '+' && data[i] != '/' &&
		    data[i] != '=')
			break;
		b64[n++] = data[i];
	}
	if (i == len && n > 0 && n % 4 == 0 && n < (size_t)1 << 20) {
		if ((raw = malloc(n)) == NULL) {
			free(b64);
			snprintf(err, errlen, "out of memory");
			return NULL;
		}
		rawlen = EVP_DecodeBlock(raw, b64, (int)n);
		for (i = n; i > 0 && b64[i - 1] == '='; i--)
			pad++;
		rawlen -= pad;
		if (rawlen == 32)
			pk = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519,
			    NULL, raw, 32);
		else if (rawlen > 0) {
			p = raw;
			pk = d2i_AutoPrivateKey(NULL, &p, rawlen);
		}
		OPENSSL_cleanse(raw, n);
		free(raw);
	} else {
		p = data;
		pk = d2i_AutoPrivateKey(NULL, &p, (long)len);
	}
	OPENSSL_cleanse(b64, len + 1);
	free(b64);
	if (pk == NULL)
		ssl_error(err, errlen, "not a private key (want PEM, DER, or "
		    "a base64 Ed25519 seed)");
	return pk;
}

/* Read and parse one key file into k (path, pem, alg, bits, mode). */
static int
load_key_file(struct mw_dkim_key *k, char *err, size_t errlen)
{
	unsigned char *data = NULL;
	struct stat st;
	EVP_PKEY *pk = NULL;
	BIO *out = NULL;
	char *pem;
	long pemlen;
	ssize_t r;
	size_t len = 0;
	int fd, ret = -1;
	char why[200];

	if ((fd = open(k->path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)) == -1) {
		snprintf(err, errlen, "key file %s: %s", k->path,
		    strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "key file %s: not a regular file",
		    k->path);
		goto done;
	}
	k->mode = st.st_mode & 07777;
	if (st.st_size > KEY_FILE_MAX) {
		snprintf(err, errlen, "key file %s: larger than %d bytes",
		    k->path, KEY_FILE_MAX);
		goto done;
	}
	if ((data = malloc((size_t)st.st_size + 1)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto done;
	}
	while (len < (size_t)st.st_size &&
	    (r = read(fd, data + len, (size_t)st.st_size - len)) > 0)
		len += (size_t)r;
	if (len == 0) {
		snprintf(err, errlen, "key file %s: empty", k->path);
		goto done;
	}
	if ((pk = parse_key(data, len, why, sizeof(why))) == NULL) {
		snprintf(err, errlen, "key file %s: %s", k->path, why);
		goto done;
	}
	switch (EVP_PKEY_get_base_id(pk)) {
	case EVP_PKEY_RSA:
		k->alg = DKIM_SIGN_RSASHA256;
		k->bits = EVP_PKEY_get_bits(pk);
		if (k->bits < MIN_SIGNING_BITS) {
			snprintf(err, errlen, "key file %s: a %d-bit RSA key "
			    "is too short to sign with (RFC 8301: at least "
			    "%d, 2048 recommended)", k->path, k->bits,
			    MIN_SIGNING_BITS);
			goto done;
		}
		break;
	case EVP_PKEY_ED25519:
		k->alg = DKIM_SIGN_ED25519SHA256;
		k->bits = 256;
		/* We sign Ed25519 ourselves (see "signer" below). */
		k->pkey = pk;
		pk = NULL;
		break;
	default:
		snprintf(err, errlen, "key file %s: not an RSA or Ed25519 key",
		    k->path);
		goto done;
	}
	/* PKCS#8 PEM, the form dkim_sign() takes RSA keys in. */
	if ((out = BIO_new(BIO_s_mem())) == NULL ||
	    !PEM_write_bio_PrivateKey(out, pk != NULL ? pk : k->pkey, NULL,
	    NULL, 0, NULL, NULL) ||
	    (pemlen = BIO_get_mem_data(out, &pem)) <= 0 ||
	    (k->pem = strndup(pem, (size_t)pemlen)) == NULL) {
		ssl_error(err, errlen, "cannot convert the key");
		goto done;
	}
	ret = 0;
done:
	if (out != NULL) {
		/* The memory BIO held the private key in clear. */
		char *p;
		long n = BIO_get_mem_data(out, &p);

		if (n > 0)
			OPENSSL_cleanse(p, (size_t)n);
		BIO_free(out);
	}
	EVP_PKEY_free(pk);
	if (data != NULL) {
		OPENSSL_cleanse(data, (size_t)st.st_size + 1);
		free(data);
	}
	close(fd);
	return ret;
}

static void
key_free(struct mw_dkim_key *k)
{
	free(k->domain);
	free(k->selector);
	free(k->path);
	free(k->origin);
	EVP_PKEY_free(k->pkey);
	if (k->pem != NULL) {
		OPENSSL_cleanse(k->pem, strlen(k->pem));
		free(k->pem);
	}
	memset(k, 0, sizeof(*k));
}

/*
 * "domain selector path": the domain may be "*.example.org" (its
 * subdomains sign as d=example.org).  Relative paths are taken from
 * `base` (the keytable's directory) when given, else as they are.
 */
static int
key_add(struct mw_dkim_cfg *c, const char *spec, const char *origin,
    const char *base, char *err, size_t errlen)
{
	struct mw_dkim_key k, *nv;
	char dom[256], sel[128];
	const char *p = spec, *q;
	size_t n, i;

	memset(&k, 0, sizeof(k));
	while (isspace((unsigned char)*p))
		p++;
	for (q = p; *q != '\0' && !isspace((unsigned char)*q); q++)
		;
	if ((n = (size_t)(q - p)) == 0 || n >= sizeof(dom))
		goto syntax;
	memcpy(dom, p, n);
	dom[n] = '\0';
	for (p = q; isspace((unsigned char)*p); p++)
		;
	for (q = p; *q != '\0' && !isspace((unsigned char)*q); q++)
		;
	if ((n = (size_t)(q - p)) == 0 || n >= sizeof(sel))
		goto syntax;
	memcpy(sel, p, n);
	sel[n] = '\0';
	for (p = q; isspace((unsigned char)*p); p++)
		;
	n = strlen(p);
	while (n > 0 && isspace((unsigned char)p[n - 1]))
		n--;
	if (n == 0)
		goto syntax;

	if (strncmp(dom, "*.", 2) == 0) {
		k.wildcard = 1;
		memmove(dom, dom + 2, strlen(dom + 2) + 1);
	}
	for (i = 0; dom[i] != '\0'; i++)
		dom[i] = (char)tolower((unsigned char)dom[i]);
	if (!mw_domain_ok(dom, MW_DOMAIN_NO_FINAL_DOT) ||
	    strchr(dom, '_') != NULL) {
		snprintf(err, errlen, "\"%s\" is not a domain name", dom);
		return -1;
	}
	if (!mw_domain_ok(sel, MW_DOMAIN_NO_FINAL_DOT)) {
		snprintf(err, errlen, "\"%s\" is not a valid selector", sel);
		return -1;
	}
	k.domain = strdup(dom);
	k.selector = strdup(sel);
	if (*p != '/' && base != NULL) {
		size_t bl = strlen(base);

		if ((k.path = malloc(bl + 1 + n + 1)) != NULL)
			snprintf(k.path, bl + 1 + n + 1, "%s/%.*s", base,
			    (int)n, p);
	} else
		k.path = strndup(p, n);
	if (origin != NULL)
		k.origin = strdup(origin);
	if (k.domain == NULL || k.selector == NULL || k.path == NULL ||
	    (origin != NULL && k.origin == NULL)) {
		key_free(&k);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (load_key_file(&k, err, errlen) == -1) {
		key_free(&k);
		return -1;
	}
	if ((nv = realloc(c->keys, (c->n_keys + 1) * sizeof(*nv))) == NULL) {
		key_free(&k);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	c->keys = nv;
	c->keys[c->n_keys++] = k;
	return 0;
syntax:
	snprintf(err, errlen, "want \"domain selector /path/to/key\"");
	return -1;
}

int
mw_dkim_key_add(struct mw_dkim_cfg *c, const char *spec, const char *origin,
    char *err, size_t errlen)
{
	return key_add(c, spec, origin, NULL, err, errlen);
}

int
mw_dkim_keytable_load(struct mw_dkim_cfg *c, const char *path, char *err,
    size_t errlen)
{
	FILE *fp;
	char line[2048], origin[1200], why[300], *base, *slash;
	int lineno = 0, ret = 0;

	if ((fp = mw_open_regular(path, MW_CONFIG_MAX_BYTES, why,
	    sizeof(why))) == NULL) {
		snprintf(err, errlen, "keytable %s", why);
		return -1;
	}
	/* Relative key paths in a keytable are relative to the keytable. */
	if ((base = strdup(path)) == NULL) {
		fclose(fp);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if ((slash = strrchr(base, '/')) != NULL)
		*slash = '\0';
	else
		strcpy(base, ".");
	while (fgets(line, sizeof(line), fp) != NULL) {
		char *p = line, *hash;

		lineno++;
		if (strchr(line, '\n') == NULL && !feof(fp)) {
			snprintf(err, errlen, "keytable %s:%d: line too long",
			    path, lineno);
			ret = -1;
			break;
		}
		if ((hash = strchr(p, '#')) != NULL)
			*hash = '\0';
		while (isspace((unsigned char)*p))
			p++;
		if (*p == '\0')
			continue;
		snprintf(origin, sizeof(origin), "keytable %s:%d", path,
		    lineno);
		if (key_add(c, p, origin, base, why, sizeof(why)) == -1) {
			snprintf(err, errlen, "%s: %s", origin, why);
			ret = -1;
			break;
		}
	}
	free(base);
	fclose(fp);
	return ret;
}

int
mw_dkim_keys_check(const struct mw_dkim_cfg *c, char *err, size_t errlen)
{
	size_t i, j, same;

	for (i = 0; i < c->n_keys; i++) {
		const struct mw_dkim_key *k = &c->keys[i];

		if (mw_secret_mode_problem(k->mode) != NULL &&
		    !c->allow_world_readable_keys) {
			snprintf(err, errlen, "key file %s%s%s%s is %s by "
			    "everyone (mode %04o): chmod o-rw it, or set "
			    "allow_world_readable_keys = yes", k->path,
			    k->origin ? " (" : "", k->origin ? k->origin : "",
			    k->origin ? ")" : "",
			    mw_secret_mode_problem(k->mode), (unsigned)k->mode);
			return -1;
		}
		for (same = 0, j = 0; j < c->n_keys; j++)
			if (strcmp(c->keys[j].domain, k->domain) == 0 &&
			    c->keys[j].wildcard == k->wildcard)
				same++;
		if (same > MW_DKIM_MAX_SIGNERS) {
			snprintf(err, errlen, "more than %d keys for %s%s",
			    MW_DKIM_MAX_SIGNERS, k->wildcard ? "*." : "",
			    k->domain);
			return -1;
		}
	}
	return 0;
}

void
mw_dkim_keys_free(struct mw_dkim_cfg *c)
{
	size_t i;

	for (i = 0; i < c->n_keys; i++)
		key_free(&c->keys[i]);
	free(c->keys);
	c->keys = NULL;
	c->n_keys = 0;
}

/* ---------------------------------------------------------- signer --- */

/*
 * Ed25519 signatures are made here, not by dkim_sign(): libopendkim 2.11
 * leaks the private key it loads for every Ed25519 signature (dkim_free()
 * releases the key material of RSA signatures only), about 1.3 kB a
 * message.  libopendkim still does all the canonicalization, through two
 * verifying handles that never get a key (no user context: our key
 * callback answers "not found"):
 *   - the first takes the body, and gives its hash (bh=);
 *   - the second takes the header fields and our DKIM-Signature with
 *     bh= filled in, and gives the header hash,
 * which OpenSSL then signs with the key parsed once at load (RFC 8463:
 * Ed25519 over the SHA-256 header hash).
 */
struct signjob {
	const struct mw_dkim_key *key;
	DKIM		*dkim;	/* RSA: signing handle; Ed25519: body hash */
};

struct mw_dkim_signer {
	struct field	*fields;	/* header fields, "Name:value" */
	size_t		 n_fields;
	size_t		 bytes;
	int		 keep_fields;	/* until the end: Ed25519 needs them */
	int		 n_from;
	char		*from;		/* value of the From field */
	int		 failed;	/* do not sign this message */
	int		 eoh_done;	/* header complete: no more fields */
	int		 last;		/* last body byte, -1 = none */
	DKIM_LIB	*lib;
	const struct mw_dkim_cfg *cfg;
	struct signjob	 job[MW_DKIM_MAX_SIGNERS];
	int		 n;
};

struct mw_dkim_signer *
mw_dkim_signer_new(void)
{
	struct mw_dkim_signer *sg = calloc(1, sizeof(*sg));

	if (sg != NULL)
		sg->last = -1;
	return sg;
}

static void
drop_fields(struct mw_dkim_signer *sg)
{
	size_t i;

	for (i = 0; i < sg->n_fields; i++)
		free(sg->fields[i].text);
	free(sg->fields);
	sg->fields = NULL;
	sg->n_fields = 0;
	sg->bytes = 0;
}

void
mw_dkim_signer_reset(struct mw_dkim_signer *sg)
{
	int i;

	if (sg == NULL)
		return;
	drop_fields(sg);
	for (i = 0; i < sg->n; i++)
		if (sg->job[i].dkim != NULL)
			dkim_free(sg->job[i].dkim);
	memset(sg->job, 0, sizeof(sg->job));
	sg->n = 0;
	free(sg->from);
	sg->from = NULL;
	sg->n_from = 0;
	sg->failed = 0;
	sg->eoh_done = 0;
	sg->keep_fields = 0;
	sg->last = -1;
}

void
mw_dkim_signer_free(struct mw_dkim_signer *sg)
{
	mw_dkim_signer_reset(sg);
	free(sg);
}

static int
add_field(struct mw_dkim_signer *sg, const char *name, const char *value)
{
	struct field *nv;
	size_t len;
	char *t;

	if ((t = mw_dkim_field(name, value, &len)) == NULL ||
	    sg->bytes + len > SIGN_HEADER_MAX ||
	    (nv = realloc(sg->fields, (sg->n_fields + 1) * sizeof(*nv))) ==
	    NULL) {
		free(t);
		return -1;
	}
	sg->fields = nv;
	sg->fields[sg->n_fields].text = t;
	sg->fields[sg->n_fields].len = len;
	sg->n_fields++;
	sg->bytes += len;
	return 0;
}

void
mw_dkim_sign_header(struct mw_dkim_signer *sg, const char *name,
    const char *value)
{
	if (sg->failed || sg->eoh_done)
		return;
	if (mw_header_name_is(name, "From")) {
		sg->n_from++;
		if (sg->from == NULL)
			sg->from = strdup(value);
	}
	if (add_field(sg, name, value) == -1) {
		sg->failed = 1;
		drop_fields(sg);
	}
}

/* The domain of the first address in a From field, lowercase, or -1. */
static int
from_domain(const char *value, char *out, size_t outlen)
{
	unsigned char *copy, *user = NULL, *domain = NULL;
	size_t i;
	int ret = -1;

	if ((copy = (unsigned char *)strdup(value)) == NULL)
		return -1;
	for (i = 0; copy[i] != '\0'; i++)
		if (copy[i] == '\r' || copy[i] == '\n' || copy[i] == '\t')
			copy[i] = ' ';
	if (dkim_mail_parse(copy, &user, &domain) == 0 && domain != NULL &&
	    *domain != '\0' && strlen((char *)domain) < outlen) {
		for (i = 0; domain[i] != '\0'; i++)
			out[i] = (char)tolower(domain[i]);
		out[i] = '\0';
		ret = mw_domain_ok(out, MW_DOMAIN_NO_FINAL_DOT) ? 0 : -1;
	}
	free(copy);
	return ret;
}

/* The keys for a From domain: exact ones, else the closest wildcard. */
static int
pick_keys(const struct mw_dkim_cfg *c, const char *dom,
    const struct mw_dkim_key **out)
{
	const struct mw_dkim_key *best = NULL;
	size_t i, dl = strlen(dom);
	int n = 0;

	for (i = 0; i < c->n_keys && n < MW_DKIM_MAX_SIGNERS; i++)
		if (!c->keys[i].wildcard && strcmp(c->keys[i].domain, dom) == 0)
			out[n++] = &c->keys[i];
	if (n > 0)
		return n;
	for (i = 0; i < c->n_keys; i++) {
		const struct mw_dkim_key *k = &c->keys[i];
		size_t kl = strlen(k->domain);

		if (!k->wildcard || kl >= dl || dom[dl - kl - 1] != '.' ||
		    strcmp(dom + dl - kl, k->domain) != 0)
			continue;
		if (best == NULL || kl > strlen(best->domain))
			best = k;
	}
	if (best == NULL)
		return 0;
	for (i = 0; i < c->n_keys && n < MW_DKIM_MAX_SIGNERS; i++)
		if (c->keys[i].wildcard &&
		    strcmp(c->keys[i].domain, best->domain) == 0)
			out[n++] = &c->keys[i];
	return n;
}

static const char *
canon_name(int canon)
{
	return canon == DKIM_CANON_RELAXED ? "relaxed" : "simple";
}

/*
 * A verifying handle that hashes the fields, the signature field sig
 * ("DKIM-Signature:..." with CRLF breaks) and then the body.  Its one
 * signature never finds a key; only its hashes are of use.
 */
static DKIM *
hash_handle(DKIM_LIB *lib, const struct field *f, size_t n, const char *sig)
{
	DKIM_STAT st;
	DKIM *d;
	size_t i;

	if ((d = dkim_verify(lib, (const unsigned char *)"hash", NULL, &st)) ==
	    NULL)
		return NULL;
	if (dkim_header(d, (u_char *)sig, strlen(sig)) != DKIM_STAT_OK)
		goto fail;
	for (i = 0; i < n; i++)
		(void)dkim_header(d, (u_char *)f[i].text, f[i].len);
	if (dkim_eoh(d) != DKIM_STAT_OK)
		goto fail;
	return d;
fail:
	dkim_free(d);
	return NULL;
}

/* After dkim_eom(): the header and body hashes of the handle's signature. */
static int
hashes(DKIM *d, unsigned char **hh, size_t *hhlen, unsigned char **bh,
    size_t *bhlen)
{
	DKIM_SIGINFO **sigs;
	void *h, *b;
	int n;

	(void)dkim_eom(d, NULL);
	if (dkim_getsiglist(d, &sigs, &n) != DKIM_STAT_OK || n != 1 ||
	    dkim_sig_gethashes(sigs[0], &h, hhlen, &b, bhlen) != DKIM_STAT_OK)
		return -1;
	*hh = h;
	*bh = b;
	return 0;
}

/* Start an Ed25519 signature: the body-hash handle. */
static DKIM *
ed_start(DKIM_LIB *lib, const struct mw_dkim_cfg *c,
    const struct mw_dkim_key *k, const struct field *f, size_t n)
{
	char sig[700];

	/* Only c=, a= (for SHA-256) and the body matter here. */
	snprintf(sig, sizeof(sig), "DKIM-Signature: v=1; a=ed25519-sha256; "
	    "c=%s/%s; d=%s; s=%s; h=From; bh=AAAA; b=AAAA",
	    canon_name(c->header_canon), canon_name(c->body_canon), k->domain,
	    k->selector);
	return hash_handle(lib, f, n, sig);
}

/* The h= list: the fields in sign_headers as they come, then oversigning. */
static int
header_list(const struct mw_dkim_cfg *c, const struct field *f, size_t n,
    char *out, size_t outlen)
{
	size_t i, j, o = 0, line = 6;
	int from = 0;

#define ADD_NAME(p, l) do {						\
	if (o + (l) + 4 >= outlen)					\
		return -1;						\
	if (o > 0) {							\
		out[o++] = ':';						\
		/* Fold long lists between names. */			\
		if (line + (l) > 72) {					\
			memcpy(out + o, "\n\t", 2);			\
			o += 2;						\
			line = 1;					\
		}							\
	}								\
	memcpy(out + o, (p), (l));					\
	o += (l);							\
	line += (l) + 1;						\
} while (0)

	for (i = 0; i < n; i++) {
		const char *colon = memchr(f[i].text, ':', f[i].len);
		size_t l;

		if (colon == NULL)
			continue;
		l = (size_t)(colon - f[i].text);
		while (l > 0 && (f[i].text[l - 1] == ' ' ||
		    f[i].text[l - 1] == '\t'))
			l--;
		for (j = 0; j < c->n_sign_headers; j++)
			if (strlen(c->sign_headers[j]) == l &&
			    strncasecmp(c->sign_headers[j], f[i].text, l) == 0)
				break;
		if (j == c->n_sign_headers || l == 0)
			continue;
		if (l == 4 && strncasecmp(f[i].text, "from", 4) == 0)
			from = 1;
		ADD_NAME(f[i].text, l);
	}
	for (j = 0; j < c->n_oversign_headers; j++)
		ADD_NAME(c->oversign_headers[j], strlen(c->oversign_headers[j]));
#undef ADD_NAME
	out[o] = '\0';
	return from ? 0 : -1;
}

/* Finish an Ed25519 signature: *out gets the field's value (LF folds). */
static int
ed_finish(DKIM_LIB *lib, const struct mw_dkim_cfg *c,
    const struct mw_dkim_key *k, const struct field *f, size_t n,
    DKIM *body, char **out, char *err, size_t errlen)
{
	unsigned char *hh, *bh, sigbuf[64];
	size_t hhlen, bhlen, siglen = sizeof(sigbuf), vlen, flen;
	char bh64[64], b64[100], hlist[4096], *value = NULL, *field = NULL;
	EVP_MD_CTX *md = NULL;
	DKIM *hd = NULL;
	time_t now = c->sign_time > 0 ? (time_t)c->sign_time : time(NULL);
	int ret = -1;

	*out = NULL;
	if (hashes(body, &hh, &hhlen, &bh, &bhlen) == -1 || bhlen != 32) {
		snprintf(err, errlen, "cannot hash the body");
		return -1;
	}
	EVP_EncodeBlock((unsigned char *)bh64, bh, (int)bhlen);
	if (header_list(c, f, n, hlist, sizeof(hlist)) == -1) {
		snprintf(err, errlen, "no From field to sign, or too many "
		    "fields");
		return -1;
	}
	vlen = strlen(hlist) + strlen(k->domain) + strlen(k->selector) + 400;
	if ((value = malloc(vlen)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto done;
	}
	/* Everything but the signature itself, which comes last. */
	snprintf(value, vlen, "v=1; a=ed25519-sha256; c=%s/%s; d=%s; s=%s;\n"
	    "\tt=%lld; bh=%s;\n\th=%s;\n\tb=", canon_name(c->header_canon),
	    canon_name(c->body_canon), k->domain, k->selector,
	    (long long)now, bh64, hlist);
	/*
	 * Hash the field as the MTA will deliver it ("DKIM-Signature: "
	 * and the value); the b= value is taken out of the hash anyway.
	 */
	{
		char *t = mw_dkim_field("DKIM-Signature", value, &flen);

		if (t == NULL || (field = malloc(flen + 8)) == NULL) {
			free(t);
			snprintf(err, errlen, "out of memory");
			goto done;
		}
		snprintf(field, flen + 8, "DKIM-Signature: %sAAAA",
		    t + sizeof("DKIM-Signature:") - 1);
		free(t);
	}
	if ((hd = hash_handle(lib, f, n, field)) == NULL ||
	    hashes(hd, &hh, &hhlen, &bh, &bhlen) == -1 || hhlen != 32) {
		snprintf(err, errlen, "cannot hash the header");
		goto done;
	}
	ERR_clear_error();
	if ((md = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestSignInit(md, NULL, NULL, NULL, k->pkey) != 1 ||
	    EVP_DigestSign(md, sigbuf, &siglen, hh, hhlen) != 1) {
		ssl_error(err, errlen, "Ed25519 signing failed");
		goto done;
	}
	EVP_EncodeBlock((unsigned char *)b64, sigbuf, (int)siglen);
	/* 88 characters: fold once; white space in b= is not hashed. */
	if ((*out = malloc(strlen(value) + strlen(b64) + 4)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto done;
	}
	sprintf(*out, "%s%.*s\n\t %s", value, 64, b64,
	    strlen(b64) > 64 ? b64 + 64 : "");
	ret = 0;
done:
	EVP_MD_CTX_free(md);
	if (hd != NULL)
		dkim_free(hd);
	free(value);
	free(field);
	return ret;
}

void
mw_dkim_sign_eoh(struct mw_dkim_signer *sg, void *vlib,
    const struct mw_dkim_cfg *c, const char *id)
{
	const struct mw_dkim_key *keys[MW_DKIM_MAX_SIGNERS];
	DKIM_LIB *lib = vlib;
	char dom[256];
	size_t f;
	int i, n;

	/* Once per message: a second end of header would add jobs. */
	if (sg->eoh_done)
		return;
	sg->eoh_done = 1;
	if (sg->failed || lib == NULL || !c->sign || c->n_keys == 0)
		goto out;
	sg->lib = lib;
	sg->cfg = c;
	if (sg->n_from != 1 || sg->from == NULL ||
	    from_domain(sg->from, dom, sizeof(dom)) == -1) {
		if (sg->n_from != 1)
			mw_log(LOG_INFO, "%s: not DKIM-signed: %d From fields",
			    id, sg->n_from);
		else
			mw_log(LOG_INFO, "%s: not DKIM-signed: no domain in "
			    "the From field", id);
		goto out;
	}
	if ((n = pick_keys(c, dom, keys)) == 0) {
		mw_log(LOG_DEBUG, "%s: not DKIM-signed: no key for %s", id,
		    dom);
		goto out;
	}
	for (i = 0; i < n; i++) {
		DKIM_STAT st;
		DKIM *d;

		if (keys[i]->alg == DKIM_SIGN_ED25519SHA256) {
			if ((d = ed_start(lib, c, keys[i], sg->fields,
			    sg->n_fields)) == NULL) {
				mw_log(LOG_ERR, "%s: DKIM signing (d=%s s=%s): "
				    "cannot hash the message", id,
				    keys[i]->domain, keys[i]->selector);
				continue;
			}
			sg->keep_fields = 1;
			sg->job[sg->n].key = keys[i];
			sg->job[sg->n++].dkim = d;
			continue;
		}
		d = dkim_sign(lib, (const unsigned char *)id, NULL,
		    (dkim_sigkey_t)keys[i]->pem,
		    (const unsigned char *)keys[i]->selector,
		    (const unsigned char *)keys[i]->domain, c->header_canon,
		    c->body_canon, keys[i]->alg, -1, &st);
		if (d == NULL) {
			mw_log(LOG_ERR, "%s: dkim_sign(%s, %s): %s", id,
			    keys[i]->domain, keys[i]->selector,
			    dkim_getresultstr(st));
			continue;
		}
		for (f = 0; f < sg->n_fields; f++)
			(void)dkim_header(d, (u_char *)sg->fields[f].text,
			    sg->fields[f].len);
		if ((st = dkim_eoh(d)) != DKIM_STAT_OK) {
			mw_log(LOG_ERR, "%s: DKIM signing (d=%s s=%s): %s", id,
			    keys[i]->domain, keys[i]->selector,
			    dkim_geterror(d) ? dkim_geterror(d) :
			    dkim_getresultstr(st));
			dkim_free(d);
			continue;
		}
		sg->job[sg->n].key = keys[i];
		sg->job[sg->n++].dkim = d;
	}
out:
	/* The header now lives in the handles, unless Ed25519 wants it. */
	if (!sg->keep_fields)
		drop_fields(sg);
}

void
mw_dkim_sign_body(struct mw_dkim_signer *sg, const unsigned char *buf,
    size_t len)
{
	int i;

	for (i = 0; i < sg->n; i++)
		(void)dkim_body(sg->job[i].dkim, (u_char *)buf, len);
	if (len > 0)
		sg->last = buf[len - 1];
}

int
mw_dkim_sign_eom(struct mw_dkim_signer *sg, const char *id,
    void (*add)(void *, const struct mw_dkim_key *, const char *), void *arg)
{
	static const size_t prefix = sizeof("DKIM-Signature: ") - 1;
	int i, done = 0, ret = 0;

	for (i = 0; i < sg->n; i++) {
		const struct mw_dkim_key *k = sg->job[i].key;
		DKIM *d = sg->job[i].dkim;
		DKIM_STAT st;
		u_char *hdr;
		size_t len, r, w;
		char *v, err[200];

		/* The MTA delivers the body with a final CRLF: sign that. */
		if (sg->last == '\r')
			(void)dkim_body(d, (u_char *)"\n", 1);
		else if (sg->last != -1 && sg->last != '\n')
			(void)dkim_body(d, (u_char *)"\r\n", 2);
		if (k->alg == DKIM_SIGN_ED25519SHA256) {
			if (ed_finish(sg->lib, sg->cfg, k, sg->fields,
			    sg->n_fields, d, &v, err, sizeof(err)) == -1) {
				mw_log(LOG_ERR, "%s: DKIM signing (d=%s s=%s) "
				    "failed: %s", id, k->domain, k->selector,
				    err);
				ret = -1;
				continue;
			}
			add(arg, k, v);
			free(v);
			done++;
			continue;
		}
		if ((st = dkim_eom(d, NULL)) != DKIM_STAT_OK ||
		    (st = dkim_getsighdr_d(d, prefix, &hdr, &len)) !=
		    DKIM_STAT_OK) {
			mw_log(LOG_ERR, "%s: DKIM signing (d=%s s=%s) failed: "
			    "%s", id, k->domain, k->selector,
			    dkim_geterror(d) ? dkim_geterror(d) :
			    dkim_getresultstr(st));
			ret = -1;
			continue;
		}
		if ((v = malloc(len + 1)) == NULL) {
			ret = -1;
			continue;
		}
		/* The MTA wants bare LF between folded lines, as it gave us. */
		for (r = w = 0; r < len; r++)
			if (!(hdr[r] == '\r' && r + 1 < len &&
			    hdr[r + 1] == '\n'))
				v[w++] = (char)hdr[r];
		v[w] = '\0';
		add(arg, k, v);
		free(v);
		done++;
	}
	drop_fields(sg);
	return ret == -1 && done == 0 ? -1 : done;
}

/* Collect one signature value for mw_dkim_sign_message(). */
static void
keep_one(void *arg, const struct mw_dkim_key *k, const char *value)
{
	char **out = arg;

	(void)k;
	if (*out == NULL)
		*out = strdup(value);
}

int
mw_dkim_sign_message(void *vlib, const struct mw_dkim_cfg *c,
    const struct mw_dkim_key *k, char *const *fields, size_t n,
    const char *body, char **out, char *err, size_t errlen)
{
	struct mw_dkim_cfg one = *c;
	struct mw_dkim_signer *sg;
	size_t i;

	*out = NULL;
	/* The same signer as for mail, with this key only. */
	one.keys = (struct mw_dkim_key *)k;
	one.n_keys = 1;
	one.sign = true;
	if ((sg = mw_dkim_signer_new()) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (i = 0; i < n; i++) {
		const char *colon = strchr(fields[i], ':');
		char *name;

		if (colon == NULL ||
		    (name = strndup(fields[i], (size_t)(colon - fields[i]))) ==
		    NULL)
			continue;
		mw_dkim_sign_header(sg, name, colon + 1);
		free(name);
	}
	mw_dkim_sign_eoh(sg, vlib, &one, "key-check");
	mw_dkim_sign_body(sg, (const unsigned char *)body, strlen(body));
	if (mw_dkim_sign_eom(sg, "key-check", keep_one, out) <= 0 ||
	    *out == NULL) {
		snprintf(err, errlen, "cannot sign with this key (see the log)");
		mw_dkim_signer_free(sg);
		return -1;
	}
	mw_dkim_signer_free(sg);
	return 0;
}
