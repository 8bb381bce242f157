/*
 * mw_iprev -- forward-confirmed reverse DNS of the client, the "iprev"
 * method of RFC 8601 section 3; section [iprev].
 *
 * The PTR query for the client address is sent at connect; as soon as
 * it is answered (checked at every later SMTP event, at the latest at
 * the first RCPT) the forward lookups of its names follow, A for an
 * IPv4 client and AAAA for an IPv6 one.  The result is final when one
 * name resolves back to the client address (pass) or every name has
 * been looked up:
 *
 *	pass		a PTR name resolves back to the client address
 *	fail		none of the PTR names resolves back
 *	temperror	a lookup failed for now (timeout, SERVFAIL, ...) and
 *			no name confirmed: never read as "no PTR"
 *	permerror	no PTR data at all (NXDOMAIN, or NOERROR without
 *			an answer: RFC 8601 section 2.7.3), or the PTR
 *			answer was unusable
 *
 * Only the first MW_IPREV_MAX_NAMES names of the PTR answer are looked
 * up, as RFC 7208 section 5.5 does for SPF's ptr mechanism: a PTR set
 * that large is a misconfiguration or an attempt to make us send
 * queries.
 *
 * The configured action is applied at the first RCPT of every
 * transaction (the session gives pre-DATA decisions there, so that
 * postmaster@ is still reachable).  Sets s->res.iprev_pass.  Written
 * into Authentication-Results as
 *	iprev=pass policy.iprev=192.0.2.1 (mx.example.org)
 * policy.iprev being the property RFC 8601 registers for this method.
 *
 * Generic reverse DNS (generic_action, a score by default): a PTR name
 * that embeds the client's IPv4 address (dotted, dashed, reversed, zero
 * padded, run together, or as 8 hex digits) or has a label word of an
 * access network (dsl, dyn, pool, cable, ppp, dhcp ... generic_words)
 * is the mark of an address handed to end users, not of a mail server.
 * Written as a second result, only when it applies:
 *	x-iprev-generic=fail policy.ptr=dsl-192-0-2-10.pool.example.net
 *	    (embeds the client address, dashed)
 */
#include "config.h"

#include <sys/types.h>
#include <sys/socket.h>
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "mw_authres.h"
#include "mw_session_priv.h"

#define MW_IPREV_MAX_NAMES	10

/* Words of access-network PTR names (whole alphabetic tokens). */
static const char *const generic_default_words[] = {
	"dsl", "adsl", "vdsl", "xdsl", "sdsl", "dyn", "dynamic", "dynip",
	"pool", "cable", "ppp", "pppoe", "dhcp", "dial", "dialup", "dialin",
	"broadband", "customer", "cust", "residential", "cpe", "fttx", "ftth",
	"wifi", "wlan", "mobile", "unassigned",
};
#define N_GENERIC_DEFAULT_WORDS \
	(sizeof(generic_default_words) / sizeof(generic_default_words[0]))

struct iprev_cfg {
	struct mw_action	noptr_action;	/* no PTR record at all */
	struct mw_action	fail_action;	/* PTR does not confirm */
	struct mw_action	temperror_action;
	bool			temperror_auto;
	/* generic reverse DNS (see the top of this file) */
	struct mw_action	generic_action;
	bool			generic_default_words;
	char			**generic_words;
	size_t			n_generic_words;
};

enum iprev_stage { ST_IDLE = 0, ST_PTR, ST_FORWARD, ST_DONE };

struct iprev_state {
	enum iprev_stage	 stage;
	struct mw_dns_query	*ptr;
	int			 nptr;		/* names in the PTR answer */
	int			 nnames;	/* names looked up */
	struct mw_dns_query	*fwd[MW_IPREV_MAX_NAMES];
	const char		*names[MW_IPREV_MAX_NAMES];	/* in ptr's answer */
	enum mw_auth_result	 result;
	int			 noptr;		/* fail because there is no PTR */
	char			 name[256];	/* confirmed (or first) name */
	char			 why[300];	/* comment for the A-R and the log */
	int			 applied;	/* action given this transaction */
	int			 explained;	/* evidence noted */
	int			 generic_checked;
	char			 generic[100];	/* why the name is generic, or "" */
};

