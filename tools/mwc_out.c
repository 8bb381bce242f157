/*
 * mwc_out -- output helpers of mailwarden-check: terminal colours (only
 * when stdout is a terminal), a small pretty-printing JSON writer, and a
 * reader for the Authentication-Results values the session library made
 * (to pick the results of single checks out of them).  See mwc.h.
 */
#include "config.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "mw_text.h"
#include "mwc.h"

/* ---- colours ------------------------------------------------------------ */

const char *
mwc_status_name(enum mwc_status st)
{
	switch (st) {
	case MWC_PASS: return "pass";
	case MWC_INFO: return "info";
	case MWC_SKIP: return "skip";
	case MWC_WARN: return "warn";
	case MWC_FAIL: return "fail";
	}
	return "?";
}

const char *
mwc_c_status(const struct mwc_opts *o, enum mwc_status st)
{
	if (!o->color)
		return "";
	switch (st) {
	case MWC_PASS: return "\033[32m";	/* green */
	case MWC_WARN: return "\033[33m";	/* yellow */
	case MWC_FAIL: return "\033[1;31m";	/* bold red */
	case MWC_INFO: return "\033[36m";	/* cyan */
	case MWC_SKIP: return "\033[2m";	/* dim */
	}
	return "";
}

const char *
mwc_c_bold(const struct mwc_opts *o)
{
	return o->color ? "\033[1m" : "";
}

const char *
mwc_c_dim(const struct mwc_opts *o)
{
	return o->color ? "\033[2m" : "";
}

const char *
mwc_c_off(const struct mwc_opts *o)
{
	return o->color ? "\033[0m" : "";
}

void
mwc_print_safe(FILE *fp, const char *s)
{
	for (; s != NULL && *s != '\0'; s++)
		fputc(mw_printable_char((unsigned char)*s), fp);
}

void
mwc_print_folded(FILE *fp, const char *s)
{
	int prev = 0;

	for (; s != NULL && *s != '\0'; prev = *s++) {
		if ((*s == '\n' && (s[1] == '\t' || s[1] == ' ')) ||
		    (*s == '\t' && prev == '\n'))
			fputc(*s, fp);
		else
			fputc(mw_printable_char((unsigned char)*s), fp);
	}
}

/* ---- JSON --------------------------------------------------------------- */

void
mwc_json_init(struct mwc_json *j, FILE *fp)
{
	memset(j, 0, sizeof(*j));
	j->fp = fp;
	j->first[0] = 1;
}

static void
json_string(FILE *fp, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	fputc('"', fp);
	for (; *p != '\0'; p++) {
		switch (*p) {
		case '"': fputs("\\\"", fp); break;
		case '\\': fputs("\\\\", fp); break;
		case '\n': fputs("\\n", fp); break;
		case '\r': fputs("\\r", fp); break;
		case '\t': fputs("\\t", fp); break;
		default:
			/*
			 * Control characters escaped; bytes >= 0x80 that are
			 * not UTF-8 would make the document invalid: escape
			 * them as U+FFFD.
			 */
			if (*p < 0x20 || *p == 0x7f)
				fprintf(fp, "\\u%04x", *p);
			else if (*p >= 0x80)
				fputs("\\ufffd", fp);
			else
				fputc(*p, fp);
		}
	}
	fputc('"', fp);
}

/* Comma, newline and indent before a value; then "key": if any. */
static void
json_pre(struct mwc_json *j, const char *key)
{
	int i;

	if (j->depth > 0) {
		fputs(j->first[j->depth] ? "\n" : ",\n", j->fp);
		for (i = 0; i < j->depth; i++)
			fputs("  ", j->fp);
	}
	j->first[j->depth] = 0;
	if (key != NULL) {
		json_string(j->fp, key);
		fputs(": ", j->fp);
	}
}

static void
json_open(struct mwc_json *j, const char *key, char c)
{
	json_pre(j, key);
	fputc(c, j->fp);
	if (j->depth + 1 < (int)(sizeof(j->first) / sizeof(j->first[0])))
		j->depth++;
	j->first[j->depth] = 1;
}

static void
json_close(struct mwc_json *j, char c)
{
	int i, empty = j->first[j->depth];

	if (j->depth > 0)
		j->depth--;
	if (!empty) {
		fputc('\n', j->fp);
		for (i = 0; i < j->depth; i++)
			fputs("  ", j->fp);
	}
	fputc(c, j->fp);
}

void
mwc_json_obj(struct mwc_json *j, const char *key)
{
	json_open(j, key, '{');
}

void
mwc_json_arr(struct mwc_json *j, const char *key)
{
	json_open(j, key, '[');
}

void
mwc_json_end_obj(struct mwc_json *j)
{
	json_close(j, '}');
}

void
mwc_json_end_arr(struct mwc_json *j)
{
	json_close(j, ']');
}

void
mwc_json_str(struct mwc_json *j, const char *key, const char *v)
{
	if (v == NULL) {
		mwc_json_null(j, key);
		return;
	}
	json_pre(j, key);
	json_string(j->fp, v);
}

void
mwc_json_int(struct mwc_json *j, const char *key, long long v)
{
	json_pre(j, key);
	fprintf(j->fp, "%lld", v);
}

void
mwc_json_num(struct mwc_json *j, const char *key, double v)
{
	json_pre(j, key);
	if (!isfinite(v))
		fputs("null", j->fp);
	else
		fprintf(j->fp, "%g", v);
}

void
mwc_json_bool(struct mwc_json *j, const char *key, int v)
{
	json_pre(j, key);
	fputs(v ? "true" : "false", j->fp);
}

