/*
 * mw_rfc5322 -- RFC 5322 sanity of the message itself, section [message].
 *
 * Looks at every header field and the body as they stream by (nothing
 * is buffered) and, at end of message, gives each defect found its
 * configured action (a score by default):
 *
 *	no-date		no Date field (RFC 5322 3.6: exactly one)
 *	no-from		no From field (exactly one; a second From is left
 *			to DMARC's bad_from_action)
 *	duplicate	more than one Date, Sender, To, Cc, Subject,
 *			Message-ID, In-Reply-To or References field
 *	bad-date	a Date that is not RFC 5322 3.3 date-time
 *	no-message-id	no Message-ID (RFC 5322 says SHOULD; the large
 *			receivers want one)
 *	bad-message-id	a Message-ID that is not <left@right>
 *	8bit-header	bytes over 127 in the header while the client did not
 *			say SMTPUTF8 at MAIL FROM (RFC 6531)
 *	bare-cr-lf	a CR not followed by LF, or an LF not after a CR, in
 *			the header or body (the SMTP smuggling class: the MTA
 *			and a later hop may disagree on where data ends)
 *
 * In Authentication-Results: x-rfc5322=pass, or
 *	x-rfc5322=fail policy.rfc5322=no-date (Date missing; ...)
 * with the first defect as the property and all of them in the comment.
 */
#include "config.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mw_authres.h"
#include "mw_session_priv.h"

enum msg_defect {
	MD_NO_DATE = 0, MD_NO_FROM, MD_DUPLICATE, MD_BAD_DATE,
	MD_NO_MESSAGE_ID, MD_BAD_MESSAGE_ID, MD_8BIT_HEADER, MD_BARE_CRLF,
	MD_COUNT
};

static const struct {
	const char	*name;		/* policy.rfc5322 value */
	const char	*key;		/* ini key of its action */
	const char	*text;		/* reject text */
} defects[MD_COUNT] = {
	[MD_NO_DATE] = { "no-date", "missing_date_action",
	    "Date header field missing" },
	[MD_NO_FROM] = { "no-from", "missing_from_action",
	    "From header field missing" },
	[MD_DUPLICATE] = { "duplicate", "duplicate_action",
	    "header field that may occur once occurs more than once" },
	[MD_BAD_DATE] = { "bad-date", "bad_date_action",
	    "Date header field not in RFC 5322 format" },
	[MD_NO_MESSAGE_ID] = { "no-message-id", "missing_message_id_action",
	    "Message-ID header field missing" },
	[MD_BAD_MESSAGE_ID] = { "bad-message-id", "bad_message_id_action",
	    "Message-ID header field not in RFC 5322 format" },
	[MD_8BIT_HEADER] = { "8bit-header", "eightbit_header_action",
	    "8-bit characters in the header without SMTPUTF8" },
	[MD_BARE_CRLF] = { "bare-cr-lf", "bare_crlf_action",
	    "bare CR or LF line ending" },
};

/* Fields that may occur at most once (RFC 5322 3.6, the table). */
static const char *const once_fields[] = {
	"Date", "From", "Sender", "To", "Cc", "Subject", "Message-ID",
	"In-Reply-To", "References",
};
#define N_ONCE	(sizeof(once_fields) / sizeof(once_fields[0]))

struct message_cfg {
	struct mw_action	action[MD_COUNT];
};

struct message_state {
	int		 active;	/* this message is looked at */
	unsigned	 count[N_ONCE];
	int		 found[MD_COUNT];
	char		 dup[32];	/* first duplicated field */
	int		 body_cr;	/* the last body byte was CR */
	int		 where_crlf;	/* 1 header, 2 body */
	int		 done;		/* acted on (end of message) */
};

static void
message_cfg_init(void *vc)
{
	struct message_cfg *c = vc;
	static const double score[MD_COUNT] = {
		[MD_NO_DATE] = 1, [MD_NO_FROM] = 3, [MD_DUPLICATE] = 2,
		[MD_BAD_DATE] = 1, [MD_NO_MESSAGE_ID] = 0,
		[MD_BAD_MESSAGE_ID] = 1, [MD_8BIT_HEADER] = 2,
		[MD_BARE_CRLF] = 3,
	};
	int i;

	for (i = 0; i < MD_COUNT; i++) {
		c->action[i].kind = score[i] > 0 ? MW_ACT_SCORE : MW_ACT_ACCEPT;
		c->action[i].score = score[i];
	}
}

