/*
 * mw_buf -- bounded growing string buffer.  See mw_buf.h.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mw_buf.h"

void
mw_buf_append(struct mw_buf *b, const char *s, size_t n)
{
	if (b->len + n > b->max) {
		b->truncated = 1;
		n = b->max > b->len ? b->max - b->len : 0;
	}
	if (b->len + n + 1 > b->cap) {
		size_t ncap = b->cap ? b->cap : 128;
		char *ns;

		while (ncap < b->len + n + 1)
			ncap *= 2;
		if ((ns = realloc(b->s, ncap)) == NULL) {
			b->truncated = 1;
			return;
		}
		b->s = ns;
		b->cap = ncap;
	}
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
}

void
mw_buf_puts(struct mw_buf *b, const char *s)
{
	mw_buf_append(b, s, strlen(s));
}

void
mw_buf_printf(struct mw_buf *b, const char *fmt, ...)
{
	va_list ap;
	char small[256], *big;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n < sizeof(small)) {
		mw_buf_append(b, small, (size_t)n);
		return;
	}
	if ((big = malloc((size_t)n + 1)) == NULL) {
		b->truncated = 1;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(big, (size_t)n + 1, fmt, ap);
	va_end(ap);
	mw_buf_append(b, big, (size_t)n);
	free(big);
}

void
mw_buf_reset(struct mw_buf *b)
{
	b->len = 0;
	b->truncated = 0;
	if (b->s != NULL)
		b->s[0] = '\0';
}

void
mw_buf_free(struct mw_buf *b)
{
	free(b->s);
	b->s = NULL;
	b->len = b->cap = 0;
	b->truncated = 0;
}

const char *
mw_buf_str(const struct mw_buf *b)
{
	return b->s != NULL ? b->s : "";
}
