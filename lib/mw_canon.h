/*
 * mw_canon -- DKIM canonicalization (RFC 6376 section 3.4), for the
 * signatures we verify ourselves (ARC, RFC 8617: ARC-Seal and
 * ARC-Message-Signature are DKIM signatures under other names).
 *
 * Header fields: mw_canon_header() appends one field in "simple" or
 * "relaxed" form to a buffer, given its name and its value as the MTA
 * passed it (folds as LF or CRLF, the leading space kept).
 *
 * Body: a streaming hasher with constant memory whatever the line
 * length: feed the body (CRLF line ends) in chunks of any size, and
 * the canonical form goes into a SHA-256 (or SHA-1) digest as it comes;
 * empty lines are only counted until a line with content follows, so
 * trailing ones never reach the hash.
 *
 *	struct mw_canon_body *cb = mw_canon_body_new(MW_CANON_RELAXED,
 *	    "sha256", -1);		(-1: no l= limit)
 *	mw_canon_body_update(cb, buf, len);	... as chunks arrive
 *	n = mw_canon_body_final(cb, md, &canon_len);	(digest length)
 *	mw_canon_body_free(cb);
 */
#ifndef MW_CANON_H
#define MW_CANON_H

#include <stddef.h>

#include "mw_buf.h"

enum mw_canon { MW_CANON_SIMPLE = 0, MW_CANON_RELAXED = 1 };

/*
 * "relaxed/simple" -> header and body forms; a missing half is simple
 * (RFC 6376 3.5 c=).  0, or -1 if the text is neither.
 */
int	mw_canon_parse(const char *c, enum mw_canon *hdr, enum mw_canon *body);

/*
 * Append "name:value\r\n" in canonical form to b.  value is the field
 * body after the colon, as received; line breaks inside it (LF or CRLF)
 * are folds.  With crlf = 0 the final CRLF is left out (the signature
 * field itself, RFC 6376 3.7).
 */
void	mw_canon_header(struct mw_buf *b, enum mw_canon c, const char *name,
	    const char *value, int crlf);

struct mw_canon_body;

/*
 * A body hasher: md is an OpenSSL digest name ("sha256", "sha1");
 * limit >= 0 hashes only the first limit bytes of the canonical body
 * (l=).  NULL if md is unknown or memory ran out.
 */
struct mw_canon_body *mw_canon_body_new(enum mw_canon c, const char *md,
	    long long limit);
void	mw_canon_body_update(struct mw_canon_body *cb,
	    const unsigned char *buf, size_t len);
/*
 * The digest into out (at least 64 bytes); returns its length, or -1.
 * *total gets the length of the whole canonical body (l= may be longer
 * than it: the caller decides).
 */
int	mw_canon_body_final(struct mw_canon_body *cb, unsigned char *out,
	    unsigned long long *total);
void	mw_canon_body_free(struct mw_canon_body *cb);

#endif /* MW_CANON_H */
