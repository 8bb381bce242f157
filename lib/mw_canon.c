/*
 * mw_canon -- DKIM canonicalization (RFC 6376 3.4) of header fields and
 * of a streamed body into a digest, for the ARC verifier (mw_arc.c).
 * Interface and usage in mw_canon.h.
 *
 * The body hasher keeps a few counters, never a line: a run of white
 * space (relaxed) is a flag until a byte of content follows, a CR is
 * held until we see whether an LF follows, and empty lines are a count
 * until a line with content comes (RFC 6376 3.4.3: trailing empty lines
 * are dropped; 3.4.4: relaxed also drops white space at line ends).
 */
#include "config.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "mw_canon.h"

int
mw_canon_parse(const char *c, enum mw_canon *hdr, enum mw_canon *body)
{
	const char *slash = strchr(c, '/');
	size_t n = slash != NULL ? (size_t)(slash - c) : strlen(c);
	int i;
	enum mw_canon *which[2] = { hdr, body };
	const char *part[2];
	size_t len[2];

	part[0] = c;
	len[0] = n;
	part[1] = slash != NULL ? slash + 1 : "simple";
	len[1] = strlen(part[1]);
	for (i = 0; i < 2; i++) {
		if (len[i] == 6 && strncasecmp(part[i], "simple", 6) == 0)
			*which[i] = MW_CANON_SIMPLE;
		else if (len[i] == 7 && strncasecmp(part[i], "relaxed", 7) == 0)
			*which[i] = MW_CANON_RELAXED;
		else
			return -1;
	}
	return 0;
}

void
mw_canon_header(struct mw_buf *b, enum mw_canon c, const char *name,
    const char *value, int crlf)
{
	const char *p;
	size_t n;
	int wsp = 0, started = 0;

	if (c == MW_CANON_SIMPLE) {
		mw_buf_puts(b, name);
		mw_buf_puts(b, ":");
		for (p = value; *p != '\0'; p++) {
			if (*p == '\n' && (p == value || p[-1] != '\r'))
				mw_buf_append(b, "\r\n", 2);
			else
				mw_buf_append(b, p, 1);
		}
		if (crlf)
			mw_buf_append(b, "\r\n", 2);
		return;
	}
	/* relaxed: lower-case name without white space around it */
	n = strlen(name);
	while (n > 0 && (name[n - 1] == ' ' || name[n - 1] == '\t'))
		n--;
	for (p = name; p < name + n; p++) {
		char ch = (char)tolower((unsigned char)*p);

		mw_buf_append(b, &ch, 1);
	}
	mw_buf_puts(b, ":");
	for (p = value; *p != '\0'; p++) {
		if (*p == '\r' && p[1] == '\n')
			continue;	/* unfold */
		if (*p == '\n')
			continue;
		if (*p == ' ' || *p == '\t') {
			wsp = 1;
			continue;
		}
		if (wsp && started)
			mw_buf_append(b, " ", 1);
		wsp = 0;
		started = 1;
		mw_buf_append(b, p, 1);
	}
	if (crlf)
		mw_buf_append(b, "\r\n", 2);
}

struct mw_canon_body {
	enum mw_canon		 c;
	EVP_MD_CTX		*md;
	long long		 limit;		/* -1: none */
	unsigned long long	 total;		/* canonical bytes so far */
	unsigned long long	 blanks;	/* empty lines held back */
	unsigned long long	 line;		/* content bytes this line */
	int			 wsp;		/* relaxed: white space pending */
	int			 cr;		/* a CR held back */
};

struct mw_canon_body *
mw_canon_body_new(enum mw_canon c, const char *md, long long limit)
{
	struct mw_canon_body *cb;
	const EVP_MD *m = EVP_get_digestbyname(md);

	if (m == NULL || (cb = calloc(1, sizeof(*cb))) == NULL)
		return NULL;
	cb->c = c;
	cb->limit = limit;
	if ((cb->md = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestInit_ex(cb->md, m, NULL) != 1) {
		mw_canon_body_free(cb);
		return NULL;
	}
	return cb;
}

/* Canonical bytes out: counted, and hashed up to the limit. */
static void
emit(struct mw_canon_body *cb, const void *p, size_t n)
{
	size_t h = n;

	if (cb->limit >= 0) {
		unsigned long long left = (unsigned long long)cb->limit >
		    cb->total ? (unsigned long long)cb->limit - cb->total : 0;

		if (h > left)
			h = (size_t)left;
	}
	if (h > 0)
		(void)EVP_DigestUpdate(cb->md, p, h);
	cb->total += n;
}

/* A byte of line content (not the CRLF that ends it). */
static void
content(struct mw_canon_body *cb, const unsigned char *p, size_t n)
{
	if (cb->line == 0)
		for (; cb->blanks > 0; cb->blanks--)
			emit(cb, "\r\n", 2);
	if (cb->wsp) {
		emit(cb, " ", 1);
		cb->line++;
		cb->wsp = 0;
	}
	emit(cb, p, n);
	cb->line += n;
}

static void
end_line(struct mw_canon_body *cb)
{
	cb->wsp = 0;		/* relaxed: white space at the end goes */
	if (cb->line == 0)
		cb->blanks++;
	else
		emit(cb, "\r\n", 2);
	cb->line = 0;
}

void
mw_canon_body_update(struct mw_canon_body *cb, const unsigned char *buf,
    size_t len)
{
	size_t i, start;

	if (cb == NULL)
		return;
	for (i = 0; i < len; ) {
		unsigned char ch = buf[i];

		if (cb->cr) {
			cb->cr = 0;
			if (ch == '\n') {
				end_line(cb);
				i++;
				continue;
			}
			content(cb, (const unsigned char *)"\r", 1);
		}
		if (ch == '\r') {
			cb->cr = 1;
			i++;
			continue;
		}
		if (cb->c == MW_CANON_RELAXED && (ch == ' ' || ch == '\t')) {
			cb->wsp = 1;
			i++;
			continue;
		}
		/* A run of plain content bytes goes out in one piece. */
		start = i;
		while (i < len && buf[i] != '\r' && (cb->c ==
		    MW_CANON_SIMPLE || (buf[i] != ' ' && buf[i] != '\t')))
			i++;
		content(cb, buf + start, i - start);
	}
}

int
mw_canon_body_final(struct mw_canon_body *cb, unsigned char *out,
    unsigned long long *total)
{
	unsigned int n = 0;

	if (cb == NULL)
		return -1;
	if (cb->cr) {
		cb->cr = 0;
		content(cb, (const unsigned char *)"\r", 1);
	}
	/* An unterminated last line is terminated. */
	if (cb->line > 0)
		end_line(cb);
	/* simple: an empty body is one CRLF (RFC 6376 3.4.3) */
	if (cb->c == MW_CANON_SIMPLE && cb->total == 0)
		emit(cb, "\r\n", 2);
	if (total != NULL)
		*total = cb->total;
	if (EVP_DigestFinal_ex(cb->md, out, &n) != 1)
		return -1;
	return (int)n;
}

void
mw_canon_body_free(struct mw_canon_body *cb)
{
	if (cb == NULL)
		return;
	EVP_MD_CTX_free(cb->md);
	free(cb);
}