static void
iprev_cfg_init(void *vc)
{
	struct iprev_cfg *c = vc;

	/*
	 * No PTR at all is refused, as the big receivers do and as
	 * Postfix's reject_unknown_reverse_client_hostname does: every
	 * legitimate mail server can have one, most spambots on dynamic
	 * addresses have none.  A PTR that does not resolve back is a
	 * much weaker signal (hosting providers, stale records): a score.
	 */
	c->noptr_action.kind = MW_ACT_REJECT;
	c->fail_action.kind = MW_ACT_SCORE;
	c->fail_action.score = 3;
	c->temperror_auto = true;
	/* Scored, not refused: the large receivers junk such mail. */
	c->generic_action.kind = MW_ACT_SCORE;
	c->generic_action.score = 2;
	c->generic_default_words = true;
}

static int
parse_temperror(struct mw_action *a, bool *is_auto, const char *v, char *err,
    size_t errlen)
{
	if (strcmp(v, "auto") == 0) {
		*is_auto = true;
		return 0;
	}
	*is_auto = false;
	return mw_action_parse(a, v, err, errlen);
}

static int
iprev_cfg_set(void *vc, const char *k, const char *v, char *err, size_t errlen)
{
	struct iprev_cfg *c = vc;

	if (strcmp(k, "noptr_action") == 0)
		return mw_action_parse(&c->noptr_action, v, err, errlen);
	if (strcmp(k, "fail_action") == 0)
		return mw_action_parse(&c->fail_action, v, err, errlen);
	if (strcmp(k, "temperror_action") == 0)
		return parse_temperror(&c->temperror_action, &c->temperror_auto,
		    v, err, errlen);
	if (strcmp(k, "generic_action") == 0)
		return mw_action_parse(&c->generic_action, v, err, errlen);
	if (strcmp(k, "generic_default_words") == 0)
		return mw_parse_bool(v, &c->generic_default_words, err, errlen);
	if (strcmp(k, "generic_words") == 0)
		return mw_split_list(v, &c->generic_words, &c->n_generic_words,
		    err, errlen);
	return 1;
}

static void
iprev_cfg_free(void *vc)
{
	struct iprev_cfg *c = vc;

	mw_free_list(c->generic_words, c->n_generic_words);
}

/*
 * Generic reverse DNS.  Kept apart from the FCrDNS logic above: it only
 * looks at the PTR name the check settled on.
 */
static void
iprev_generic_dump(const struct iprev_cfg *c, void *fp)
{
	char b[32];
	size_t i;

	fprintf(fp, "generic_action = %s\ngeneric_default_words = %s\n"
	    "generic_words =", mw_action_name(&c->generic_action, b,
	    sizeof(b)), c->generic_default_words ? "yes" : "no");
	for (i = 0; i < c->n_generic_words; i++)
		fprintf(fp, "%s%s", i ? ", " : " ", c->generic_words[i]);
	fprintf(fp, "\n");
}

/*
 * Numbers of the name as runs of digits with the one separator between
 * each pair ('.', '-', '_' or 'x'); checks every run of 4 or 3 numbers
 * against the client address: a.b.c.d / b.c.d in order or reversed.
 */
static const char *
generic_numbers(const char *name, const uint8_t *a)
{
	const char *p = name;
	long num[64];
	char sep[64];
	int n, i, k;

	while (*p != '\0') {
		if (!isdigit((unsigned char)*p) || (p > name &&
		    isalnum((unsigned char)p[-1]) &&
		    !isalpha((unsigned char)p[-1]))) {
			p++;
			continue;
		}
		for (n = 0; n < 64; ) {
			const char *q = p;
			long v = 0;

			while (isdigit((unsigned char)*q) && q - p < 4)
				v = v * 10 + (*q++ - '0');
			if (q - p > 3 || isdigit((unsigned char)*q))
				break;
			num[n] = v;
			sep[n++] = *q;
			p = q;
			if ((*q == '.' || *q == '-' || *q == '_' || *q == 'x') &&
			    isdigit((unsigned char)q[1]))
				p = q + 1;
			else
				break;
		}
		for (k = 4; k >= 3; k--)
			for (i = 0; i + k <= n; i++) {
				int j, fwd = 1, rev = 1;

				for (j = 0; j < k; j++) {
					if (num[i + j] != a[4 - k + j])
						fwd = 0;
					if (num[i + j] != a[3 - j])
						rev = 0;
				}
				if (fwd || rev) {
					if (rev && !fwd)
						return "reversed";
					return sep[i] == '.' ? "dotted" :
					    sep[i] == '-' ? "dashed" :
					    "with separators";
				}
			}
		while (*p != '\0' && isdigit((unsigned char)*p))
			p++;
	}
	return NULL;
}

