/*
 * mw_authres -- Authentication-Results builder and authserv-id matcher.
 * See mw_authres.h.
 *
 * Grammar notes (RFC 8601 section 2.2): a property value is a "value"
 * (RFC 2045 token or quoted-string) or an addr-spec / "@domain".  We
 * write a token when the value is one, the addr-spec form when it is a
 * plain dot-atom@domain, and a quoted-string otherwise.  Control
 * characters and 8-bit bytes never reach the header: they become '?'.
 */
#include "config.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mw_authres.h"
#include "mw_buf.h"
#include "mw_text.h"

#define MW_AR_MAX	(32 * 1024)	/* whole header value, authserv-id too */
#define MW_AR_VALUE_MAX	512		/* one property value */
#define MW_AR_FOLD	76

struct mw_authres {
	char		*id;
	struct mw_buf	 body;		/* resinfos, each starting "\n\t" */
	struct mw_buf	 cur;		/* the resinfo being built */
	struct mw_buf	 out;		/* the finished value */
	struct mw_buf	 summary;
	int		 count;
	int		 dropped;	/* resinfos left out at MW_AR_MAX */
	int		 line_len;	/* length of the current folded line */
	mw_authres_observer *observer;
	void		*observer_arg;
	char		 method[64], result[64];	/* the current resinfo */
};

/* RFC 2045 tspecials, plus space and controls: not in a token. */
static int
is_token_char(int c)
{
	return c > 0x20 && c < 0x7f && strchr("()<>@,;:\\\"/[]?=", c) == NULL;
}

/* RFC 5322 atext (for dot-atom local parts). */
static int
is_atext(int c)
{
	return isalnum(c) || (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c)
	    != NULL);
}

static int
is_token(const char *s)
{
	if (*s == '\0')
		return 0;
	for (; *s != '\0'; s++)
		if (!is_token_char((unsigned char)*s))
			return 0;
	return 1;
}

/* [dot-atom] "@" domain, where domain is letters/digits/-/. */
static int
is_addr_spec(const char *s)
{
	const char *at = strrchr(s, '@');
	const char *p;
	int prev_dot = 1;

	if (at == NULL || at[1] == '\0')
		return 0;
	for (p = s; p < at; p++) {
		if (*p == '.') {
			if (prev_dot)
				return 0;
			prev_dot = 1;
			continue;
		}
		if (!is_atext((unsigned char)*p))
			return 0;
		prev_dot = 0;
	}
	if (p != s && prev_dot)
		return 0;
	for (p = at + 1; *p != '\0'; p++)
		if (!isalnum((unsigned char)*p) && *p != '-' && *p != '.')
			return 0;
	return 1;
}

void
mw_quote_value(const char *in, char *out, size_t outlen)
{
	size_t o = 0, i;

	if (outlen == 0)
		return;
	if (strlen(in) < outlen && (is_token(in) || is_addr_spec(in))) {
		snprintf(out, outlen, "%s", in);
		return;
	}
	/* Quoted string: need room for the closing quote and NUL. */
	if (outlen < 3) {
		out[0] = '\0';
		return;
	}
	out[o++] = '"';
	for (i = 0; in[i] != '\0'; i++) {
		char c = mw_printable_char((unsigned char)in[i]);
		size_t need = (c == '"' || c == '\\') ? 2 : 1;

		if (o + need + 2 > outlen)
			break;
		if (need == 2)
			out[o++] = '\\';
		out[o++] = c;
	}
	out[o++] = '"';
	out[o] = '\0';
}

void
mw_quote_comment(const char *in, char *out, size_t outlen)
{
	size_t o = 0, i;

	if (outlen == 0)
		return;
	for (i = 0; in[i] != '\0'; i++) {
		char c = mw_printable_char((unsigned char)in[i]);
		size_t need = (c == '(' || c == ')' || c == '\\') ? 2 : 1;

		if (o + need + 1 > outlen)
			break;
		if (need == 2)
			out[o++] = '\\';
		out[o++] = c;
	}
	out[o] = '\0';
}

struct mw_authres *
mw_authres_new(const char *authserv_id)
{
	struct mw_authres *ar;
	struct mw_buf init = MW_BUF_INIT(MW_AR_MAX);

	if ((ar = calloc(1, sizeof(*ar))) == NULL)
		return NULL;
	if ((ar->id = strdup(authserv_id)) == NULL) {
		free(ar);
		return NULL;
	}
	ar->body = ar->cur = ar->out = ar->summary = init;
	return ar;
}

void
mw_authres_free(struct mw_authres *ar)
{
	if (ar == NULL)
		return;
	free(ar->id);
	mw_buf_free(&ar->body);
	mw_buf_free(&ar->cur);
	mw_buf_free(&ar->out);
	mw_buf_free(&ar->summary);
	free(ar);
}

/*
 * Append one word of the current resinfo, folding the line before it
 * when it would grow past MW_AR_FOLD.
 */
static void
add_word(struct mw_authres *ar, const char *w)
{
	size_t n = strlen(w);

	if (ar->line_len > 8 && ar->line_len + 1 + (int)n > MW_AR_FOLD) {
		mw_buf_puts(&ar->cur, "\n\t");
		ar->line_len = 8;
	} else {
		mw_buf_puts(&ar->cur, " ");
		ar->line_len++;
	}
	mw_buf_puts(&ar->cur, w);
	ar->line_len += (int)n;
}

/*
 * Add the current resinfo to the header, whole or not at all: one cut at
 * the bound could end inside a quoted string or a comment, or look like
 * a shorter result ("dkim=pass header.d=exa").  What is left out is
 * counted (mw_authres_dropped) and the resinfos before it stay intact.
 */