void
mwc_json_null(struct mwc_json *j, const char *key)
{
	json_pre(j, key);
	fputs("null", j->fp);
}

void
mwc_json_done(struct mwc_json *j)
{
	fputc('\n', j->fp);
}

/* ---- Authentication-Results --------------------------------------------- */

/* Copy at most outlen-1 bytes of [s, s+n) into out. */
static void
copy_n(char *out, size_t outlen, const char *s, size_t n)
{
	if (n >= outlen)
		n = outlen - 1;
	memcpy(out, s, n);
	out[n] = '\0';
}

static void
append_c(char *out, size_t outlen, char c)
{
	size_t n = strlen(out);

	if (n + 1 < outlen) {
		out[n] = c;
		out[n + 1] = '\0';
	}
}

/* Parse one resinfo (whitespace already made single spaces). */
static void
parse_resinfo(const char *s, struct mwc_resinfo *ri)
{
	const char *p = s, *start, *eq, *dot;
	int depth;

	memset(ri, 0, sizeof(*ri));
	copy_n(ri->text, sizeof(ri->text), s, strlen(s));
	while (*p == ' ')
		p++;
	start = p;
	while (*p != '\0' && *p != ' ' && *p != '(')
		p++;
	eq = memchr(start, '=', (size_t)(p - start));
	if (eq == NULL) {
		copy_n(ri->method, sizeof(ri->method), start,
		    (size_t)(p - start));
	} else {
		copy_n(ri->method, sizeof(ri->method), start,
		    (size_t)(eq - start));
		copy_n(ri->result, sizeof(ri->result), eq + 1,
		    (size_t)(p - eq - 1));
	}
	while (*p != '\0') {
		while (*p == ' ')
			p++;
		if (*p == '\0')
			break;
		if (*p == '(') {
			/* A comment, maybe nested, with \-escapes. */
			if (ri->comment[0] != '\0')
				append_c(ri->comment, sizeof(ri->comment), ' ');
			for (depth = 0; *p != '\0'; p++) {
				if (*p == '\\' && p[1] != '\0') {
					append_c(ri->comment,
					    sizeof(ri->comment), *++p);
					continue;
				}
				if (*p == '(' && depth++ == 0)
					continue;
				if (*p == ')' && --depth == 0) {
					p++;
					break;
				}
				append_c(ri->comment, sizeof(ri->comment), *p);
			}
			continue;
		}
		/* ptype.property=value, or reason=value */
		start = p;
		while (*p != '\0' && *p != '=' && *p != ' ')
			p++;
		if (*p != '=') {
			continue;	/* a stray word: skip it */
		}
		eq = p++;
		if (ri->nprops < 8) {
			int i = ri->nprops++;

			dot = memchr(start, '.', (size_t)(eq - start));
			if (dot != NULL) {
				copy_n(ri->ptype[i], sizeof(ri->ptype[i]), start,
				    (size_t)(dot - start));
				copy_n(ri->prop[i], sizeof(ri->prop[i]),
				    dot + 1, (size_t)(eq - dot - 1));
			} else
				copy_n(ri->prop[i], sizeof(ri->prop[i]), start,
				    (size_t)(eq - start));
			if (*p == '"') {
				for (p++; *p != '\0' && *p != '"'; p++) {
					if (*p == '\\' && p[1] != '\0')
						p++;
					append_c(ri->value[i],
					    sizeof(ri->value[i]), *p);
				}
				if (*p == '"')
					p++;
			} else {
				start = p;
				while (*p != '\0' && *p != ' ' && *p != '(')
					p++;
				copy_n(ri->value[i], sizeof(ri->value[i]),
				    start, (size_t)(p - start));
			}
		} else {
			while (*p != '\0' && *p != ' ')
				p++;
		}
	}
}

void
mwc_authres_split(const char *value, void (*fn)(void *,
    const struct mwc_resinfo *), void *arg)
{
	struct mw_buf cur = MW_BUF_INIT(8192);
	struct mwc_resinfo ri;
	const char *p;
	int depth = 0, quoted = 0, segment = 0;

	if (value == NULL)
		return;
	for (p = value;; p++) {
		if (*p == '\0' || (*p == ';' && depth == 0 && !quoted)) {
			const char *s = mw_buf_str(&cur);

			while (*s == ' ')
				s++;
			/* The first segment is the authserv-id. */
			if (segment++ > 0 && *s != '\0' &&
			    strcmp(s, "none") != 0) {
				parse_resinfo(s, &ri);
				fn(arg, &ri);
			}
			mw_buf_reset(&cur);
			if (*p == '\0')
				break;
			continue;
		}
		if (*p == '\\' && (depth > 0 || quoted) && p[1] != '\0') {
			mw_buf_append(&cur, p, 2);
			p++;
			continue;
		}
		if (*p == '"' && depth == 0)
			quoted = !quoted;
		else if (*p == '(' && !quoted)
			depth++;
		else if (*p == ')' && !quoted && depth > 0)
			depth--;
		if (isspace((unsigned char)*p)) {
			/* Folds and runs of space become one space. */
			if (cur.len > 0 && cur.s[cur.len - 1] != ' ')
				mw_buf_append(&cur, " ", 1);
		} else
			mw_buf_append(&cur, p, 1);
	}
	mw_buf_free(&cur);
}

const char *
mwc_resinfo_prop(const struct mwc_resinfo *ri, const char *ptype,
    const char *prop)
{
	int i;

	for (i = 0; i < ri->nprops; i++)
		if (strcmp(ri->ptype[i], ptype) == 0 &&
		    strcmp(ri->prop[i], prop) == 0)
			return ri->value[i];
	return NULL;
}