/* Is tok (lower case) one of the access-network words? */
static int
generic_word(const struct iprev_cfg *c, const char *tok)
{
	size_t i;

	for (i = 0; c->generic_default_words &&
	    i < N_GENERIC_DEFAULT_WORDS; i++)
		if (strcmp(tok, generic_default_words[i]) == 0)
			return 1;
	for (i = 0; i < c->n_generic_words; i++)
		if (strcasecmp(tok, c->generic_words[i]) == 0)
			return 1;
	return 0;
}

/* Why the PTR name looks generic, into out ("" if it does not). */
static void
generic_reason(const struct iprev_cfg *c, const struct mw_session *s,
    const char *name, char *out, size_t outlen)
{
	char lower[256], pad[16], hex[16], tok[64];
	const char *how, *p, *end;
	size_t i, n;
	int dots;

	out[0] = '\0';
	snprintf(lower, sizeof(lower), "%s", name);
	for (i = 0; lower[i] != '\0'; i++)
		lower[i] = (char)tolower((unsigned char)lower[i]);
	if (s->family == AF_INET) {
		const uint8_t *a = s->addr;

		if ((how = generic_numbers(lower, a)) != NULL) {
			snprintf(out, outlen, "embeds the client address, %s",
			    how);
			return;
		}
		snprintf(pad, sizeof(pad), "%03u%03u%03u%03u", a[0], a[1],
		    a[2], a[3]);
		snprintf(hex, sizeof(hex), "%02x%02x%02x%02x", a[0], a[1],
		    a[2], a[3]);
		if (strstr(lower, pad) != NULL) {
			snprintf(out, outlen, "embeds the client address, "
			    "zero padded");
			return;
		}
		if (strstr(lower, hex) != NULL) {
			snprintf(out, outlen, "embeds the client address, "
			    "hex");
			return;
		}
	}
	/* Access-network words, left of the last two labels (the domain). */
	for (end = lower + strlen(lower), dots = 0; end > lower; end--)
		if (end[-1] == '.' && ++dots == 2)
			break;
	for (p = lower; p < end; ) {
		if (!isalpha((unsigned char)*p)) {
			p++;
			continue;
		}
		for (n = 0; p < end && isalpha((unsigned char)*p); p++)
			if (n + 1 < sizeof(tok))
				tok[n++] = *p;
		tok[n] = '\0';
		if (generic_word(c, tok)) {
			snprintf(out, outlen, "access-network word \"%s\"",
			    tok);
			return;
		}
	}
}

/*
 * "auto": a temporary error tempfails only where the result could
 * otherwise have been a reject; else the message is accepted and the
 * temperror shows in the header.
 */
static struct mw_action
temperror_effective(const struct iprev_cfg *c)
{
	struct mw_action a = { MW_ACT_ACCEPT, 0 };

	if (!c->temperror_auto)
		return c->temperror_action;
	if (c->noptr_action.kind == MW_ACT_REJECT ||
	    c->fail_action.kind == MW_ACT_REJECT)
		a.kind = MW_ACT_TEMPFAIL;
	return a;
}

static void
iprev_cfg_dump(const void *vc, void *fp)
{
	const struct iprev_cfg *c = vc;
	struct mw_action t = temperror_effective(c);
	char b1[32], b2[32], b3[32];

	fprintf(fp, "noptr_action = %s\nfail_action = %s\n"
	    "temperror_action = %s%s%s\n",
	    mw_action_name(&c->noptr_action, b1, sizeof(b1)),
	    mw_action_name(&c->fail_action, b2, sizeof(b2)),
	    c->temperror_auto ? "auto (" : "",
	    mw_action_name(&t, b3, sizeof(b3)), c->temperror_auto ? ")" : "");
	iprev_generic_dump(c, fp);
}