static int
message_cfg_set(void *vc, const char *k, const char *v, char *err,
    size_t errlen)
{
	struct message_cfg *c = vc;
	int i;

	for (i = 0; i < MD_COUNT; i++)
		if (strcmp(k, defects[i].key) == 0)
			return mw_action_parse(&c->action[i], v, err, errlen);
	return 1;
}

static void
message_cfg_dump(const void *vc, void *fp)
{
	const struct message_cfg *c = vc;
	char b[32];
	int i;

	for (i = 0; i < MD_COUNT; i++)
		fprintf(fp, "%s = %s\n", defects[i].key,
		    mw_action_name(&c->action[i], b, sizeof(b)));
}

/* Skip whitespace and (nested) comments; NULL on an unclosed comment. */
static const char *
skip_cfws(const char *p)
{
	int depth;

	for (;;) {
		while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
			p++;
		if (*p != '(')
			return p;
		for (depth = 0; *p != '\0'; p++) {
			if (*p == '\\' && p[1] != '\0')
				p++;
			else if (*p == '(')
				depth++;
			else if (*p == ')' && --depth == 0) {
				p++;
				break;
			}
		}
		if (depth > 0)
			return NULL;
	}
}

/* n digits (min..max of them) into *v; the end, or NULL. */
static const char *
digits(const char *p, int min, int max, long *v)
{
	int n = 0;

	*v = 0;
	while (isdigit((unsigned char)*p) && n < max) {
		*v = *v * 10 + (*p++ - '0');
		n++;
	}
	return n >= min && !isdigit((unsigned char)*p) ? p : NULL;
}

/*
 * RFC 5322 3.3 date-time, with the obsolete forms of 4.3 that real
 * mailers still send (two-digit years, alphabetic zones).  1 if valid.
 */
static int
date_valid(const char *v)
{
	static const char *const days[] = { "Mon", "Tue", "Wed", "Thu",
	    "Fri", "Sat", "Sun" };
	static const char *const months[] = { "Jan", "Feb", "Mar", "Apr",
	    "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	static const char *const zones[] = { "UT", "GMT", "EST", "EDT",
	    "CST", "CDT", "MST", "MDT", "PST", "PDT" };
	const char *p = skip_cfws(v);
	long day, year, hh, mm, ss = 0, tz;
	size_t i;

	if (p == NULL)
		return 0;
	if (isalpha((unsigned char)*p)) {
		for (i = 0; i < 7; i++)
			if (strncasecmp(p, days[i], 3) == 0)
				break;
		if (i == 7 || (p = skip_cfws(p + 3)) == NULL || *p != ',')
			return 0;
		if ((p = skip_cfws(p + 1)) == NULL)
			return 0;
	}
	if ((p = digits(p, 1, 2, &day)) == NULL || day < 1 || day > 31)
		return 0;
	if ((p = skip_cfws(p)) == NULL)
		return 0;
	for (i = 0; i < 12; i++)
		if (strncasecmp(p, months[i], 3) == 0)
			break;
	if (i == 12 || isalpha((unsigned char)p[3]))
		return 0;
	if ((p = skip_cfws(p + 3)) == NULL ||
	    (p = digits(p, 2, 4, &year)) == NULL)
		return 0;
	if ((p = skip_cfws(p)) == NULL || (p = digits(p, 2, 2, &hh)) == NULL ||
	    hh > 23 || (p = skip_cfws(p)) == NULL || *p != ':' ||
	    (p = skip_cfws(p + 1)) == NULL ||
	    (p = digits(p, 2, 2, &mm)) == NULL || mm > 59 ||
	    (p = skip_cfws(p)) == NULL)
		return 0;
	if (*p == ':') {
		if ((p = skip_cfws(p + 1)) == NULL ||
		    (p = digits(p, 2, 2, &ss)) == NULL || ss > 60 ||
		    (p = skip_cfws(p)) == NULL)
			return 0;
	}
	if (*p == '+' || *p == '-') {
		if ((p = digits(p + 1, 4, 4, &tz)) == NULL || tz % 100 > 59)
			return 0;
	} else {
		size_t n = 0;

		while (isalpha((unsigned char)p[n]))
			n++;
		if (n == 0)
			return 0;
		for (i = 0; i < sizeof(zones) / sizeof(zones[0]); i++)
			if (strlen(zones[i]) == n &&
			    strncasecmp(p, zones[i], n) == 0)
				break;
		/* military zones: one letter, J excepted */
		if (i == sizeof(zones) / sizeof(zones[0]) && !(n == 1 &&
		    toupper((unsigned char)*p) != 'J'))
			return 0;
		p += n;
	}
	return (p = skip_cfws(p)) != NULL && *p == '\0';
}

