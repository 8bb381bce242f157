/*
 * mw_spf -- SPF (RFC 7208) for the MAIL FROM and HELO identities, with
 * libspf2; section [spf].
 *
 * At MAIL FROM (on_mail) we evaluate the sender's domain, or for the null
 * sender <> postmaster@<HELO name> (RFC 7208 section 2.4), and unless
 * turned off the HELO name as a second, separate result.  Loopback
 * clients are evaluated like any other (spf_query).  The result maps to a
 * configured action that the session holds until RCPT (or end of data,
 * reject_at = data); at end of message we add our Authentication-Results
 * resinfo and a Received-SPF header.  DMARC reads s->res.spf*.
 *
 * libspf2 is used through one SPF_server_t for the whole process
 * (global_new), built on a DNS layer of our own (SPF_dns_server_t with
 * our lookup and get_spf functions) that asks every question through
 * mw_dns, so that [dns] nameservers, timeouts and the cache apply.
 *
 * Why a thread-local pointer: the SPF server and its DNS layer are shared
 * by all threads, and libspf2 calls our lookup function with nothing but
 * (layer, name, type): there is no per-request context argument.  The
 * per-evaluation state (the session's DNS batch, the lookup counters) is
 * therefore reached through spf_current, a __thread pointer that
 * spf_evaluate() sets just around SPF_request_query_mailfrom() and clears
 * after it.  libspf2 is synchronous, so every callback of one query runs
 * on the thread that set the pointer.
 *
 * What our layer does that libspf2 does not (RFC 7208 conformance, and
 * defence against hostile records):
 *  - record lookup: TXT only (section 3), exactly one "v=spf1" record
 *    (4.5), validated against the RFC 7208 ABNF before libspf2 compiles
 *    it (libspf2 accepts many syntax errors: unknown %-escapes, bad
 *    toplabels, duplicate redirect=, non-ASCII, ...);
 *  - the record is handed to libspf2 rewritten: redirect= moved to the
 *    end (or dropped when the record has "all", 6.1), unknown modifiers
 *    dropped (they are ignored, 6), prefix lengths of /0, which libspf2
 *    cannot represent, carried out of band (see CIDR0_MARK_LEN);
 *  - processing limits (4.6.4), counted over the whole evaluation,
 *    includes too: 10 DNS-querying terms, 2 void lookups; at most 10 PTR
 *    names are looked at (the rest ignored, libspf2 would permerror);
 *    errors looking up a PTR name make it not match (5.5);
 *  - names over 253 octets are shortened from the left (7.3);
 *  - the explanation TXT record is used only if it is the only one and
 *    valid (6.2), with its spaces written as "%_" (libspf2 garbles
 *    literal spaces);
 *  - a time limit on the checks of one MAIL FROM ([spf] max_time, 4.6.4).
 * When a limit is hit the layer answers every further lookup with
 * TRY_AGAIN so that libspf2 stops at once, and spf_evaluate() replaces
 * libspf2's result with the one the layer decided.
 *
 * Memory-safety bugs of libspf2 1.2.10 (Debian 1.2.10-7.2) that a record
 * from the network reaches, and how we keep records away from them (see
 * test/fuzz/): a stack buffer overflow in the macro compiler when a term
 * or explanation is long and dense with macros (SPF_COMPILE_MAX); an int
 * overflow on long transformer numbers (put_macro_string); a read before
 * the buffer on a bare "a//64" (rewrite_record); the 8-bit overflow of
 * URL-encoded macros, fixed in Debian's package but not in the 1.2.10
 * tarball (the has_8bit guard).
 */
#include "config.h"

#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <ctype.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <spf2/spf.h>
#include <spf2/spf_dns.h>

#include "mw_authres.h"
#include "mw_log.h"
#include "mw_session_priv.h"
#include "mw_text.h"

#define SPF_LIMIT_TERMS		10	/* RFC 7208 4.6.4 */
#define SPF_LIMIT_VOID		2
#define SPF_LIMIT_NAMES		10	/* MX or PTR names per term */
#define SPF_MAX_RECORD		4096	/* longest record text we evaluate */
#define SPF_MAX_EXP		200	/* bytes of explanation we pass on */
#define SPF_MAX_NAME		253	/* a domain name, presentation form */

/*
 * libspf2 stores a prefix length of 0 as "no prefix given" and refuses
 * "/0" in a record.  For a and mx mechanisms with /0 we drop the prefix
 * and append a marker to the target name instead (".mw0-NONCE.invalid",
 * see struct spf_eval); our lookup function strips it and answers with
 * the client's own address if the name has any address at all, which is
 * what /0 means.  The nonce is random per evaluation, so that no name a
 * sender controls (%{h}, %{l}, a PTR or MX name) can carry the marker.
 */
#define CIDR0_MARK_LEN		32

enum reject_at {
	REJECT_AT_RCPT = 0,
	REJECT_AT_DATA
};

struct spf_cfg {
	struct mw_action	 act[MW_AUTH_POLICY + 1];	/* by result */
	int			 temperror_auto;
	struct mw_action	 helo_fail;
	bool			 check_helo;
	bool			 received_spf;
	enum reject_at		 reject_at;
	long			 max_time;	/* seconds per MAIL FROM */
};

struct spf_global {
	SPF_dns_server_t	 layer;		/* our DNS layer */
	SPF_server_t		*server;
};

/* What one evaluation found, for the headers, the log and the reply. */
struct spf_outcome {
	enum mw_auth_result	 result;
	int			 helo_identity;	/* identity=helo */
	char			 domain[256];	/* the domain checked */
	char			 why[200];	/* error detail */
	char			 exp[SPF_MAX_EXP + 1];	/* the domain's exp= */
};

struct spf_state {
	/* per connection: the HELO identity, evaluated once per HELO name */
	char			*helo_checked;	/* the name, NULL = not yet */
	struct spf_outcome	 helo;
	/* per message */
	int			 done;
	int			 null_sender;
	char			*sender;	/* the address checked */
	struct spf_outcome	 mfrom;
	int			 helo_separate;	/* helo has its own result */
	int			 helo_shown;	/* null sender: helo shown too */
};

/* ------------------------------------------------------------------------
 * Per-evaluation state of the DNS layer, reached through spf_current.
 */

enum spf_abort {
	ABORT_NONE = 0,
	ABORT_PERMERROR,
	ABORT_TEMPERROR
};

/* What a lookup libspf2 asks for is, as far as the limits go. */
enum lk_kind {
	LK_EXP,		/* TXT of exp=: not a term */
	LK_TERM,	/* a, exists: a DNS-querying term */
	LK_MX,		/* mx: a term; its names follow */
	LK_PTR,		/* ptr: a term; its names follow */
	LK_PMACRO,	/* %{p}: PTR names, not a term */
	LK_NAME		/* an address lookup for an MX or PTR name */
};

struct spf_eval {
	struct mw_session	*s;		/* for evidence notes */
	struct mw_dns_batch	*dns;
	int			 family;	/* of the client */
	uint8_t			 addr[16];
	const char		*sender, *helo;	/* for the macro guard */
	uint64_t		 deadline_ms;
	int			 records;	/* SPF records fetched */
	int			 terms;		/* DNS-querying terms so far */
	int			 voids;		/* void lookups so far */
	/* the names of the last MX or PTR answer, still to be looked up */
	char			 pending[SPF_LIMIT_NAMES][SPF_MAX_NAME + 1];
	int			 npending, next_pending;
	int			 pending_cidr0;	/* of an mx with /0 */
	char			 mark[CIDR0_MARK_LEN];	/* see CIDR0_MARK_LEN */
	int			 pending_errors_ok;	/* PTR: error = no */
	enum spf_abort		 abort;
	char			 why[200];
};

/*
 * The evaluation running on this thread; see the comment at the top for
 * why this cannot be passed as an argument.
 */