static void
finish(struct iprev_state *st, enum mw_auth_result r)
{
	st->result = r;
	st->stage = ST_DONE;
}

/* Does this A/AAAA answer hold the client address? */
static int
confirms(const struct mw_session *s, const struct mw_dns_answer *a)
{
	uint8_t addr[16];
	int i, family;

	if (a->status != MW_DNS_OK)
		return 0;
	for (i = 0; i < a->nrr; i++)
		if (mw_ip_parse(a->rr[i].text, &family, addr) == 0 &&
		    family == s->family && memcmp(addr, s->addr, 16) == 0)
			return 1;
	return 0;
}

/* The PTR answered: send the forward lookups of its names. */
static void
ptr_answered(struct mw_session *s, struct iprev_state *st,
    const struct mw_dns_answer *a)
{
	int i, type = s->family == AF_INET6 ? MW_DNS_AAAA : MW_DNS_A;

	if (a->status == MW_DNS_NXDOMAIN || a->status == MW_DNS_NODATA ||
	    (a->status == MW_DNS_OK && a->nrr <= 0)) {
		st->noptr = 1;
		snprintf(st->why, sizeof(st->why), "no PTR record");
		finish(st, MW_AUTH_PERMERROR);
		return;
	}
	if (a->status == MW_DNS_PERMFAIL) {
		snprintf(st->why, sizeof(st->why), "PTR lookup: %s",
		    a->error ? a->error : "bad answer");
		finish(st, MW_AUTH_PERMERROR);
		return;
	}
	if (a->status != MW_DNS_OK) {
		snprintf(st->why, sizeof(st->why), "PTR lookup: %s",
		    a->error ? a->error : "temporary failure");
		finish(st, MW_AUTH_TEMPERROR);
		return;
	}
	st->nptr = a->nrr;
	st->nnames = a->nrr < MW_IPREV_MAX_NAMES ? a->nrr : MW_IPREV_MAX_NAMES;
	snprintf(st->name, sizeof(st->name), "%s", a->rr[0].text);
	for (i = 0; i < st->nnames; i++) {
		st->names[i] = a->rr[i].text;
		st->fwd[i] = mw_dns_submit(s->dns, st->names[i], type);
	}
	st->stage = ST_FORWARD;
}

/*
 * Look at the forward answers so far: pass as soon as one name confirms;
 * otherwise, once all are in (with block: wait for them), fail or
 * temperror.
 */
static void
forward_answered(struct mw_session *s, struct iprev_state *st, int block)
{
	const struct mw_dns_answer *a;
	int i, pending = 0, temp = -1;

	/* A confirming name is enough: no need to wait for the others. */
	for (i = 0; i < st->nnames; i++) {
		a = mw_dns_peek(st->fwd[i]);
		if (a->status == MW_DNS_PENDING)
			pending++;
		else if (confirms(s, a)) {
			snprintf(st->name, sizeof(st->name), "%s",
			    st->names[i]);
			st->why[0] = '\0';
			finish(st, MW_AUTH_PASS);
			return;
		}
	}
	if (pending > 0 && !block)
		return;
	for (i = 0; i < st->nnames; i++) {
		a = mw_dns_peek(st->fwd[i]);
		if (a->status == MW_DNS_PENDING)
			a = mw_dns_wait(s->dns, st->fwd[i]);
		if (confirms(s, a)) {
			snprintf(st->name, sizeof(st->name), "%s",
			    st->names[i]);
			st->why[0] = '\0';
			finish(st, MW_AUTH_PASS);
			return;
		}
		if (a->status == MW_DNS_TEMPFAIL && temp < 0)
			temp = i;
	}
	if (temp >= 0) {
		a = mw_dns_peek(st->fwd[temp]);
		snprintf(st->why, sizeof(st->why), "lookup of %s: %s",
		    st->names[temp], a->error ? a->error : "temporary failure");
		finish(st, MW_AUTH_TEMPERROR);
	} else if (st->nptr == 1) {
		snprintf(st->why, sizeof(st->why), "%s does not resolve to "
		    "%s", st->names[0], s->ip);
		finish(st, MW_AUTH_FAIL);
	} else if (st->nptr > st->nnames) {
		snprintf(st->why, sizeof(st->why), "none of the first %d of "
		    "%d PTR names resolves to %s", st->nnames, st->nptr,
		    s->ip);
		finish(st, MW_AUTH_FAIL);
	} else {
		snprintf(st->why, sizeof(st->why), "none of %d PTR names "
		    "resolves to %s", st->nptr, s->ip);
		finish(st, MW_AUTH_FAIL);
	}
}