static void
finish_current(struct mw_authres *ar)
{
	size_t room;

	if (ar->cur.len == 0)
		return;
	/* ";\n\t" before it; cur starts with a space add_word put there. */
	room = ar->body.max - strlen(ar->id) - ar->body.len;
	if (ar->cur.truncated || ar->body.truncated || ar->body.len +
	    strlen(ar->id) > ar->body.max || ar->cur.len + 2 > room)
		ar->dropped++;
	else {
		mw_buf_puts(&ar->body, ";\n\t");
		mw_buf_puts(&ar->body, mw_buf_str(&ar->cur) + 1);
	}
	mw_buf_reset(&ar->cur);
}

void
mw_authres_result(struct mw_authres *ar, const char *method,
    const char *result)
{
	char word[128];

	finish_current(ar);
	/* Method and result are ours, but keep them tokens regardless. */
	snprintf(word, sizeof(word), "%s=%s", method, result);
	ar->line_len = 8;
	mw_buf_puts(&ar->cur, " ");
	mw_buf_puts(&ar->cur, word);
	ar->line_len += (int)strlen(word);
	if (ar->summary.len > 0)
		mw_buf_puts(&ar->summary, " ");
	mw_buf_puts(&ar->summary, word);
	ar->count++;
	snprintf(ar->method, sizeof(ar->method), "%s", method);
	snprintf(ar->result, sizeof(ar->result), "%s", result);
	if (ar->observer != NULL)
		ar->observer(ar->observer_arg, method, result, NULL, NULL, NULL);
}

void
mw_authres_set_observer(struct mw_authres *ar, mw_authres_observer *fn,
    void *arg)
{
	ar->observer = fn;
	ar->observer_arg = arg;
}

void
mw_authres_reason(struct mw_authres *ar, const char *reason)
{
	char v[MW_AR_VALUE_MAX], word[MW_AR_VALUE_MAX + 16];

	if (ar->cur.len == 0)
		return;
	mw_quote_value(reason, v, sizeof(v));
	snprintf(word, sizeof(word), "reason=%s", v);
	add_word(ar, word);
}

void
mw_authres_prop(struct mw_authres *ar, const char *ptype,
    const char *property, const char *value)
{
	char v[MW_AR_VALUE_MAX], word[MW_AR_VALUE_MAX + 64];

	if (ar->cur.len == 0)
		return;
	mw_quote_value(value, v, sizeof(v));
	snprintf(word, sizeof(word), "%s.%s=%s", ptype, property, v);
	add_word(ar, word);
	if (ar->observer != NULL)
		ar->observer(ar->observer_arg, ar->method, ar->result, ptype,
		    property, value);
}

void
mw_authres_comment(struct mw_authres *ar, const char *fmt, ...)
{
	char raw[1024], q[1024], word[1100];
	va_list ap;

	if (ar->cur.len == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(raw, sizeof(raw), fmt, ap);
	va_end(ap);
	mw_quote_comment(raw, q, sizeof(q));
	snprintf(word, sizeof(word), "(%s)", q);
	add_word(ar, word);
}

int
mw_authres_count(const struct mw_authres *ar)
{
	return ar->count;
}

int
mw_authres_dropped(struct mw_authres *ar)
{
	finish_current(ar);
	return ar->dropped;
}

const char *
mw_authres_value(struct mw_authres *ar)
{
	finish_current(ar);
	mw_buf_reset(&ar->out);
	mw_buf_puts(&ar->out, ar->id);
	if (ar->body.len == 0)
		mw_buf_puts(&ar->out, "; none");
	else
		mw_buf_puts(&ar->out, mw_buf_str(&ar->body));
	return mw_buf_str(&ar->out);
}

const char *
mw_authres_summary(struct mw_authres *ar)
{
	return mw_buf_str(&ar->summary);
}

/* Skip whitespace and (nested, escaped) comments; NULL if unterminated. */
static const char *
skip_cfws(const char *p)
{
	for (;;) {
		while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
			p++;
		if (*p != '(')
			return p;
		{
			int depth = 0;

			do {
				if (*p == '\0')
					return NULL;
				if (*p == '\\' && p[1] != '\0')
					p++;
				else if (*p == '(')
					depth++;
				else if (*p == ')')
					depth--;
				p++;
			} while (depth > 0);
		}
	}
}

static int
contains_nocase(const char *hay, const char *needle)
{
	size_t n = strlen(needle);

	for (; *hay != '\0'; hay++)
		if (strncasecmp(hay, needle, n) == 0)
			return 1;
	return 0;
}

/*
 * Same authserv-id, ignoring case and one trailing dot on either side
 * ("mx.example." is the fully qualified spelling of "mx.example").
 */
static int
same_id(const char *a, const char *b)
{
	size_t na = strlen(a), nb = strlen(b);

	if (na > 0 && a[na - 1] == '.')
		na--;
	if (nb > 0 && b[nb - 1] == '.')
		nb--;
	return na == nb && na > 0 && strncasecmp(a, b, na) == 0;
}

int
mw_authres_claims_id(const char *value, const char *authserv_id)
{
	const char *p = skip_cfws(value);
	char id[256];
	size_t n = 0;

	if (p == NULL)
		return contains_nocase(value, authserv_id);
	if (*p == '"') {
		/* authserv-id may be a quoted-string. */
		for (p++; *p != '\0' && *p != '"'; p++) {
			if (*p == '\\' && p[1] != '\0')
				p++;
			if (n < sizeof(id) - 1)
				id[n++] = *p;
		}
		if (*p != '"')
			return contains_nocase(value, authserv_id);
	} else {
		while (*p != '\0' && is_token_char((unsigned char)*p) &&
		    n < sizeof(id) - 1)
			id[n++] = *p++;
	}
	id[n] = '\0';
	return same_id(id, authserv_id);
}