static __thread struct spf_eval *spf_current;

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void
eval_why(struct spf_eval *ev, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Remember the first reason something went wrong. */
static void
eval_why(struct spf_eval *ev, const char *fmt, ...)
{
	va_list ap;

	if (ev->why[0] != '\0')
		return;
	va_start(ap, fmt);
	vsnprintf(ev->why, sizeof(ev->why), fmt, ap);
	va_end(ap);
}

static void
eval_abort(struct spf_eval *ev, enum spf_abort how, const char *why)
{
	if (ev->abort != ABORT_NONE)
		return;
	ev->abort = how;
	ev->why[0] = '\0';
	eval_why(ev, "%s", why);
}

/* ------------------------------------------------------------------------
 * Names.
 */

/*
 * Turn a target name as libspf2 expanded it into the name we look up:
 * without the final dot, shortened from the left to 253 octets (RFC 7208
 * 7.3).  Returns 0, or -1 if it cannot be a DNS name (an empty or long
 * label, a byte that is not printable ASCII, a backslash): such a name
 * does not exist (4.3, 5/10/3).
 */
static int
lookup_name(const char *in, char *out, size_t outlen)
{
	size_t n = strlen(in);
	const char *p = in;

	if (n > 0 && in[n - 1] == '.')
		n--;
	while (n > SPF_MAX_NAME) {
		const char *dot = memchr(p, '.', n);

		if (dot == NULL)
			return -1;
		n -= (size_t)(dot + 1 - p);
		p = dot + 1;
	}
	/* One final dot is gone: a second would make an empty label. */
	if (n == 0 || n >= outlen || mw_domain_check(p, n, MW_DOMAIN_TEXT |
	    MW_DOMAIN_SPACE | MW_DOMAIN_NO_FINAL_DOT) != NULL)
		return -1;
	memcpy(out, p, n);
	out[n] = '\0';
	return 0;
}

/*
 * Is d usable as an SPF identity (RFC 7208 4.3)?  A multi-label name of
 * printable ASCII without empty or over-long labels; not a domain
 * literal.  Anything else gives the result "none".
 */
static int
identity_domain_ok(const char *d)
{
	return d[0] != '[' && mw_domain_ok(d, MW_DOMAIN_TEXT | MW_DOMAIN_DOTTED);
}

/* ------------------------------------------------------------------------
 * The RFC 7208 record syntax (section 12), checked before libspf2 sees a
 * record.  We only validate and re-serialise here; libspf2 compiles and
 * evaluates.
 */

enum term_kind {
	TK_ALL, TK_INCLUDE, TK_A, TK_MX, TK_PTR, TK_IP4, TK_IP6, TK_EXISTS,
	TK_REDIRECT, TK_EXP, TK_OTHER
};

struct term {
	enum term_kind	 kind;
	char		 qual;		/* '+', '-', '~', '?' or 0 */
	const char	*arg;		/* domain-spec or network, no prefix */
	size_t		 arglen;
	int		 cidr4, cidr6;	/* -1 = not given */
};

#define MAX_TERMS	128

struct parsed {
	struct term	 t[MAX_TERMS];
	int		 n;
	int		 has_all;
	int		 redirect, exp;	/* index in t, or -1 */
};

static int
is_alpha(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int
is_digit(int c)
{
	return c >= '0' && c <= '9';
}

static int
is_alnum(int c)
{
	return is_alpha(c) || is_digit(c);
}

/*
 * macro-string (RFC 7208 7.1) in s[0..n).  exp_text: the text of an
 * explanation record, where spaces and the c, r, t letters are allowed.
 * On success *ends_macro says whether it ends in a macro-expand and
 * *uppercase whether a letter asks for URL encoding (mask of 's', 'l',
 * 'h': values that come from the SMTP client).
 */
static int
check_macro_string(const char *s, size_t n, int exp_text, int *ends_macro,
    int *uppercase_from_client)
{
	size_t i = 0;
	int last_macro = 0;

	while (i < n) {
		unsigned char c = (unsigned char)s[i];

		if (c != '%') {
			if (c == ' ' && exp_text) {
				i++;
				last_macro = 0;
				continue;
			}
			if (c < 0x21 || c > 0x7e)
				return -1;
			i++;
			last_macro = 0;
			continue;
		}
		if (i + 1 >= n)
			return -1;
		c = (unsigned char)s[i + 1];
		if (c == '%' || c == '_' || c == '-') {
			i += 2;
			last_macro = 1;
			continue;
		}
		if (c != '{' || i + 2 >= n)
			return -1;
		i += 2;
		c = (unsigned char)s[i];
		switch (tolower(c)) {
		case 's': case 'l': case 'o': case 'd': case 'i': case 'p':
		case 'h': case 'v':
			break;
		case 'c': case 'r': case 't':
			if (!exp_text)
				return -1;
			break;
		default:
			return -1;
		}
		if (isupper(c) && (c == 'S' || c == 'L' || c == 'H') &&
		    uppercase_from_client != NULL)
			*uppercase_from_client = 1;
		i++;
		/* transformers: *DIGIT [ "r" ]; a number must not be 0 */
		if (i < n && is_digit(s[i])) {
			unsigned long v = 0;

			while (i < n && is_digit(s[i])) {
				if (v < 100000)
					v = v * 10 +
					    (unsigned long)(s[i] - '0');
				i++;
			}
			if (v == 0)
				return -1;
		}
		if (i < n && (s[i] == 'r' || s[i] == 'R'))
			i++;
		while (i < n && strchr(".-+,/_=", s[i]) != NULL)
			i++;
		if (i >= n || s[i] != '}')
			return -1;
		i++;
		last_macro = 1;
	}
	if (ends_macro != NULL)
		*ends_macro = last_macro;
	return 0;
}

/*
 * toplabel = ( *alphanum ALPHA *alphanum ) /
 *            ( 1*alphanum "-" *( alphanum / "-" ) alphanum )
 */
static int
check_toplabel(const char *s, size_t n)
{
	size_t i;
	int alpha = 0, dash = 0;

	if (n == 0 || !is_alnum(s[0]) || !is_alnum(s[n - 1]))
		return -1;
	for (i = 0; i < n; i++) {
		if (is_alpha(s[i]))
			alpha = 1;
		else if (s[i] == '-')
			dash = 1;
		else if (!is_digit(s[i]))
			return -1;
	}
	return alpha || dash ? 0 : -1;
}

/* domain-spec = macro-string domain-end */
static int
check_domain_spec(const char *s, size_t n, int *uppercase)
{
	int ends_macro;
	size_t end, dot;

	if (n == 0 || check_macro_string(s, n, 0, &ends_macro, uppercase) ==
	    -1)
		return -1;
	if (ends_macro)
		return 0;
	/* domain-end = "." toplabel [ "." ], in the literal tail */
	end = n;
	if (s[end - 1] == '.')
		end--;
	for (dot = end; dot > 0 && s[dot - 1] != '.'; dot--)
		if (s[dot - 1] == '}' || s[dot - 1] == '%')
			return -1;	/* the toplabel runs into a macro */
	if (dot == 0)
		return -1;		/* no "." before the toplabel */
	return check_toplabel(s + dot, end - dot);
}

/* A prefix length "0" / %x31-39 0*ndigit, at most max; or -1. */
static int
parse_cidr(const char *s, size_t n, int max)
{
	size_t i;
	int v = 0;

	if (n == 0 || n > 3 || (n > 1 && s[0] == '0'))
		return -1;
	for (i = 0; i < n; i++) {
		if (!is_digit(s[i]))
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v <= max ? v : -1;
}

/* Split a trailing "/digits" off [s, s + *n): its value, or -2 if none. */
static int
split_cidr(const char *s, size_t *n, int max, int dbl)
{
	size_t e = *n, d = e;

	while (d > 0 && is_digit(s[d - 1]))
		d--;
	if (d == e || d == 0 || s[d - 1] != '/')
		return -2;
	if (dbl && (d < 2 || s[d - 2] != '/'))
		return -2;
	*n = d - (dbl ? 2 : 1);
	return parse_cidr(s + d, e - d, max);
}

/* qnum "." qnum "." qnum "." qnum, no leading zeros */
static int
check_ip4(const char *s, size_t n)
{
	size_t i = 0;
	int part;

	for (part = 0; part < 4; part++) {
		size_t start = i;
		int v = 0;

		while (i < n && is_digit(s[i]) && i - start < 4)
			v = v * 10 + (s[i++] - '0');
		if (i == start || i - start > 3 || v > 255 ||
		    (i - start > 1 && s[start] == '0'))
			return -1;
		if (part < 3 && (i >= n || s[i++] != '.'))
			return -1;
	}
	return i == n ? 0 : -1;
}

static int
check_ip6(const char *s, size_t n)
{
	char buf[INET6_ADDRSTRLEN + 1];
	struct in6_addr a;

	if (n == 0 || n >= sizeof(buf))
		return -1;
	memcpy(buf, s, n);
	buf[n] = '\0';
	return inet_pton(AF_INET6, buf, &a) == 1 ? 0 : -1;
}

static const struct {
	const char	*name;
	enum term_kind	 kind;
} mechanisms[] = {
	{ "all", TK_ALL }, { "include", TK_INCLUDE }, { "a", TK_A },
	{ "mx", TK_MX }, { "ptr", TK_PTR }, { "ip4", TK_IP4 },
	{ "ip6", TK_IP6 }, { "exists", TK_EXISTS },
};

/*
 * Parse one term (a directive or modifier) of n bytes.  Returns 0 or -1
 * with why set.
 */
static int
parse_term(struct parsed *p, const char *s, size_t n, int *uppercase,
    char *why, size_t whylen)
{
	struct term *t;
	size_t i = 0, namelen, rest;
	char qual = 0;
	const char *r;
	size_t m;
	char shown[64];

	mw_printable_n(shown, sizeof(shown), s, n);
	if (p->n >= MAX_TERMS) {
		snprintf(why, whylen, "too many terms");
		return -1;
	}
	t = &p->t[p->n];
	memset(t, 0, sizeof(*t));
	t->cidr4 = t->cidr6 = -1;
	if (strchr("+-~?", s[0]) != NULL) {
		qual = s[0];
		i = 1;
	}
	/* name = ALPHA *( ALPHA / DIGIT / "-" / "_" / "." ) */
	if (i >= n || !is_alpha(s[i])) {
		snprintf(why, whylen, "bad term \"%s\"", shown);
		return -1;
	}
	namelen = 1;
	while (i + namelen < n && (is_alnum(s[i + namelen]) ||
	    strchr("-_.", s[i + namelen]) != NULL))
		namelen++;
	r = s + i + namelen;
	rest = n - i - namelen;

	if (rest > 0 && r[0] == '=') {
		/* modifier */
		if (qual != 0) {
			snprintf(why, whylen, "qualifier on modifier \"%s\"",
			    shown);
			return -1;
		}
		r++;
		rest--;
		if (namelen == 8 && strncasecmp(s + i, "redirect", 8) == 0)
			t->kind = TK_REDIRECT;
		else if (namelen == 3 && strncasecmp(s + i, "exp", 3) == 0)
			t->kind = TK_EXP;
		else
			t->kind = TK_OTHER;
		if (t->kind == TK_OTHER) {
			if (check_macro_string(r, rest, 0, NULL, NULL) == -1) {
				snprintf(why, whylen, "bad modifier \"%s\"",
				    shown);
				return -1;
			}
		} else if (check_domain_spec(r, rest, uppercase) == -1) {
			snprintf(why, whylen, "bad domain in \"%s\"", shown);
			return -1;
		}
		if ((t->kind == TK_REDIRECT && p->redirect >= 0) ||
		    (t->kind == TK_EXP && p->exp >= 0)) {
			snprintf(why, whylen, "more than one %s modifier",
			    t->kind == TK_EXP ? "exp" : "redirect");
			return -1;
		}
		if (t->kind == TK_REDIRECT)
			p->redirect = p->n;
		if (t->kind == TK_EXP)
			p->exp = p->n;
		t->arg = r;
		t->arglen = rest;
		p->n++;
		return 0;
	}

	/* mechanism */
	for (m = 0; m < sizeof(mechanisms) / sizeof(mechanisms[0]); m++)
		if (strlen(mechanisms[m].name) == namelen &&
		    strncasecmp(s + i, mechanisms[m].name, namelen) == 0)
			break;
	if (m == sizeof(mechanisms) / sizeof(mechanisms[0]) ||
	    (rest > 0 && r[0] != ':' && r[0] != '/')) {
		snprintf(why, whylen, "unknown mechanism \"%s\"", shown);
		return -1;
	}
	t->kind = mechanisms[m].kind;
	t->qual = qual;
	switch (t->kind) {
	case TK_ALL:
		if (rest != 0)
			goto bad;
		p->has_all = 1;
		break;
	case TK_INCLUDE:
	case TK_EXISTS:
		if (rest < 2 || r[0] != ':' ||
		    check_domain_spec(r + 1, rest - 1, uppercase) == -1)
			goto bad;
		t->arg = r + 1;
		t->arglen = rest - 1;
		break;
	case TK_PTR:
		if (rest > 0 && (r[0] != ':' ||
		    check_domain_spec(r + 1, rest - 1, uppercase) == -1))
			goto bad;
		if (rest > 0) {
			t->arg = r + 1;
			t->arglen = rest - 1;
		}
		break;
	case TK_A:
	case TK_MX:
		/* [ ":" domain-spec ] [ dual-cidr-length ] */
		m = rest;
		if ((t->cidr6 = split_cidr(r, &m, 128, 1)) == -1)
			goto bad;
		if ((t->cidr4 = split_cidr(r, &m, 32, 0)) == -1)
			goto bad;
		if (t->cidr4 < 0)
			t->cidr4 = -1;
		if (t->cidr6 < 0)
			t->cidr6 = -1;
		if (m > 0) {
			if (r[0] != ':' ||
			    check_domain_spec(r + 1, m - 1, uppercase) == -1)
				goto bad;
			t->arg = r + 1;
			t->arglen = m - 1;
		}
		break;
	case TK_IP4:
		m = rest;
		if (rest < 2 || r[0] != ':')
			goto bad;
		if ((t->cidr4 = split_cidr(r, &m, 32, 0)) == -1)
			goto bad;
		if (t->cidr4 < 0)
			t->cidr4 = -1;
		if (check_ip4(r + 1, m - 1) == -1)
			goto bad;
		t->arg = r + 1;
		t->arglen = m - 1;
		break;
	case TK_IP6:
		m = rest;
		if (rest < 2 || r[0] != ':')
			goto bad;
		if ((t->cidr6 = split_cidr(r, &m, 128, 0)) == -1)
			goto bad;
		if (t->cidr6 < 0)
			t->cidr6 = -1;
		if (check_ip6(r + 1, m - 1) == -1)
			goto bad;
		t->arg = r + 1;
		t->arglen = m - 1;
		break;
	default:
		goto bad;
	}
	p->n++;
	return 0;
bad:
	snprintf(why, whylen, "syntax error in \"%s\"", shown);
	return -1;
}

/*
 * Validate a whole record (we know it starts with "v=spf1" and a space
 * or its end).  Returns 0 or -1 with why set.
 */
static int
parse_record(struct parsed *p, const char *rec, size_t len, int *uppercase,
    char *why, size_t whylen)
{
	size_t i, start;

	memset(p, 0, sizeof(*p));
	p->redirect = p->exp = -1;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)rec[i];

		if (c < 0x20 || c > 0x7e) {
			snprintf(why, whylen, "%s byte 0x%02x in the record",
			    c < 0x20 ? "control" : "non-ASCII", c);
			return -1;
		}
	}
	i = 6;			/* "v=spf1" */
	while (i < len) {
		while (i < len && rec[i] == ' ')
			i++;
		if (i >= len)
			break;
		start = i;
		while (i < len && rec[i] != ' ')
			i++;
		if (parse_term(p, rec + start, i - start, uppercase, why,
		    whylen) == -1)
			return -1;
	}
	return 0;
}

/*
 * Append a validated macro-string for libspf2, normalised: the number of
 * a transformer ("%{d200}") capped at 128 without leading zeros (libspf2
 * refuses more than 128 and overflows an int on long digit strings;
 * RFC 7208 7.3: more parts than there are means all of them), and, in
 * explanation text, spaces as "%_" (see layer_lookup).
 */
static void
put_macro_string(struct mw_buf *b, const char *s, size_t n, int exp_text)
{
	size_t i = 0;

	while (i < n) {
		if (s[i] == ' ' && exp_text) {
			mw_buf_puts(b, "%_");
			i++;
		} else if (s[i] == '%' && i + 2 < n && s[i + 1] == '{') {
			unsigned long v = 0;
			int digits = 0;

			mw_buf_append(b, s + i, 3);	/* "%{" letter */
			for (i += 3; i < n && is_digit(s[i]); i++) {
				digits = 1;
				if (v < 1000)
					v = v * 10 +
					    (unsigned long)(s[i] - '0');
			}
			if (digits)
				mw_buf_printf(b, "%lu", v > 128 ? 128 : v);
		} else if (s[i] == '%' && i + 1 < n) {
			mw_buf_append(b, s + i, 2);	/* %% %_ %- */
			i += 2;
		} else
			mw_buf_append(b, s + i++, 1);
	}
}

/*
 * How many bytes libspf2's compiler needs for a (normalised) macro-string:
 * 4 per macro, 4 + the length rounded up to 4 per literal run (%- is
 * three bytes, %% and %_ one).  Each domain-spec and the explanation text
 * get a 511-byte buffer in libspf2; when fewer than 4 bytes are left at a
 * macro, its "ds_avail = _avail - sizeof(SPF_data_t)" wraps around and
 * the literal after it is copied past the end of a stack buffer (found
 * by test/fuzz; libspf2 PR #44, CVE-2023-42118 area; Debian 1.2.10-7.2
 * is affected).  We never hand libspf2 a string needing more than
 * SPF_COMPILE_MAX.
 */
#define SPF_COMPILE_MAX		480

static size_t
libspf2_size(const char *s, size_t n)
{
	size_t i = 0, size = 0, run = 0;
	int open = 0;

	while (i < n) {
		if (s[i] == '%' && i + 1 < n && s[i + 1] == '{') {
			if (open)
				size += 4 + ((run + 3) & ~(size_t)3);
			open = 0;
			run = 0;
			size += 4;
			while (i < n && s[i] != '}')
				i++;
			i++;
			continue;
		}
		open = 1;
		if (s[i] == '%' && i + 1 < n) {
			run += s[i + 1] == '-' ? 3 : 1;
			i += 2;
		} else {
			run++;
			i++;
		}
	}
	if (open)
		size += 4 + ((run + 3) & ~(size_t)3);
	return size;
}

/*
 * Write the record for libspf2 (see the comment at the top): mechanisms
 * in order with their prefix lengths for the client's family only,
 * redirect= last unless the record has "all", exp=, nothing else.
 * Returns 0, or -1 if it does not fit.
 */
static int
rewrite_record(const struct parsed *p, int family, const char *mark,
    char *out, size_t outlen)
{
	struct mw_buf b = MW_BUF_INIT(SPF_MAX_RECORD * 2);
	size_t start;
	int i, cidr, ok, big = 0;

	mw_buf_puts(&b, "v=spf1");
	for (i = 0; i < p->n; i++) {
		const struct term *t = &p->t[i];
		const char *name;

		if (t->kind == TK_REDIRECT || t->kind == TK_OTHER)
			continue;
		if (t->kind == TK_EXP) {
			mw_buf_puts(&b, " exp=");
			start = b.len;
			put_macro_string(&b, t->arg, t->arglen, 0);
			big |= libspf2_size(b.s + start, b.len - start) >
			    SPF_COMPILE_MAX;
			continue;
		}
		cidr = family == AF_INET ? t->cidr4 : t->cidr6;
		if (t->kind == TK_IP4 || t->kind == TK_IP6) {
			/* Only the client's family can match. */
			if ((t->kind == TK_IP4) != (family == AF_INET))
				continue;
			mw_buf_printf(&b, " %.1s", t->qual ? &t->qual : "");
			if (cidr == 0)
				mw_buf_puts(&b, "all");	/* matches anything */
			else if (cidr > 0)
				mw_buf_printf(&b, "%s:%.*s/%d", t->kind ==
				    TK_IP4 ? "ip4" : "ip6", (int)t->arglen,
				    t->arg, cidr);
			else
				mw_buf_printf(&b, "%s:%.*s", t->kind ==
				    TK_IP4 ? "ip4" : "ip6", (int)t->arglen,
				    t->arg);
			continue;
		}
		switch (t->kind) {
		case TK_ALL: name = "all"; break;
		case TK_INCLUDE: name = "include"; break;
		case TK_A: name = "a"; break;
		case TK_MX: name = "mx"; break;
		case TK_PTR: name = "ptr"; break;
		default: name = "exists"; break;
		}
		mw_buf_printf(&b, " %.1s%s", t->qual ? &t->qual : "", name);
		start = b.len + 1;	/* after the ":" */
		if ((t->kind == TK_A || t->kind == TK_MX) && cidr == 0) {
			size_t n = t->arglen;

			/* the whole family matches: see CIDR0_MARK_LEN */
			if (n > 0 && t->arg[n - 1] == '.')
				n--;
			if (n > 0) {
				mw_buf_puts(&b, ":");
				put_macro_string(&b, t->arg, n, 0);
				mw_buf_puts(&b, mark);
			} else
				mw_buf_printf(&b, ":%%{d}%s", mark);
			big |= libspf2_size(b.s + start, b.len - start) >
			    SPF_COMPILE_MAX;
			continue;
		}
		if (t->arg != NULL) {
			mw_buf_puts(&b, ":");
			put_macro_string(&b, t->arg, t->arglen, 0);
		} else if ((t->kind == TK_A || t->kind == TK_MX) && cidr > 0 &&
		    family != AF_INET)
			/*
			 * libspf2 reads one byte before "//64" when nothing
			 * precedes it (size_t index below 0); the target
			 * spelled out means the same.
			 */
			mw_buf_puts(&b, ":%{d}");
		if (b.len > start)
			big |= libspf2_size(b.s + start, b.len - start) + 4 >
			    SPF_COMPILE_MAX;
		if ((t->kind == TK_A || t->kind == TK_MX) && cidr > 0) {
			if (family == AF_INET)
				mw_buf_printf(&b, "/%d", cidr);
			else
				mw_buf_printf(&b, "//%d", cidr);
		}
	}
	if (p->redirect >= 0 && !p->has_all) {
		mw_buf_puts(&b, " redirect=");
		start = b.len;
		put_macro_string(&b, p->t[p->redirect].arg,
		    p->t[p->redirect].arglen, 0);
		big |= libspf2_size(b.s + start, b.len - start) >
		    SPF_COMPILE_MAX;
	}
	ok = !b.truncated && b.len < outlen && !big;
	if (ok)
		memcpy(out, mw_buf_str(&b), b.len + 1);
	mw_buf_free(&b);
	return ok ? 0 : big ? -2 : -1;
}

/* Does s hold a byte outside printable ASCII? */
static int
has_8bit(const char *s)
{
	for (; s != NULL && *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
			return 1;
	return 0;
}

/* ------------------------------------------------------------------------
 * The DNS layer.
 */

static SPF_dns_rr_t *
rr_status(SPF_dns_server_t *layer, const char *name, ns_type type,
    SPF_dns_stat_t herrno)
{
	SPF_dns_rr_t *rr;

	rr = SPF_dns_rr_new_init(layer, name, type, 0, herrno);
	if (rr == NULL)		/* libspf2 aborts on NULL: try smaller */
		rr = SPF_dns_rr_new_init(layer, "", type, 0, herrno);
	return rr;
}

/* Append one record (len bytes of data, plus a NUL for strings). */
static int
rr_add(SPF_dns_rr_t *rr, const void *data, size_t len, int string)
{
	int i = rr->num_rr;

	if (SPF_dns_rr_buf_realloc(rr, i, len + (string ? 1 : 0)) !=
	    SPF_E_SUCCESS)
		return -1;
	memcpy(rr->rr[i], data, len);
	if (string)
		((char *)rr->rr[i])[len] = '\0';
	rr->num_rr++;
	return 0;
}

static SPF_dns_stat_t
herrno_of(enum mw_dns_status st)
{
	switch (st) {
	case MW_DNS_OK:
		return NETDB_SUCCESS;
	case MW_DNS_NXDOMAIN:
		return HOST_NOT_FOUND;
	case MW_DNS_NODATA:
		return NO_DATA;
	default:
		return TRY_AGAIN;
	}
}

/* Strip this evaluation's /0 marker from name; 1 if it was there. */
static int
strip_mark(const struct spf_eval *ev, char *name)
{
	size_t n = strlen(name), m = strlen(ev->mark);

	if (m == 0 || n < m || strcasecmp(name + n - m, ev->mark) != 0)
		return 0;
	name[n - m] = '\0';
	return 1;
}

/* Classify a lookup (see enum lk_kind) and keep the counters. */
static enum lk_kind
classify(struct spf_eval *ev, const char *name, ns_type type,
    int should_cache)
{
	switch (type) {
	case ns_t_txt:
		return LK_EXP;
	case ns_t_mx:
		ev->npending = ev->next_pending = 0;
		return LK_MX;
	case ns_t_ptr:
		ev->npending = ev->next_pending = 0;
		/*
		 * libspf2 asks with should_cache for the ptr mechanism and
		 * without for the %{p} macro (SPF_dns_get_client_dom).
		 */
		return should_cache ? LK_PTR : LK_PMACRO;
	default:
		break;
	}
	if (ev->next_pending < ev->npending &&
	    strcmp(name, ev->pending[ev->next_pending]) == 0) {
		ev->next_pending++;
		return LK_NAME;
	}
	ev->npending = ev->next_pending = 0;
	return LK_TERM;
}

/* Terms that query DNS count toward the limits of RFC 7208 4.6.4. */
static int
counted(enum lk_kind kind)
{
	return kind == LK_TERM || kind == LK_MX || kind == LK_PTR;
}

/* One more void lookup (4.6.4); -1, the evaluation aborted, past 2. */
static int
count_void(struct spf_eval *ev, enum lk_kind kind)
{
	if (counted(kind) && ++ev->voids > SPF_LIMIT_VOID) {
		eval_abort(ev, ABORT_PERMERROR, "more than 2 void lookups");
		return -1;
	}
	return 0;
}

/* Our resolver's type for libspf2's, or -1 if we do not ask it. */
static int
mw_type_of(ns_type type)
{
	switch (type) {
	case ns_t_a: return MW_DNS_A;
	case ns_t_aaaa: return MW_DNS_AAAA;
	case ns_t_mx: return MW_DNS_MX;
	case ns_t_ptr: return MW_DNS_PTR;
	case ns_t_txt: return MW_DNS_TXT;
	default: return -1;
	}
}

/* The answer was no data, or an error: what libspf2 is told. */
static SPF_dns_rr_t *
lookup_failed(struct spf_eval *ev, SPF_dns_server_t *layer,
    const char *domain, ns_type type, enum lk_kind kind, const char *name,
    const struct mw_dns_answer *a, enum mw_dns_status status)
{
	if ((status == MW_DNS_NXDOMAIN || status == MW_DNS_NODATA) &&
	    count_void(ev, kind) == -1)
		return rr_status(layer, domain, type, TRY_AGAIN);
	/*
	 * RFC 7208 5.5: a DNS error on the PTR lookup makes ptr not match,
	 * on the lookup of a PTR name skips that name; %{p} becomes
	 * "unknown".
	 */
	if (kind == LK_PTR || kind == LK_PMACRO ||
	    (kind == LK_NAME && ev->pending_errors_ok))
		return rr_status(layer, domain, type, HOST_NOT_FOUND);
	if ((status == MW_DNS_TEMPFAIL || status == MW_DNS_PERMFAIL) &&
	    kind != LK_EXP)	/* no explanation is no error */
		eval_why(ev, "%s looking up %s", a->error != NULL ?
		    a->error : "DNS error", name);
	return rr_status(layer, domain, type, herrno_of(status));
}

/*
 * An exp= TXT record into rr: 0, -1 if rr could not grow, 1 if it is no
 * explanation (invalid, or more than libspf2 can compile).
 */
static int
add_exp_text(struct spf_eval *ev, SPF_dns_rr_t *rr, const struct mw_dns_rr *r)
{
	struct mw_buf t = MW_BUF_INIT(SPF_MAX_RECORD);
	int upper = 0, ok;

	if (memchr(r->text, '\0', r->len) != NULL ||
	    check_macro_string(r->text, r->len, 1, NULL, &upper) == -1 ||
	    (upper && (has_8bit(ev->sender) || has_8bit(ev->helo))))
		return 1;
	/*
	 * libspf2's macro compiler stops a literal at a space and then
	 * misreads what follows ("See me." becomes "See%me."); "%_" is a
	 * space too (7.1).
	 */
	put_macro_string(&t, r->text, r->len, 1);
	if (t.truncated || libspf2_size(mw_buf_str(&t), t.len) >
	    SPF_COMPILE_MAX) {
		/* see SPF_COMPILE_MAX: no explanation */
		mw_buf_free(&t);
		return 1;
	}
	ok = rr_add(rr, mw_buf_str(&t), t.len, 1);
	mw_buf_free(&t);
	return ok;
}

/* One record of the answer into rr: 0, -1 if rr could not grow, 1 skip. */
static int
add_record(struct spf_eval *ev, SPF_dns_rr_t *rr, ns_type type, int cidr0,
    const struct mw_dns_rr *r)
{
	struct in_addr in4;
	struct in6_addr in6;

	switch (type) {
	case ns_t_a:
		if (inet_pton(AF_INET, r->text, &in4) != 1)
			return 1;
		if (cidr0)	/* any address: the client's own */
			memcpy(&in4, ev->addr, 4);
		return rr_add(rr, &in4, sizeof(in4), 0);
	case ns_t_aaaa:
		if (inet_pton(AF_INET6, r->text, &in6) != 1)
			return 1;
		if (cidr0)
			memcpy(&in6, ev->addr, 16);
		return rr_add(rr, &in6, sizeof(in6), 0);
	case ns_t_mx:
	case ns_t_ptr:
		/*
		 * A name that is not printable ASCII cannot be looked up, and
		 * must not reach %{p} (the URL encoder of libspf2 overflows
		 * on 8-bit bytes).
		 */
		if (r->len == 0 || r->len > SPF_MAX_NAME || has_8bit(r->text))
			return 1;
		if (ev->npending < SPF_LIMIT_NAMES)
			snprintf(ev->pending[ev->npending++],
			    sizeof(ev->pending[0]), "%s", r->text);
		return rr_add(rr, r->text, r->len, 1);
	default:
		return 1;
	}
}

/* A good answer, as libspf2's records. */
static SPF_dns_rr_t *
answer_rr(struct spf_eval *ev, SPF_dns_server_t *layer, const char *domain,
    ns_type type, enum lk_kind kind, int cidr0, const struct mw_dns_answer *a)
{
	SPF_dns_rr_t *rr;
	int i, max, r;

	if ((rr = rr_status(layer, domain, type, NETDB_SUCCESS)) == NULL)
		return rr;
	max = a->nrr;
	if (kind == LK_PTR || kind == LK_PMACRO) {
		/* RFC 7208 4.6.4: names beyond the first 10 are ignored. */
		if (max > SPF_LIMIT_NAMES)
			max = SPF_LIMIT_NAMES;
		ev->pending_errors_ok = 1;
		ev->pending_cidr0 = 0;
	} else if (kind == LK_MX) {
		ev->pending_errors_ok = 0;
		ev->pending_cidr0 = cidr0;
	}
	if (kind == LK_EXP && max != 1) {
		/* 6.2: more than one record means no explanation */
		rr->herrno = NO_DATA;
		return rr;
	}
	for (i = 0; i < max; i++) {
		if (type == ns_t_txt) {
			/* exp= text: must be valid, or no explanation */
			if ((r = add_exp_text(ev, rr, &a->rr[i])) == 1) {
				rr->herrno = NO_DATA;
				return rr;
			}
		} else if ((r = add_record(ev, rr, type, cidr0,
		    &a->rr[i])) == 1)
			continue;
		if (r == -1)
			break;
		if (cidr0 && (type == ns_t_a || type == ns_t_aaaa))
			break;		/* one is enough */
	}
	if (rr->num_rr == 0)
		rr->herrno = NO_DATA;
	return rr;
}

/*
 * The lookup function of our layer: every DNS question libspf2 asks
 * except the SPF record itself (see layer_get_spf).  The limits, the
 * name as we ask it, then our resolver's answer in libspf2's terms.
 */
static SPF_dns_rr_t *
layer_lookup(SPF_dns_server_t *layer, const char *domain, ns_type type,
    int should_cache)
{
	struct spf_eval *ev = spf_current;
	const struct mw_dns_answer *a;
	enum mw_dns_status status;
	enum lk_kind kind;
	char name[SPF_MAX_NAME + 1], *full;
	int cidr0, mwtype, bad;

	if (ev == NULL || ev->abort != ABORT_NONE || domain == NULL)
		return rr_status(layer, domain, type, TRY_AGAIN);
	if (now_ms() > ev->deadline_ms) {
		eval_abort(ev, ABORT_TEMPERROR, "SPF evaluation took too long");
		return rr_status(layer, domain, type, TRY_AGAIN);
	}
	kind = classify(ev, domain, type, should_cache);
	if (counted(kind) && ++ev->terms > SPF_LIMIT_TERMS) {
		eval_abort(ev, ABORT_PERMERROR,
		    "more than 10 DNS-querying terms");
		return rr_status(layer, domain, type, TRY_AGAIN);
	}
	if ((full = strdup(domain)) == NULL) {
		eval_abort(ev, ABORT_TEMPERROR, "out of memory");
		return rr_status(layer, domain, type, TRY_AGAIN);
	}
	if (kind == LK_TERM || kind == LK_MX)
		cidr0 = strip_mark(ev, full);
	else
		cidr0 = kind == LK_NAME && ev->pending_cidr0;
	bad = lookup_name(full, name, sizeof(name)) == -1;
	free(full);
	if (bad)	/* not a name DNS can hold: it does not exist */
		return rr_status(layer, domain, type,
		    count_void(ev, kind) == -1 ? TRY_AGAIN : HOST_NOT_FOUND);
	if ((mwtype = mw_type_of(type)) == -1)
		return rr_status(layer, domain, type, NO_RECOVERY);
	a = mw_dns_lookup(ev->dns, name, mwtype);
	status = a->status;
	if (status == MW_DNS_PERMFAIL && a->error != NULL &&
	    strcmp(a->error, "bad name") == 0)
		status = MW_DNS_NXDOMAIN;	/* a name DNS cannot ask for */
	if (status != MW_DNS_OK)
		return lookup_failed(ev, layer, domain, type, kind, name, a,
		    status);
	return answer_rr(ev, layer, domain, type, kind, cidr0, a);
}

/*
 * Evidence for mailwarden-check: the SPF record as fetched, bytes that
 * are not printable ASCII written \xHH.
 */
static void
note_record(struct spf_eval *ev, const char *name, const char *rec,
    size_t len)
{
	struct mw_buf b = MW_BUF_INIT(1024);

	if (!ev->s->explain)
		return;
	mw_escaped(&b, rec, len);
	mw_session_note(ev->s, "spf", "record %s: \"%s\"%s", name,
	    mw_buf_str(&b), b.truncated ? "..." : "");
	mw_buf_free(&b);
}

/* What fetch_record() found. */
enum fetched {
	FETCH_ONE = 0,		/* exactly one SPF record: *recp, *lenp */
	FETCH_NONE,		/* no record: result none */
	FETCH_TEMPERROR,	/* a DNS error, or the evaluation aborted */
	FETCH_PERMERROR		/* several records */
};

/*
 * Look the TXT records of name up and select its SPF record (4.5).  top:
 * the identity's own domain, not an include or redirect target (error
 * texts then do not repeat its name).
 */
static enum fetched
fetch_record(struct spf_eval *ev, const char *name, int top,
    const char **recp, size_t *lenp)
{
	const struct mw_dns_answer *a;
	enum mw_dns_status status;
	int i, found = 0;

	a = mw_dns_lookup(ev->dns, name, MW_DNS_TXT);
	if (ev->abort != ABORT_NONE)
		return FETCH_TEMPERROR;
	status = a->status;
	if (status == MW_DNS_PERMFAIL && a->error != NULL &&
	    strcmp(a->error, "bad name") == 0)
		status = MW_DNS_NXDOMAIN;	/* a name DNS cannot ask for */
	if (status != MW_DNS_OK)
		mw_session_note_dns(ev->s, "spf", a);
	switch (status) {
	case MW_DNS_OK:
		break;
	case MW_DNS_NXDOMAIN:
	case MW_DNS_NODATA:
		if (!top)
			eval_why(ev, "%s has no SPF record", name);
		return FETCH_NONE;
	default:
		if (top)
			eval_why(ev, "%s looking up its SPF record",
			    a->error != NULL ? a->error : "DNS error");
		else
			eval_why(ev, "%s looking up the SPF record of %s",
			    a->error != NULL ? a->error : "DNS error", name);
		return FETCH_TEMPERROR;
	}
	for (i = 0; i < a->nrr; i++) {
		const struct mw_dns_rr *r = &a->rr[i];

		if (r->len >= 6 && strncasecmp(r->text, "v=spf1", 6) == 0 &&
		    (r->len == 6 || r->text[6] == ' ')) {
			found++;
			*recp = r->text;
			*lenp = r->len;
		}
	}
	if (found == 1)
		note_record(ev, name, *recp, *lenp);
	else	/* none among the TXT records, or several: show them all */
		mw_session_note_dns(ev->s, "spf", a);
	if (found == 0) {
		if (!top)
			eval_why(ev, "%s has no SPF record", name);
		return FETCH_NONE;
	}
	if (found > 1) {
		if (top)
			eval_why(ev, "more than one SPF record");
		else
			eval_why(ev, "%s has more than one SPF record", name);
		return FETCH_PERMERROR;
	}
	return FETCH_ONE;
}

/*
 * Check the record and compile it for libspf2 (rewritten where libspf2
 * would misread it).  SPF_RESULT_PASS here means compiled into *recp;
 * else the result to give (permerror, or temperror when out of memory),
 * with eval_why set; where prefixes the texts ("name: " or "").
 */
static SPF_result_t
compile_record(struct spf_eval *ev, SPF_server_t *server,
    SPF_response_t *resp, SPF_record_t **recp, const char *rec,
    size_t reclen, const char *where)
{
	struct parsed *p = NULL;
	char *text = NULL, why[160];
	int upper = 0;
	SPF_errcode_t err;
	SPF_result_t res = SPF_RESULT_PERMERROR;

	if (reclen > SPF_MAX_RECORD) {
		eval_why(ev, "%sSPF record too long", where);
		return res;
	}
	if ((p = malloc(sizeof(*p))) == NULL ||
	    (text = malloc(SPF_MAX_RECORD * 2 + 1)) == NULL) {
		eval_why(ev, "out of memory");
		res = SPF_RESULT_TEMPERROR;
		goto out;
	}
	if (parse_record(p, rec, reclen, &upper, why, sizeof(why)) == -1) {
		eval_why(ev, "%s%s", where, why);
		goto out;
	}
	/*
	 * libspf2 1.2.10 URL-encodes (%{L}, %{S}, %{H}) with sprintf("%02x")
	 * on a plain char: a byte >= 0x80 writes 9 bytes where 3 were sized,
	 * a heap overflow (CVE-2021-33912; Debian's package has the fix, the
	 * upstream tarball not).  Those values come from the SMTP client;
	 * refuse such a record rather than depend on how libspf2 was built.
	 */
	if (upper && (has_8bit(ev->sender) || has_8bit(ev->helo))) {
		eval_why(ev, "%sURL-encoded macro on an 8-bit sender or HELO",
		    where);
		goto out;
	}
	switch (rewrite_record(p, ev->family, ev->mark, text,
	    SPF_MAX_RECORD * 2 + 1)) {
	case 0:
		break;
	case -2:
		eval_why(ev, "%sa term too long for libspf2", where);
		goto out;
	default:
		eval_why(ev, "%sSPF record too long", where);
		goto out;
	}
	err = SPF_record_compile(server, resp, recp, text);
	if (err != SPF_E_SUCCESS) {
		eval_why(ev, "%s%s", where, SPF_strerror(err));
		if (*recp != NULL) {
			SPF_record_free(*recp);
			*recp = NULL;
		}
		goto out;
	}
	res = SPF_RESULT_PASS;
out:
	free(p);
	free(text);
	return res;
}

/*
 * Fetch, select, check and compile the SPF record of the current domain
 * (RFC 7208 4.4, 4.5): for the identity's domain, and for every include
 * and redirect target.
 */
static SPF_errcode_t
layer_get_spf(SPF_server_t *server, SPF_request_t *req, SPF_response_t *resp,
    SPF_record_t **recp)
{
	struct spf_eval *ev = spf_current;
	char name[SPF_MAX_NAME + 1], shown[SPF_MAX_NAME + 1];
	char where[SPF_MAX_NAME + 4];
	const char *rec = NULL;
	size_t reclen = 0;
	int top;
	SPF_result_t res;

	*recp = NULL;
	if (ev == NULL || ev->abort != ABORT_NONE) {
		resp->result = SPF_RESULT_TEMPERROR;
		return SPF_E_DNS_ERROR;
	}
	top = ev->records++ == 0;
	ev->npending = ev->next_pending = 0;
	if (!top && ++ev->terms > SPF_LIMIT_TERMS) {
		eval_abort(ev, ABORT_PERMERROR,
		    "more than 10 DNS-querying terms");
		resp->result = SPF_RESULT_TEMPERROR;
		return SPF_E_DNS_ERROR;
	}
	if (now_ms() > ev->deadline_ms) {
		eval_abort(ev, ABORT_TEMPERROR, "SPF evaluation took too long");
		resp->result = SPF_RESULT_TEMPERROR;
		return SPF_E_DNS_ERROR;
	}
	mw_printable(shown, sizeof(shown), req->cur_dom);
	if (req->cur_dom == NULL ||
	    lookup_name(req->cur_dom, name, sizeof(name)) == -1) {
		/* 4.3: a malformed name has no record */
		if (!top)
			eval_why(ev, "\"%s\" is not a valid domain name",
			    shown);
		resp->result = SPF_RESULT_NONE;
		return SPF_E_NOT_SPF;
	}
	switch (fetch_record(ev, name, top, &rec, &reclen)) {
	case FETCH_ONE:
		break;
	case FETCH_NONE:
		resp->result = SPF_RESULT_NONE;
		return SPF_E_NOT_SPF;
	case FETCH_TEMPERROR:
		resp->result = SPF_RESULT_TEMPERROR;
		return SPF_E_DNS_ERROR;
	case FETCH_PERMERROR:
		resp->result = SPF_RESULT_PERMERROR;
		return SPF_E_SYNTAX;
	}
	/* error texts name the record unless it is the identity's own */
	snprintf(where, sizeof(where), "%s%s", top ? "" : name, top ? "" :
	    ": ");
	res = compile_record(ev, server, resp, recp, rec, reclen, where);
	if (res == SPF_RESULT_PASS)
		return SPF_E_SUCCESS;
	resp->result = res;
	return res == SPF_RESULT_TEMPERROR ? SPF_E_DNS_ERROR : SPF_E_SYNTAX;
}

/* libspf2's messages go to our log. */
static void
spf_log_warning(const char *file, int line, const char *msg)
{
	(void)file;
	(void)line;
	mw_log(LOG_DEBUG, "libspf2: %s", msg);
}

static void
spf_log_debug(const char *file, int line, const char *msg)
{
	(void)file;
	(void)line;
	mw_log(LOG_DEBUG, "libspf2: %s", msg);
}

static void __attribute__((noreturn))
spf_log_error(const char *file, int line, const char *msg)
{
	mw_log(LOG_CRIT, "libspf2 internal error at %s:%d: %s", file, line,
	    msg);
	abort();
}

/*
 * libspf2's message handlers are process-wide function pointers: set
 * them once, before any thread can be using the library (global_new
 * runs again on reload, while sessions run).
 */
static pthread_once_t spf_log_once = PTHREAD_ONCE_INIT;

static void
spf_log_setup(void)
{
	SPF_error_handler = spf_log_error;
	SPF_warning_handler = spf_log_warning;
	SPF_info_handler = spf_log_debug;
	SPF_debug_handler = spf_log_debug;
}

/* ------------------------------------------------------------------------
 * Configuration.
 */

/* The ini key of each result's action (a pass is never refused). */
static const char *const result_keys[MW_AUTH_POLICY + 1] = {
	[MW_AUTH_NONE] = "none_action", [MW_AUTH_PASS] = NULL,
	[MW_AUTH_FAIL] = "fail_action", [MW_AUTH_SOFTFAIL] = "softfail_action",
	[MW_AUTH_NEUTRAL] = "neutral_action",
	[MW_AUTH_TEMPERROR] = "temperror_action",
	[MW_AUTH_PERMERROR] = "permerror_action", [MW_AUTH_POLICY] = NULL,
};

static void
spf_cfg_init(void *vc)
{
	struct spf_cfg *c = vc;

	memset(c, 0, sizeof(*c));
	c->act[MW_AUTH_FAIL].kind = MW_ACT_REJECT;
	c->temperror_auto = 1;
	c->helo_fail.kind = MW_ACT_ACCEPT;
	c->check_helo = true;
	c->received_spf = true;
	c->reject_at = REJECT_AT_RCPT;
	c->max_time = 20;
}

static int
spf_cfg_set(void *vc, const char *k, const char *v, char *err, size_t errlen)
{
	struct spf_cfg *c = vc;
	int i;

	for (i = 0; i <= MW_AUTH_POLICY; i++) {
		if (result_keys[i] == NULL || strcmp(k, result_keys[i]) != 0)
			continue;
		if (i == MW_AUTH_TEMPERROR) {
			c->temperror_auto = strcmp(v, "auto") == 0;
			if (c->temperror_auto)
				return 0;
		}
		return mw_action_parse(&c->act[i], v, err, errlen);
	}
	if (strcmp(k, "helo_fail_action") == 0)
		return mw_action_parse(&c->helo_fail, v, err, errlen);
	if (strcmp(k, "check_helo") == 0)
		return mw_parse_bool(v, &c->check_helo, err, errlen);
	if (strcmp(k, "received_spf") == 0)
		return mw_parse_bool(v, &c->received_spf, err, errlen);
	if (strcmp(k, "reject_at") == 0) {
		if (strcmp(v, "rcpt") == 0)
			c->reject_at = REJECT_AT_RCPT;
		else if (strcmp(v, "data") == 0)
			c->reject_at = REJECT_AT_DATA;
		else {
			snprintf(err, errlen, "want rcpt or data");
			return -1;
		}
		return 0;
	}
	if (strcmp(k, "max_time") == 0) {
		if (mw_parse_duration(v, &c->max_time, err, errlen) == -1)
			return -1;
		if (c->max_time < 1 || c->max_time > 600) {
			snprintf(err, errlen, "want 1s to 10m");
			return -1;
		}
		return 0;
	}
	return 1;
}

static void
spf_cfg_dump(const void *vc, void *vfp)
{
	const struct spf_cfg *c = vc;
	FILE *fp = vfp;
	char buf[64];
	int i;

	for (i = 0; i <= MW_AUTH_POLICY; i++) {
		if (result_keys[i] == NULL)
			continue;
		if (i == MW_AUTH_TEMPERROR && c->temperror_auto)
			fprintf(fp, "temperror_action = auto\n");
		else
			fprintf(fp, "%s = %s\n", result_keys[i],
			    mw_action_name(&c->act[i], buf, sizeof(buf)));
	}
	fprintf(fp, "check_helo = %s\nhelo_fail_action = %s\nreject_at = %s\n"
	    "received_spf = %s\nmax_time = %lds\n",
	    c->check_helo ? "yes" : "no",
	    mw_action_name(&c->helo_fail, buf, sizeof(buf)),
	    c->reject_at == REJECT_AT_DATA ? "data" : "rcpt",
	    c->received_spf ? "yes" : "no", c->max_time);
}

static int
spf_cfg_check(void *vc, const struct mw_config *mc, char *err, size_t errlen)
{
	struct spf_cfg *c = vc;

	(void)mc;
	(void)err;
	(void)errlen;
	/* A pass is never refused. */
	c->act[MW_AUTH_PASS].kind = MW_ACT_ACCEPT;
	return 0;
}

/* The action for a result, resolving temperror = auto. */
static struct mw_action
action_for(const struct spf_cfg *c, enum mw_auth_result r)
{
	struct mw_action a = c->act[r];

	if (r == MW_AUTH_TEMPERROR && c->temperror_auto) {
		/*
		 * A temporary error only holds mail back when a fail would
		 * have refused it: otherwise the sender gains nothing by
		 * trying again, and we would delay good mail for a DNS hiccup.
		 */
		a.kind = c->act[MW_AUTH_FAIL].kind == MW_ACT_REJECT ?
		    MW_ACT_TEMPFAIL : MW_ACT_ACCEPT;
		a.score = 0;
	}
	return a;
}

/* ------------------------------------------------------------------------
 * The shared SPF server.
 */

static int
spf_global_new(const struct mw_config *mc, const void *vc, void **gp,
    char *err, size_t errlen)
{
	struct spf_global *g;
	SPF_response_t *resp = NULL;

	(void)vc;
	*gp = NULL;
	pthread_once(&spf_log_once, spf_log_setup);

	if ((g = calloc(1, sizeof(*g))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	g->layer.destroy = NULL;	/* we free it, not libspf2 */
	g->layer.lookup = layer_lookup;
	g->layer.get_spf = layer_get_spf;
	g->layer.get_exp = NULL;	/* exp TXT comes through lookup */
	g->layer.add_cache = NULL;
	g->layer.layer_below = NULL;
	g->layer.name = "mailwarden";
	g->layer.debug = 0;
	if ((g->server = SPF_server_new_dns(&g->layer, 0)) == NULL) {
		free(g);
		snprintf(err, errlen, "cannot create the libspf2 server");
		return -1;
	}
	/*
	 * %{r} is our name; no default explanation (an empty one tells us
	 * the domain gave none); libspf2 keeps its own MX and PTR caps of
	 * 10, our layer counts the rest.
	 */
	if (SPF_server_set_rec_dom(g->server, mc->authserv_id) !=
	    SPF_E_SUCCESS ||
	    SPF_server_set_explanation(g->server, "", &resp) !=
	    SPF_E_SUCCESS) {
		if (resp != NULL)
			SPF_response_free(resp);
		SPF_server_free(g->server);
		free(g);
		snprintf(err, errlen, "cannot configure the libspf2 server");
		return -1;
	}
	if (resp != NULL)
		SPF_response_free(resp);
	SPF_server_set_max_dns_mx(g->server, SPF_LIMIT_NAMES);
	SPF_server_set_max_dns_ptr(g->server, SPF_LIMIT_NAMES);
	SPF_server_set_sanitize(g->server, 1);
	*gp = g;
	return 0;
}

static void
spf_global_free(void *vg)
{
	struct spf_global *g = vg;

	if (g == NULL)
		return;
	SPF_server_free(g->server);
	free(g);
}

/* ------------------------------------------------------------------------
 * One evaluation.
 */

static enum mw_auth_result
map_result(SPF_result_t r)
{
	switch (r) {
	case SPF_RESULT_PASS: return MW_AUTH_PASS;
	case SPF_RESULT_FAIL: return MW_AUTH_FAIL;
	case SPF_RESULT_SOFTFAIL: return MW_AUTH_SOFTFAIL;
	case SPF_RESULT_NEUTRAL: return MW_AUTH_NEUTRAL;
	case SPF_RESULT_NONE: return MW_AUTH_NONE;
	case SPF_RESULT_TEMPERROR: return MW_AUTH_TEMPERROR;
	case SPF_RESULT_PERMERROR: return MW_AUTH_PERMERROR;
	default: return MW_AUTH_PERMERROR;
	}
}

/*
 * The explanation as we pass it on: printable ASCII, bounded, and
 * percent-encodings in upper case (RFC 3986 2.1; libspf2 writes lower).
 */
static void
clean_explanation(char *out, size_t outlen, const char *in)
{
	size_t i, o = 0;

	if (outlen == 0)
		return;
	for (i = 0; in != NULL && in[i] != '\0' && o + 1 < outlen; i++) {
		char c = mw_printable_char((unsigned char)in[i]);

		out[o++] = c;
		if (c == '%' && isxdigit((unsigned char)in[i + 1]) &&
		    isxdigit((unsigned char)in[i + 2]) && o + 2 < outlen) {
			out[o++] = (char)toupper((unsigned char)in[i + 1]);
			out[o++] = (char)toupper((unsigned char)in[i + 2]);
			i += 2;
		}
	}
	out[o] = '\0';
}

/*
 * Evidence for mailwarden-check: the result of one identity and what
 * decided it.  libspf2 does not tell which mechanism matched, only
 * whether one did (SPF_REASON_MECH) or the record ran out of terms
 * (SPF_REASON_DEFAULT).
 */
static void
explain(struct mw_session *s, const struct spf_outcome *o,
    SPF_response_t *resp)
{
	const char *how = "";

	if (!s->explain)
		return;
	if (resp != NULL && o->why[0] == '\0') {
		switch (SPF_response_reason(resp)) {
		case SPF_REASON_MECH:
			how = " (a mechanism matched)";
			break;
		case SPF_REASON_DEFAULT:
			how = " (no mechanism matched: the default result)";
			break;
		default:
			break;
		}
	}
	mw_session_note(s, "spf", "%s %s: %s%s%s%s%s", o->helo_identity ?
	    "helo" : "mailfrom", o->domain, mw_auth_result_name(o->result),
	    how, o->why[0] ? " (" : "", o->why, o->why[0] ? ")" : "");
	if (o->exp[0] != '\0')
		mw_session_note(s, "spf", "explanation: %s", o->exp);
}

/*
 * SPF_request_query_mailfrom() without libspf2's "localhost is always
 * allowed" rule: libspf2 1.2.10 answers pass (SPF_REASON_LOCALHOST) for
 * a client in 127.0.0.0/8 or ::1 before it even looks at the record,
 * and there is no server or request setting to turn that off.  A
 * loopback client that is not in trusted_networks is evaluated like any
 * other: the same steps as libspf2's entry point (spf_request.c: set
 * the current domain, fetch the record through our DNS layer,
 * interpret it with the record kept for the explanation), minus the
 * shortcut.  Everything else goes through libspf2's own entry point.
 */
static void
spf_query(SPF_server_t *server, SPF_request_t *req, SPF_response_t **respp)
{
	SPF_record_t *rec = NULL;
	SPF_response_t *resp;

	if (!SPF_request_is_loopback(req)) {
		SPF_request_query_mailfrom(req, respp);
		return;
	}
	if ((*respp = resp = SPF_response_new(req)) == NULL)
		return;
	req->cur_dom = req->use_helo ? req->helo_dom : req->env_from_dp;
	if (SPF_server_get_record(server, req, resp, &rec) != SPF_E_SUCCESS) {
		if (rec != NULL)
			SPF_record_free(rec);
		SPF_i_done(resp, resp->result, resp->reason, resp->err);
		return;
	}
	resp->spf_record_exp = rec;
	SPF_record_interpret(rec, req, resp, 0);
	SPF_record_free(rec);
	resp->spf_record_exp = NULL;
}

/*
 * check_host() for one identity: sender is the MAIL FROM address
 * without <> (or "postmaster@HELO"), helo the HELO name.  Fills out.
 */
static void
spf_evaluate(struct mw_session *s, const char *sender, const char *helo,
    int helo_identity, uint64_t deadline_ms, struct spf_outcome *out)
{
	struct spf_global *g = mw_session_global(s);
	struct spf_eval ev;
	SPF_request_t *req = NULL;
	SPF_response_t *resp = NULL;
	const char *at = strrchr(sender, '@');
	const char *domain = at != NULL ? at + 1 : sender;
	uint64_t nonce;
	struct in_addr in4;
	struct in6_addr in6;

	memset(out, 0, sizeof(*out));
	out->helo_identity = helo_identity;
	out->result = MW_AUTH_NONE;
	mw_printable_n(out->domain, sizeof(out->domain), domain, strlen(domain));

	if (!identity_domain_ok(domain)) {
		snprintf(out->why, sizeof(out->why), "no valid domain name");
		explain(s, out, NULL);
		return;
	}
	if (g == NULL || (req = SPF_request_new(g->server)) == NULL) {
		out->result = MW_AUTH_TEMPERROR;
		snprintf(out->why, sizeof(out->why), "out of memory");
		return;
	}
	memset(&ev, 0, sizeof(ev));
	ev.s = s;
	arc4random_buf(&nonce, sizeof(nonce));
	snprintf(ev.mark, sizeof(ev.mark), ".mw0-%016llx.invalid",
	    (unsigned long long)nonce);
	ev.dns = s->dns;
	ev.family = s->family;
	memcpy(ev.addr, s->addr, sizeof(ev.addr));
	ev.sender = sender;
	ev.helo = helo;
	ev.deadline_ms = deadline_ms;
	if (s->family == AF_INET) {
		memcpy(&in4, s->addr, 4);
		SPF_request_set_ipv4(req, in4);
	} else {
		memcpy(&in6, s->addr, 16);
		SPF_request_set_ipv6(req, in6);
	}
	if (SPF_request_set_helo_dom(req, helo) != SPF_E_SUCCESS ||
	    SPF_request_set_env_from(req, sender) != 0) {
		SPF_request_free(req);
		out->result = MW_AUTH_TEMPERROR;
		snprintf(out->why, sizeof(out->why), "out of memory");
		return;
	}

	spf_current = &ev;
	spf_query(g->server, req, &resp);
	spf_current = NULL;

	if (ev.abort == ABORT_PERMERROR)
		out->result = MW_AUTH_PERMERROR;
	else if (ev.abort == ABORT_TEMPERROR)
		out->result = MW_AUTH_TEMPERROR;
	else if (resp != NULL)
		out->result = map_result(SPF_response_result(resp));
	else
		out->result = MW_AUTH_TEMPERROR;
	if (out->result == MW_AUTH_FAIL && resp != NULL)
		clean_explanation(out->exp, sizeof(out->exp),
		    SPF_response_get_explanation(resp));
	if (out->result == MW_AUTH_TEMPERROR ||
	    out->result == MW_AUTH_PERMERROR || out->result == MW_AUTH_NONE) {
		if (ev.why[0] != '\0')
			mw_printable_n(out->why, sizeof(out->why), ev.why,
			    strlen(ev.why));
		else if (resp != NULL && SPF_response_errcode(resp) !=
		    SPF_E_SUCCESS)
			snprintf(out->why, sizeof(out->why), "%s",
			    SPF_strerror(SPF_response_errcode(resp)));
	}
	explain(s, out, ev.abort == ABORT_NONE ? resp : NULL);
	if (resp != NULL)
		SPF_response_free(resp);
	SPF_request_free(req);
}

/* ------------------------------------------------------------------------
 * Texts.
 */

static void
client_ip(const struct mw_session *s, char *buf, size_t len)
{
	if (inet_ntop(s->family, s->addr, buf, (socklen_t)len) == NULL)
		mw_printable_n(buf, len, s->ip, strlen(s->ip));
}

/* "example.org designates 192.0.2.1 as permitted sender" and so on. */
static void
describe(const struct mw_session *s, const struct spf_outcome *o,
    struct mw_buf *b)
{
	char ip[INET6_ADDRSTRLEN];
	const char *who = o->domain;

	client_ip(s, ip, sizeof(ip));
	switch (o->result) {
	case MW_AUTH_PASS:
		mw_buf_printf(b, "%s designates %s as permitted sender", who,
		    ip);
		break;
	case MW_AUTH_FAIL:
		mw_buf_printf(b, "%s does not designate %s as permitted "
		    "sender", who, ip);
		break;
	case MW_AUTH_SOFTFAIL:
		mw_buf_printf(b, "transitioning %s does not designate %s as "
		    "permitted sender", who, ip);
		break;
	case MW_AUTH_NEUTRAL:
		mw_buf_printf(b, "%s is neither permitted nor denied by %s",
		    ip, who);
		break;
	case MW_AUTH_TEMPERROR:
		mw_buf_printf(b, "temporary error checking %s: %s", who,
		    o->why[0] ? o->why : "DNS error");
		break;
	case MW_AUTH_PERMERROR:
		mw_buf_printf(b, "permanent error in the SPF record of %s: %s",
		    who, o->why[0] ? o->why : "invalid record");
		break;
	default:
		if (strcmp(o->why, "no valid domain name") == 0)
			mw_buf_printf(b, "%s is not a valid domain name", who);
		else
			mw_buf_printf(b, "%s publishes no SPF record", who);
		break;
	}
}

/* Apply the configured action for an outcome (held by the session). */
static void
act_on(struct mw_session *s, const struct spf_cfg *c,
    const struct spf_outcome *o, int helo_check)
{
	struct mw_action a;
	struct mw_buf text = MW_BUF_INIT(1024);
	const char *xcode;
	int code;

	if (helo_check) {
		if (o->result != MW_AUTH_FAIL)
			return;
		a = c->helo_fail;
	} else
		a = action_for(c, o->result);
	switch (a.kind) {
	case MW_ACT_ACCEPT:
		return;
	case MW_ACT_SCORE:
		mw_session_act(s, &a, 0, "", "spf=%s%s",
		    mw_auth_result_name(o->result),
		    helo_check ? " (HELO)" : "");
		return;
	case MW_ACT_TEMPFAIL:
		code = 451;
		xcode = o->result == MW_AUTH_TEMPERROR ||
		    o->result == MW_AUTH_PERMERROR ? "4.7.24" : "4.7.23";
		break;
	default:
		code = 550;
		xcode = o->result == MW_AUTH_TEMPERROR ||
		    o->result == MW_AUTH_PERMERROR ? "5.7.24" : "5.7.23";
		break;
	}
	describe(s, o, &text);
	if (o->exp[0] != '\0')
		mw_buf_printf(&text, "; %s explains: %s", o->domain, o->exp);
	if (a.kind == MW_ACT_TEMPFAIL)
		mw_buf_puts(&text, ", try again later");
	mw_session_act(s, &a, code, xcode, "SPF %s%s: %s",
	    mw_auth_result_name(o->result),
	    o->helo_identity ? " (HELO)" : "", mw_buf_str(&text));
	mw_buf_free(&text);
}

/* One "key=value;" of Received-SPF: a dot-atom as is, else quoted. */
static void
rspf_value(struct mw_buf *b, const char *key, const char *v)
{
	size_t i;
	int atom = v[0] != '\0' && v[0] != '.';

	for (i = 0; v[i] != '\0' && atom; i++) {
		unsigned char ch = (unsigned char)v[i];

		if (ch == '.' ? v[i + 1] == '.' || v[i + 1] == '\0' :
		    !(is_alnum(ch) || strchr("!#$%&'*+-/=?^_`{|}~", ch)))
			atom = 0;
	}
	mw_buf_printf(b, "%s%s=", b->len == 0 || b->s[b->len - 1] == '\t' ? "" :
	    " ", key);
	if (atom) {
		mw_buf_puts(b, v);
	} else {
		mw_buf_puts(b, "\"");
		for (i = 0; v[i] != '\0' && i < 512; i++) {
			char ch = mw_printable_char((unsigned char)v[i]);

			if (ch == '"' || ch == '\\')
				mw_buf_puts(b, "\\");
			mw_buf_append(b, (const char *)&ch, 1);
		}
		mw_buf_puts(b, "\"");
	}
	mw_buf_puts(b, ";");
}

/* RFC 7208 9.1 */
static void
add_received_spf(struct mw_session *s, const struct spf_outcome *o,
    const char *sender)
{
	struct mw_buf b = MW_BUF_INIT(4096), text = MW_BUF_INIT(1024);
	char comment[1200], ip[INET6_ADDRSTRLEN];

	client_ip(s, ip, sizeof(ip));
	describe(s, o, &text);
	mw_quote_comment(mw_buf_str(&text), comment, sizeof(comment));
	mw_buf_free(&text);
	mw_buf_printf(&b, "%s (%s: %s)\n\t", mw_auth_result_name(o->result),
	    s->cfg->authserv_id, comment);
	rspf_value(&b, "identity", o->helo_identity ? "helo" : "mailfrom");
	rspf_value(&b, "client-ip", ip);
	rspf_value(&b, "envelope-from", sender);
	if (s->helo != NULL && s->helo[0] != '\0')
		rspf_value(&b, "helo", s->helo);
	rspf_value(&b, "receiver", s->cfg->authserv_id);
	/* RFC 7208 section 9.1: prepended, like a trace field. */
	mw_session_insert_header(s, "Received-SPF", mw_buf_str(&b));
	mw_buf_free(&b);
}

/* ------------------------------------------------------------------------
 * Session hooks.
 */

/*
 * Evaluate the HELO identity, or reuse the result for this connection's
 * HELO name (a temporary error is tried again at the next MAIL FROM).
 */
static const struct spf_outcome *
helo_outcome(struct mw_session *s, struct spf_state *st, uint64_t deadline)
{
	struct mw_buf sender = MW_BUF_INIT(4096);

	if (st->helo_checked != NULL && strcmp(st->helo_checked, s->helo) == 0)
		return &st->helo;
	free(st->helo_checked);
	st->helo_checked = NULL;
	mw_buf_printf(&sender, "postmaster@%s", s->helo);
	spf_evaluate(s, mw_buf_str(&sender), s->helo, 1, deadline, &st->helo);
	mw_buf_free(&sender);
	if (st->helo.result != MW_AUTH_TEMPERROR)
		st->helo_checked = strdup(s->helo);	/* NULL: not kept */
	return &st->helo;
}

static void
spf_on_helo(struct mw_session *s, const void *vc, void *vst)
{
	struct spf_state *st = vst;

	(void)vc;
	(void)s;
	free(st->helo_checked);
	st->helo_checked = NULL;
}

static void
spf_on_mail(struct mw_session *s, const void *vc, void *vst)
{
	const struct spf_cfg *c = vc;
	struct spf_state *st = vst;
	const struct spf_outcome *h = NULL;
	const char *helo = s->helo != NULL && s->helo[0] != '\0' ? s->helo :
	    NULL;
	struct mw_buf sender = MW_BUF_INIT(4096);
	/* one budget for both identities: the MTA waits for our answer */
	uint64_t deadline = now_ms() + (uint64_t)c->max_time * 1000;

	if (s->family != AF_INET && s->family != AF_INET6)
		return;		/* no client address: nothing to check */
	st->done = 1;
	st->null_sender = s->mail_from == NULL || s->mail_from[0] == '\0';
	if (st->null_sender) {
		/*
		 * RFC 7208 2.4: the MAIL FROM identity of the null sender is
		 * postmaster@<HELO>.  Its check_host() is the HELO one, done
		 * once; the result is reported (and acted on) as the MAIL
		 * FROM result, and the HELO result is shown beside it as for
		 * any sender, without an action of its own.
		 */
		if (helo != NULL) {
			h = helo_outcome(s, st, deadline);
			st->mfrom = *h;
			st->mfrom.helo_identity = 0;
			mw_buf_printf(&sender, "postmaster@%s", helo);
			st->helo_shown = c->check_helo &&
			    identity_domain_ok(helo);
		} else {
			memset(&st->mfrom, 0, sizeof(st->mfrom));
			st->mfrom.helo_identity = 1;
			st->mfrom.result = MW_AUTH_NONE;
			snprintf(st->mfrom.why, sizeof(st->mfrom.why),
			    "no valid domain name");
		}
		st->helo_separate = 0;
	} else {
		mw_buf_puts(&sender, s->mail_from);
		spf_evaluate(s, s->mail_from, helo != NULL ? helo : "unknown",
		    0, deadline, &st->mfrom);
		/*
		 * RFC 7208 2.3: the HELO check can only be done when the
		 * name is a domain name; for anything else there is no
		 * separate result to report.
		 */
		if (c->check_helo && helo != NULL &&
		    identity_domain_ok(helo)) {
			h = helo_outcome(s, st, deadline);
			st->helo_separate = 1;
		}
	}
	st->sender = strdup(mw_buf_str(&sender));
	mw_buf_free(&sender);
	s->res.spf_done = 1;
	s->res.spf = st->mfrom.result;
	snprintf(s->res.spf_domain, sizeof(s->res.spf_domain), "%s",
	    st->mfrom.domain);
	s->res.spf_helo = h != NULL ? h->result : MW_AUTH_NONE;

	mw_log(LOG_DEBUG, "spf: %s=%s domain=%s%s%s", st->null_sender ?
	    "helo" : "mailfrom", mw_auth_result_name(st->mfrom.result),
	    st->mfrom.domain, st->mfrom.why[0] ? " why=" : "",
	    st->mfrom.why);
	if (c->reject_at == REJECT_AT_RCPT) {
		act_on(s, c, &st->mfrom, 0);
		if (st->helo_separate)
			act_on(s, c, &st->helo, 1);
	}
}

static void
spf_on_eom(struct mw_session *s, const void *vc, void *vst)
{
	const struct spf_cfg *c = vc;
	struct spf_state *st = vst;

	if (!st->done)
		return;
	if (c->reject_at == REJECT_AT_DATA) {
		act_on(s, c, &st->mfrom, 0);
		if (st->helo_separate)
			act_on(s, c, &st->helo, 1);
	}
	/* (the null sender without HELO has no identity to report) */
	if (c->received_spf && st->sender != NULL && st->sender[0] != '\0')
		add_received_spf(s, &st->mfrom, st->sender);
}

static void
authres_one(struct mw_session *s, struct mw_authres *ar,
    const struct spf_outcome *o, int helo_prop, const char *value)
{
	struct mw_buf text = MW_BUF_INIT(1024);

	describe(s, o, &text);
	mw_authres_result(ar, "spf", mw_auth_result_name(o->result));
	mw_authres_comment(ar, "%s", mw_buf_str(&text));
	mw_buf_free(&text);
	if (helo_prop)
		mw_authres_prop(ar, "smtp", "helo", value);
	else
		mw_authres_prop(ar, "smtp", "mailfrom", value);
}

static void
spf_authres(struct mw_session *s, const void *vc, void *vst,
    struct mw_authres *ar)
{
	struct spf_state *st = vst;

	(void)vc;
	if (!st->done)
		return;
	if (st->null_sender) {
		/* (no HELO: no identity at all, nothing to report) */
		if (st->sender != NULL && st->sender[0] != '\0')
			authres_one(s, ar, &st->mfrom, 0, st->sender);
		if (st->helo_shown)
			authres_one(s, ar, &st->helo, 1, s->helo);
		return;
	}
	authres_one(s, ar, &st->mfrom, 0, s->mail_from);
	if (st->helo_separate)
		authres_one(s, ar, &st->helo, 1, s->helo);
}

static void
spf_on_reset(struct mw_session *s, const void *vc, void *vst)
{
	struct spf_state *st = vst;

	(void)vc;
	/* The results published for DMARC and greylisting are per message. */
	s->res.spf_done = 0;
	s->res.spf = s->res.spf_helo = MW_AUTH_NONE;
	s->res.spf_domain[0] = '\0';
	st->done = 0;
	st->null_sender = 0;
	st->helo_separate = 0;
	st->helo_shown = 0;
	free(st->sender);
	st->sender = NULL;
	memset(&st->mfrom, 0, sizeof(st->mfrom));
}

static void
spf_on_close(struct mw_session *s, const void *vc, void *vst)
{
	struct spf_state *st = vst;

	spf_on_reset(s, vc, vst);
	free(st->helo_checked);
	st->helo_checked = NULL;
}

const struct mw_module mw_module_spf = {
	.name = "spf",
	.inbound = 1,
	.cfg_size = sizeof(struct spf_cfg),
	.cfg_init = spf_cfg_init,
	.cfg_set = spf_cfg_set,
	.cfg_check = spf_cfg_check,
	.cfg_dump = spf_cfg_dump,
	.global_new = spf_global_new,
	.global_free = spf_global_free,
	.state_size = sizeof(struct spf_state),
	.on_helo = spf_on_helo,
	.on_mail = spf_on_mail,
	.on_eom = spf_on_eom,
	.authres = spf_authres,
	.on_reset = spf_on_reset,
	.on_close = spf_on_close,
};