/*
 * Move the check on as far as the answers that have arrived allow;
 * with block, wait until the result is final.
 */
static void
advance(struct mw_session *s, struct iprev_state *st, int block)
{
	const struct mw_dns_answer *a;

	if (st->stage == ST_IDLE || st->stage == ST_DONE)
		return;
	if (!block)
		mw_dns_poll(s->dns);
	if (st->stage == ST_PTR) {
		a = block ? mw_dns_wait(s->dns, st->ptr) : mw_dns_peek(st->ptr);
		if (a->status == MW_DNS_PENDING)
			return;
		ptr_answered(s, st, a);
	}
	if (st->stage == ST_FORWARD)
		forward_answered(s, st, block);
}

/*
 * Evidence for mailwarden-check, noted once, at the first RCPT (the
 * phase the result is used in, whenever the answers arrived): the PTR
 * answer, each forward answer, and the result.  Explaining waits for
 * forward answers a pass did not need, so that all of them show.
 */
static void
explain(struct mw_session *s, struct iprev_state *st)
{
	int i;

	if (!s->explain || st->explained || st->stage != ST_DONE)
		return;
	st->explained = 1;
	mw_session_note_dns(s, "iprev", mw_dns_peek(st->ptr));
	for (i = 0; i < st->nnames; i++)
		mw_session_note_dns(s, "iprev", mw_dns_wait(s->dns,
		    st->fwd[i]));
	if (st->nptr > st->nnames)
		mw_session_note(s, "iprev", "only the first %d of %d PTR "
		    "names looked up", st->nnames, st->nptr);
	if (st->result == MW_AUTH_PASS)
		mw_session_note(s, "iprev", "pass: %s resolves back to %s",
		    st->name, s->ip);
	else
		mw_session_note(s, "iprev", "%s: %s",
		    mw_auth_result_name(st->result), st->why);
}

/*
 * Generic reverse DNS: once the PTR is in, look at the name the check
 * settled on (the confirming one, else the first) and act once per
 * transaction.
 */
static void
generic_check(struct mw_session *s, const struct iprev_cfg *c,
    struct iprev_state *st)
{
	if (st->nptr <= 0 || st->name[0] == '\0')
		return;
	if (!st->generic_checked) {
		st->generic_checked = 1;
		generic_reason(c, s, st->name, st->generic,
		    sizeof(st->generic));
		if (st->generic[0] != '\0')
			mw_session_note(s, "iprev", "generic PTR name %s: %s",
			    st->name, st->generic);
	}
	if (st->generic[0] == '\0')
		return;
	if (c->generic_action.kind == MW_ACT_SCORE)
		mw_session_act(s, &c->generic_action, 550, "5.7.25",
		    "iprev generic");
	else
		mw_session_act(s, &c->generic_action, 550, "5.7.25",
		    "Client host [%s] has a generic reverse DNS name (%.200s: "
		    "%s); use a mail server with a name of its own", s->ip,
		    st->name, st->generic);
}

static void
iprev_on_connect(struct mw_session *s, const void *vc, void *vst)
{
	struct iprev_state *st = vst;
	char name[128];

	(void)vc;
	if (s->family == 0 ||
	    mw_dns_reverse(s->ip, NULL, name, sizeof(name)) == -1)
		return;
	st->ptr = mw_dns_submit(s->dns, name, MW_DNS_PTR);
	st->stage = ST_PTR;
	advance(s, st, 0);
}

