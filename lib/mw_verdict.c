/*
 * mw_verdict -- actions and verdicts.  See mw_verdict.h.
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mw_verdict.h"

int
mw_action_parse(struct mw_action *a, const char *s, char *err, size_t errlen)
{
	char *end;
	double d;

	a->score = 0;
	if (strcmp(s, "accept") == 0 || strcmp(s, "annotate") == 0) {
		a->kind = MW_ACT_ACCEPT;
		return 0;
	}
	if (strcmp(s, "tempfail") == 0) {
		a->kind = MW_ACT_TEMPFAIL;
		return 0;
	}
	if (strcmp(s, "reject") == 0) {
		a->kind = MW_ACT_REJECT;
		return 0;
	}
	errno = 0;
	d = strtod(s, &end);
	if (*s == '\0' || *end != '\0' || errno != 0 || !isfinite(d) ||
	    d > 1000 || d < -1000) {
		snprintf(err, errlen, "bad action \"%s\": expected accept, "
		    "tempfail, reject or a score between -1000 and 1000", s);
		return -1;
	}
	a->kind = MW_ACT_SCORE;
	a->score = d;
	return 0;
}

const char *
mw_action_name(const struct mw_action *a, char *buf, size_t len)
{
	switch (a->kind) {
	case MW_ACT_ACCEPT:
		return "accept";
	case MW_ACT_TEMPFAIL:
		return "tempfail";
	case MW_ACT_REJECT:
		return "reject";
	case MW_ACT_SCORE:
		snprintf(buf, len, "score %g", a->score);
		return buf;
	}
	return "?";
}

void
mw_verdict_set(struct mw_verdict *v, enum mw_verdict_kind kind, int code,
    const char *xcode, const char *fmt, ...)
{
	va_list ap;
	char *p;

	v->kind = kind;
	v->code = code;
	snprintf(v->xcode, sizeof(v->xcode), "%s", xcode != NULL ? xcode : "");
	va_start(ap, fmt);
	vsnprintf(v->text, sizeof(v->text), fmt, ap);
	va_end(ap);
	/* The text ends up on an SMTP reply line: no line breaks in it. */
	for (p = v->text; *p != '\0'; p++)
		if (*p == '\r' || *p == '\n' || (unsigned char)*p < 0x20)
			*p = ' ';
}

const char *
mw_verdict_name(enum mw_verdict_kind k)
{
	switch (k) {
	case MW_CONTINUE:
		return "continue";
	case MW_ACCEPT:
		return "accept";
	case MW_TEMPFAIL:
		return "tempfail";
	case MW_REJECT:
		return "reject";
	}
	return "?";
}