static int
is_atext(int c)
{
	return isalnum(c) || (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c));
}

/* dot-atom-text from p up to end; 1 if it is one. */
static int
dot_atom(const char *p, const char *end)
{
	int prev_dot = 1;

	if (p >= end)
		return 0;
	for (; p < end; p++) {
		if (*p == '.') {
			if (prev_dot)
				return 0;
			prev_dot = 1;
		} else if (is_atext((unsigned char)*p))
			prev_dot = 0;
		else
			return 0;
	}
	return !prev_dot;
}

/* RFC 5322 3.6.4 msg-id: "<" id-left "@" id-right ">", CFWS around. */
static int
message_id_valid(const char *v)
{
	const char *p = skip_cfws(v), *lt, *gt, *at, *q;

	if (p == NULL || *p != '<')
		return 0;
	lt = p + 1;
	if ((gt = strchr(lt, '>')) == NULL)
		return 0;
	if ((q = skip_cfws(gt + 1)) == NULL || *q != '\0')
		return 0;
	if (*lt == '"') {
		/* obsolete quoted id-left: up to the closing quote */
		for (q = lt + 1; q < gt && *q != '"'; q++)
			if (*q == '\\')
				q++;
		if (q >= gt || q[1] != '@')
			return 0;
		at = q + 1;
	} else {
		if ((at = memchr(lt, '@', (size_t)(gt - lt))) == NULL ||
		    !dot_atom(lt, at))
			return 0;
	}
	if (at[1] == '[') {
		for (q = at + 2; q < gt - 1; q++)
			if ((unsigned char)*q < 33 || (unsigned char)*q > 126 ||
			    *q == '[' || *q == ']' || *q == '\\')
				return 0;
		return gt[-1] == ']' && gt - at > 2;
	}
	return dot_atom(at + 1, gt);
}

/* A CR not before LF, or an LF that is neither after CR nor a fold. */
static int
has_bare_crlf(const char *v)
{
	const char *p;

	for (p = v; *p != '\0'; p++) {
		if (*p == '\r' && p[1] != '\n')
			return 1;
		/*
		 * MTAs hand folded values over with "\n" (or "\r\n") before
		 * the whitespace of the next line: that is a fold, anything
		 * else is an LF with nothing to do in a field.
		 */
		if (*p == '\n' && p[1] != ' ' && p[1] != '\t')
			return 1;
	}
	return 0;
}

static int
has_8bit(const char *v)
{
	for (; *v != '\0'; v++)
		if ((unsigned char)*v > 127)
			return 1;
	return 0;
}

static void
message_on_mail(struct mw_session *s, const void *vc, void *vst)
{
	struct message_state *st = vst;

	(void)s;
	(void)vc;
	memset(st, 0, sizeof(*st));
	st->active = 1;
}

static void
message_on_header(struct mw_session *s, const void *vc, void *vst,
    const char *name, const char *value)
{
	struct message_state *st = vst;
	size_t i;

	(void)vc;
	if (!st->active)
		return;
	for (i = 0; i < N_ONCE; i++) {
		if (strcasecmp(name, once_fields[i]) != 0)
			continue;
		st->count[i]++;
		/* a second From is DMARC's (bad_from_action) */
		if (st->count[i] == 2 && strcmp(once_fields[i], "From") != 0 &&
		    !st->found[MD_DUPLICATE]) {
			st->found[MD_DUPLICATE] = 1;
			snprintf(st->dup, sizeof(st->dup), "%s",
			    once_fields[i]);
		}
		if (strcmp(once_fields[i], "Date") == 0 && !date_valid(value))
			st->found[MD_BAD_DATE] = 1;
		if (strcmp(once_fields[i], "Message-ID") == 0 &&
		    !message_id_valid(value))
			st->found[MD_BAD_MESSAGE_ID] = 1;
	}
	if (!s->smtputf8 && (has_8bit(name) || has_8bit(value)))
		st->found[MD_8BIT_HEADER] = 1;
	if (has_bare_crlf(name) || has_bare_crlf(value)) {
		st->found[MD_BARE_CRLF] = 1;
		if (st->where_crlf == 0)
			st->where_crlf = 1;
	}
}