static void
iprev_on_helo(struct mw_session *s, const void *vc, void *vst)
{
	(void)vc;
	advance(s, vst, 0);
}

static void
iprev_on_mail(struct mw_session *s, const void *vc, void *vst)
{
	(void)vc;
	advance(s, vst, 0);
}

static void
iprev_on_rcpt(struct mw_session *s, const void *vc, void *vst,
    const char *rcpt)
{
	const struct iprev_cfg *c = vc;
	struct iprev_state *st = vst;
	struct mw_action t;

	(void)rcpt;
	if (st->stage == ST_IDLE || st->applied)
		return;
	advance(s, st, 1);
	explain(s, st);
	st->applied = 1;
	s->res.iprev_pass = st->result == MW_AUTH_PASS;
	if (s->res.iprev_pass)
		snprintf(s->res.iprev_name, sizeof(s->res.iprev_name), "%s",
		    st->name);
	switch (st->result) {
	case MW_AUTH_PASS:
		break;
	case MW_AUTH_FAIL:
	case MW_AUTH_PERMERROR:
		if (st->noptr) {
			if (c->noptr_action.kind == MW_ACT_SCORE)
				mw_session_act(s, &c->noptr_action, 550,
				    "5.7.25", "iprev no PTR");
			else
				mw_session_act(s, &c->noptr_action, 550,
				    "5.7.25", "Client host [%s] has no "
				    "reverse DNS (PTR) record", s->ip);
		} else if (c->fail_action.kind == MW_ACT_SCORE)
			mw_session_act(s, &c->fail_action, 550, "5.7.25",
			    "iprev %s", mw_auth_result_name(st->result));
		else
			mw_session_act(s, &c->fail_action, 550, "5.7.25",
			    "Client host [%s] failed the reverse DNS check: "
			    "%.200s", s->ip, st->why);
		break;
	case MW_AUTH_TEMPERROR:
		t = temperror_effective(c);
		if (t.kind == MW_ACT_SCORE)
			mw_session_act(s, &t, 451, "4.7.25", "iprev temperror");
		else
			mw_session_act(s, &t, 451, "4.7.25", "Client host [%s]: "
			    "temporary DNS failure checking its reverse DNS, "
			    "try again later", s->ip);
		break;
	default:
		break;
	}
	generic_check(s, c, st);
}

static void
iprev_authres(struct mw_session *s, const void *vc, void *vst,
    struct mw_authres *ar)
{
	struct iprev_state *st = vst;

	(void)vc;
	/* Final at end of message; after an early abort maybe not yet. */
	advance(s, st, 0);
	if (st->stage != ST_DONE)
		return;
	mw_authres_result(ar, "iprev", mw_auth_result_name(st->result));
	mw_authres_prop(ar, "policy", "iprev", s->ip);
	if (st->result == MW_AUTH_PASS)
		mw_authres_comment(ar, "%s", st->name);
	else if (st->why[0] != '\0')
		mw_authres_comment(ar, "%s", st->why);
	if (st->generic[0] != '\0') {
		mw_authres_result(ar, "x-iprev-generic", "fail");
		mw_authres_prop(ar, "policy", "ptr", st->name);
		mw_authres_comment(ar, "%s", st->generic);
	}
}

static void
iprev_on_reset(struct mw_session *s, const void *vc, void *vst)
{
	struct iprev_state *st = vst;

	(void)s;
	(void)vc;
	st->applied = 0;
}

const struct mw_module mw_module_iprev = {
	.name = "iprev",
	.inbound = 1,
	.cfg_size = sizeof(struct iprev_cfg),
	.cfg_init = iprev_cfg_init,
	.cfg_set = iprev_cfg_set,
	.cfg_dump = iprev_cfg_dump,
	.cfg_free = iprev_cfg_free,
	.state_size = sizeof(struct iprev_state),
	.on_connect = iprev_on_connect,
	.on_helo = iprev_on_helo,
	.on_mail = iprev_on_mail,
	.on_rcpt = iprev_on_rcpt,
	.authres = iprev_authres,
	.on_reset = iprev_on_reset,
};