static void
message_on_eoh(struct mw_session *s, const void *vc, void *vst)
{
	struct message_state *st = vst;
	size_t i;

	(void)s;
	(void)vc;
	if (!st->active)
		return;
	for (i = 0; i < N_ONCE; i++) {
		if (st->count[i] > 0)
			continue;
		if (strcmp(once_fields[i], "Date") == 0)
			st->found[MD_NO_DATE] = 1;
		else if (strcmp(once_fields[i], "From") == 0)
			st->found[MD_NO_FROM] = 1;
		else if (strcmp(once_fields[i], "Message-ID") == 0)
			st->found[MD_NO_MESSAGE_ID] = 1;
	}
}

static void
message_on_body(struct mw_session *s, const void *vc, void *vst,
    const unsigned char *buf, size_t len)
{
	struct message_state *st = vst;
	size_t i;

	(void)s;
	(void)vc;
	if (!st->active || st->found[MD_BARE_CRLF])
		return;
	for (i = 0; i < len; i++) {
		if (st->body_cr && buf[i] != '\n')
			break;
		if (buf[i] == '\n' && !st->body_cr)
			break;
		st->body_cr = buf[i] == '\r';
	}
	if (i < len) {
		st->found[MD_BARE_CRLF] = 1;
		st->where_crlf = 2;
	}
}

/* The defects found, for the A-R comment and the log. */
static void
describe(const struct message_state *st, char *out, size_t outlen)
{
	size_t n = 0;
	int i;

	out[0] = '\0';
	for (i = 0; i < MD_COUNT && n < outlen; i++) {
		if (!st->found[i])
			continue;
		if (i == MD_DUPLICATE)
			n += (size_t)snprintf(out + n, outlen - n, "%s%s "
			    "header field more than once", n ? "; " : "",
			    st->dup);
		else if (i == MD_BARE_CRLF)
			n += (size_t)snprintf(out + n, outlen - n, "%sbare CR "
			    "or LF in the %s", n ? "; " : "",
			    st->where_crlf == 1 ? "header" : "body");
		else
			n += (size_t)snprintf(out + n, outlen - n, "%s%s",
			    n ? "; " : "", defects[i].text);
	}
}

static void
message_on_eom(struct mw_session *s, const void *vc, void *vst)
{
	const struct message_cfg *c = vc;
	struct message_state *st = vst;
	int i;

	if (!st->active)
		return;
	/* a body that ended on a CR */
	if (st->body_cr && !st->found[MD_BARE_CRLF]) {
		st->found[MD_BARE_CRLF] = 1;
		st->where_crlf = 2;
	}
	st->done = 1;
	for (i = 0; i < MD_COUNT; i++) {
		if (!st->found[i])
			continue;
		mw_session_note(s, "message", "%s", defects[i].name);
		if (c->action[i].kind == MW_ACT_SCORE)
			mw_session_act(s, &c->action[i], 550, "5.6.0",
			    "message %s", defects[i].name);
		else if (i == MD_DUPLICATE)
			mw_session_act(s, &c->action[i], 550, "5.6.0",
			    "Message not in RFC 5322 format: %s header field "
			    "more than once", st->dup);
		else
			mw_session_act(s, &c->action[i], 550, "5.6.0",
			    "Message not in RFC 5322 format: %s",
			    defects[i].text);
	}
}

static void
message_authres(struct mw_session *s, const void *vc, void *vst,
    struct mw_authres *ar)
{
	struct message_state *st = vst;
	char why[512];
	int i;

	(void)s;
	(void)vc;
	if (!st->done)
		return;
	for (i = 0; i < MD_COUNT && !st->found[i]; i++)
		;
	if (i == MD_COUNT) {
		mw_authres_result(ar, "x-rfc5322", "pass");
		return;
	}
	mw_authres_result(ar, "x-rfc5322", "fail");
	mw_authres_prop(ar, "policy", "rfc5322", defects[i].name);
	describe(st, why, sizeof(why));
	mw_authres_comment(ar, "%s", why);
}

static void
message_on_reset(struct mw_session *s, const void *vc, void *vst)
{
	(void)s;
	(void)vc;
	memset(vst, 0, sizeof(struct message_state));
}

const struct mw_module mw_module_message = {
	.name = "message",
	.inbound = 1,
	/* Off unless configured; the sample mailwarden.ini turns it on. */
	.off_by_default = 1,
	.cfg_size = sizeof(struct message_cfg),
	.cfg_init = message_cfg_init,
	.cfg_set = message_cfg_set,
	.cfg_dump = message_cfg_dump,
	.state_size = sizeof(struct message_state),
	.on_mail = message_on_mail,
	.on_header = message_on_header,
	.on_eoh = message_on_eoh,
	.on_body = message_on_body,
	.on_eom = message_on_eom,
	.authres = message_authres,
	.on_reset = message_on_reset,
};
