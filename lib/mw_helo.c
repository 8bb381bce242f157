/*
 * mw_helo -- checks of the HELO/EHLO name; section [helo].
 *
 * Each check has its own result and its own ini action.  They are tried
 * in this order and the first that fails is the result:
 *
 *	invalid		not a syntactically valid host name or address
 *			literal (bad characters, empty or over-long labels,
 *			an all-numeric top label, a broken [literal])
 *	literal		an address literal that is not in brackets
 *			("192.0.2.1"), or a bracketed one that is not the
 *			client's address
 *	non-fqdn	a bare word without a dot ("localhost", "PC01")
 *	ours		our own name or address: the authserv-id, this host's
 *			name, [helo] our_names, [helo] our_ips
 *	unknown		the name has no A, AAAA or MX record
 *	mismatch	the name exists but none of its addresses is the
 *			client's (the weakest: plenty of real servers HELO
 *			with a name of their pool or of their domain)
 *	temperror	a lookup failed for now; never read as "unknown"
 *
 * A name that resolves to the client address, or a bracketed literal of
 * the client address, passes.  The lookups (A, AAAA and MX of the name)
 * are sent at HELO and waited for at the first RCPT, where the session
 * gives pre-DATA decisions.
 *
 * There is no registered Authentication-Results method for the HELO
 * name, so the result is written as an experimental method (RFC 8601
 * section 2.7.6 leaves room for them; receivers skip methods they do
 * not know) with the RFC 8601 "smtp.helo" property and the failed
 * check in "policy.helo":
 *	x-helo=pass smtp.helo=mx.example.org
 *	x-helo=fail smtp.helo=localhost policy.helo=non-fqdn
 *	x-helo=temperror smtp.helo=mx.example.org (A lookup: timeout)
 */
#include "config.h"

#include <sys/types.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "mw_authres.h"
#include "mw_cidr.h"
#include "mw_session_priv.h"
#include "mw_text.h"

#define HELO_SHOW_MAX	100	/* bytes of the name in a reply text */

enum helo_check {
	HC_PASS = 0, HC_INVALID, HC_LITERAL, HC_NONFQDN, HC_OURS, HC_UNKNOWN,
	HC_MISMATCH, HC_TEMPERROR, HC_NCHECKS
};

/* Name in policy.helo and the log, ini key, reply text for a reject. */
static const struct {
	const char	*name;
	const char	*key;
	const char	*text;
} checks[HC_NCHECKS] = {
	[HC_PASS] = { "pass", NULL, NULL },
	[HC_INVALID] = { "invalid", "invalid_action", "Invalid name" },
	[HC_LITERAL] = { "literal", "literal_action",
	    "address literal is not your address" },
	[HC_NONFQDN] = { "non-fqdn", "non_fqdn_action",
	    "need fully-qualified hostname" },
	[HC_OURS] = { "ours", "ours_action", "that is my name, not yours" },
	[HC_UNKNOWN] = { "unknown", "unknown_action", "Host not found" },
	[HC_MISMATCH] = { "mismatch", "mismatch_action",
	    "host name does not resolve to your address" },
	[HC_TEMPERROR] = { "temperror", "temperror_action", NULL },
};

struct helo_cfg {
	struct mw_action	 action[HC_NCHECKS];
	bool			 temperror_auto;
	char			**our_names;
	size_t			 n_our_names;
	struct mw_cidr_list	 our_ips;
};

struct helo_state {
	int			 started;	/* a HELO was checked */
	int			 done;
	enum helo_check		 result;
	struct mw_dns_query	*q[3];		/* A, AAAA, MX */
	char			 why[300];	/* comment for temperror */
	int			 applied;	/* action given this transaction */
};

static const int qtypes[3] = { MW_DNS_A, MW_DNS_AAAA, MW_DNS_MX };

static void
helo_cfg_init(void *vc)
{
	struct helo_cfg *c = vc;

	/*
	 * Defaults: refuse what no real mail server sends (a name that is
	 * not a host name at all, or ours); score what some real ones do
	 * (NAT'd literals, bare names, names without DNS); barely score a
	 * name that merely points elsewhere.
	 */
	c->action[HC_INVALID].kind = MW_ACT_REJECT;
	c->action[HC_LITERAL].kind = MW_ACT_SCORE;
	c->action[HC_LITERAL].score = 4;
	c->action[HC_NONFQDN].kind = MW_ACT_SCORE;
	c->action[HC_NONFQDN].score = 4;
	c->action[HC_OURS].kind = MW_ACT_REJECT;
	c->action[HC_UNKNOWN].kind = MW_ACT_SCORE;
	c->action[HC_UNKNOWN].score = 2;
	c->action[HC_MISMATCH].kind = MW_ACT_SCORE;
	c->action[HC_MISMATCH].score = 1;
	c->temperror_auto = true;
}

static int
helo_cfg_set(void *vc, const char *k, const char *v, char *err, size_t errlen)
{
	struct helo_cfg *c = vc;
	int i;

	if (strcmp(k, "our_names") == 0)
		return mw_split_list(v, &c->our_names, &c->n_our_names, err,
		    errlen);
	if (strcmp(k, "our_ips") == 0)
		return mw_cidr_list_parse(&c->our_ips, v, err, errlen);
	if (strcmp(k, "temperror_action") == 0 && strcmp(v, "auto") == 0) {
		c->temperror_auto = true;
		return 0;
	}
	for (i = 1; i < HC_NCHECKS; i++)
		if (strcmp(k, checks[i].key) == 0) {
			if (i == HC_TEMPERROR)
				c->temperror_auto = false;
			return mw_action_parse(&c->action[i], v, err, errlen);
		}
	return 1;
}

/*
 * temperror "auto": tempfail only where the lookups could have led to
 * a reject (unknown or mismatch set to reject); else accept, annotated.
 */
static struct mw_action
temperror_effective(const struct helo_cfg *c)
{
	struct mw_action a = { MW_ACT_ACCEPT, 0 };

	if (!c->temperror_auto)
		return c->action[HC_TEMPERROR];
	if (c->action[HC_UNKNOWN].kind == MW_ACT_REJECT ||
	    c->action[HC_MISMATCH].kind == MW_ACT_REJECT)
		a.kind = MW_ACT_TEMPFAIL;
	return a;
}

static void
helo_cfg_dump(const void *vc, void *fp)
{
	const struct helo_cfg *c = vc;
	struct mw_action t = temperror_effective(c);
	char buf[32];
	size_t j;
	int i;

	for (i = 1; i < HC_TEMPERROR; i++)
		fprintf(fp, "%s = %s\n", checks[i].key,
		    mw_action_name(&c->action[i], buf, sizeof(buf)));
	fprintf(fp, "temperror_action = %s%s%s\n", c->temperror_auto ?
	    "auto (" : "", mw_action_name(&t, buf, sizeof(buf)),
	    c->temperror_auto ? ")" : "");
	fprintf(fp, "our_names =");
	for (j = 0; j < c->n_our_names; j++)
		fprintf(fp, " %s", c->our_names[j]);
	fprintf(fp, "\nour_ips = %zu networks\n", c->our_ips.n);
}

static void
helo_cfg_free(void *vc)
{
	struct helo_cfg *c = vc;

	mw_free_list(c->our_names, c->n_our_names);
	mw_cidr_list_free(&c->our_ips);
}

/* Is the name one of ours? */
static int
is_our_name(struct mw_session *s, const struct helo_cfg *c, const char *h)
{
	char host[256], name[256];
	size_t i, n;

	snprintf(name, sizeof(name), "%s", h);
	n = strlen(name);
	if (n > 0 && name[n - 1] == '.')
		name[n - 1] = '\0';
	if (strcasecmp(name, s->cfg->authserv_id) == 0)
		return 1;
	if (gethostname(host, sizeof(host)) == 0) {
		host[sizeof(host) - 1] = '\0';
		if (strcasecmp(name, host) == 0)
			return 1;
	}
	for (i = 0; i < c->n_our_names; i++)
		if (strcasecmp(name, c->our_names[i]) == 0)
			return 1;
	return 0;
}

/*
 * An address literal, "[192.0.2.1]" or "[IPv6:2001:db8::1]": returns
 * the check result (pass, invalid, literal, ours).
 */
static enum helo_check
check_literal(struct mw_session *s, const struct helo_cfg *c, const char *h)
{
	char buf[INET6_ADDRSTRLEN + 8];
	size_t len = strlen(h);
	uint8_t addr[16], tmp[16];
	int family;
	const char *a;

	if (len < 3 || h[len - 1] != ']' || len - 2 >= sizeof(buf))
		return HC_INVALID;
	memcpy(buf, h + 1, len - 2);
	buf[len - 2] = '\0';
	a = buf;
	/* RFC 5321 section 4.1.3: IPv6 literals carry an "IPv6:" tag. */
	if (strncasecmp(a, "IPv6:", 5) == 0) {
		a += 5;
		if (inet_pton(AF_INET6, a, tmp) != 1)
			return HC_INVALID;
	} else if (inet_pton(AF_INET, a, tmp) != 1)
		return HC_INVALID;
	if (mw_ip_parse(a, &family, addr) == -1)
		return HC_INVALID;
	if (mw_cidr_list_match(&c->our_ips, a))
		return HC_OURS;
	if (s->family == family && memcmp(addr, s->addr, 16) == 0)
		return HC_PASS;
	return HC_LITERAL;
}

/* The checks that need no DNS; HC_PASS means "go on with DNS". */
static enum helo_check
check_syntax(struct mw_session *s, const struct helo_cfg *c, const char *h)
{
	uint8_t tmp[16];

	if (*h == '[')
		return check_literal(s, c, h);
	/* An address without brackets. */
	if (inet_pton(AF_INET, h, tmp) == 1 || inet_pton(AF_INET6, h, tmp) ==
	    1) {
		if (mw_cidr_list_match(&c->our_ips, h))
			return HC_OURS;
		return HC_LITERAL;
	}
	/*
	 * Host name syntax (RFC 1123 section 2.1, with '_' tolerated as
	 * Postfix does: Windows hosts use it), and a top label that is not
	 * all digits (that would be an address, or nonsense).
	 */
	if (!mw_domain_ok(h, MW_DOMAIN_HOST))
		return HC_INVALID;
	if (strchr(h, '.') == NULL || (strchr(h, '.') == h + strlen(h) - 1))
		return HC_NONFQDN;
	if (is_our_name(s, c, h))
		return HC_OURS;
	return HC_PASS;
}

static void
helo_on_helo(struct mw_session *s, const void *vc, void *vst)
{
	const struct helo_cfg *c = vc;
	struct helo_state *st = vst;
	int i;

	/* A second HELO/EHLO replaces the first: check the new name. */
	memset(st, 0, sizeof(*st));
	if (s->helo == NULL)
		return;
	st->started = 1;
	st->result = check_syntax(s, c, s->helo);
	if (st->result != HC_PASS || s->helo[0] == '[') {
		st->done = 1;
		return;
	}
	for (i = 0; i < 3; i++)
		st->q[i] = mw_dns_submit(s->dns, s->helo, qtypes[i]);
}

/* Does an A/AAAA answer hold the client address? */
static int
has_client(const struct mw_session *s, const struct mw_dns_answer *a)
{
	uint8_t addr[16];
	int i, family;

	if (a->status != MW_DNS_OK || (a->type != MW_DNS_A &&
	    a->type != MW_DNS_AAAA))
		return 0;
	for (i = 0; i < a->nrr; i++)
		if (mw_ip_parse(a->rr[i].text, &family, addr) == 0 &&
		    family == s->family && memcmp(addr, s->addr, 16) == 0)
			return 1;
	return 0;
}

static void
finish_dns(struct mw_session *s, struct helo_state *st)
{
	const struct mw_dns_answer *a[3];
	int i, exists = 0, temp = -1;

	for (i = 0; i < 3; i++) {
		a[i] = mw_dns_wait(s->dns, st->q[i]);
		mw_session_note_dns(s, "helo", a[i]);
		if (has_client(s, a[i])) {
			st->result = HC_PASS;
			st->done = 1;
			return;
		}
		if (a[i]->status == MW_DNS_OK)
			exists = 1;
		else if (a[i]->status == MW_DNS_TEMPFAIL && temp < 0)
			temp = i;
	}
	st->done = 1;
	if (temp >= 0) {
		snprintf(st->why, sizeof(st->why), "%s lookup: %s",
		    qtypes[temp] == MW_DNS_A ? "A" : qtypes[temp] == MW_DNS_AAAA ?
		    "AAAA" : "MX", a[temp]->error ? a[temp]->error :
		    "temporary failure");
		st->result = HC_TEMPERROR;
	} else
		st->result = exists ? HC_MISMATCH : HC_UNKNOWN;
}

/* Evidence for mailwarden-check: which check decided, and why. */
static void
explain(struct mw_session *s, const struct helo_state *st)
{
	char h[256];

	if (!s->explain)
		return;
	mw_printable(h, sizeof(h), s->helo);
	switch (st->result) {
	case HC_PASS:
		if (h[0] == '[')
			mw_session_note(s, "helo", "pass: %s is the client's "
			    "address", h);
		else
			mw_session_note(s, "helo", "pass: %s resolves to %s",
			    h, s->ip);
		break;
	case HC_INVALID:
		mw_session_note(s, "helo", "invalid: %s is not a valid host "
		    "name or address literal", h);
		break;
	case HC_LITERAL:
		if (h[0] == '[')
			mw_session_note(s, "helo", "literal: %s is not the "
			    "client's address %s", h, s->ip);
		else
			mw_session_note(s, "helo", "literal: %s is an "
			    "address without [brackets]", h);
		break;
	case HC_NONFQDN:
		mw_session_note(s, "helo", "non-fqdn: %s is a bare "
		    "name, not fully-qualified", h);
		break;
	case HC_OURS:
		mw_session_note(s, "helo", "ours: %s is our own name or "
		    "address", h);
		break;
	case HC_UNKNOWN:
		mw_session_note(s, "helo", "unknown: %s has no A, AAAA or "
		    "MX record", h);
		break;
	case HC_MISMATCH:
		mw_session_note(s, "helo", "mismatch: %s exists, but none "
		    "of its addresses is %s", h, s->ip);
		break;
	default:
		mw_session_note(s, "helo", "temperror: %s", st->why);
		break;
	}
}

static void
helo_on_rcpt(struct mw_session *s, const void *vc, void *vst, const char *rcpt)
{
	const struct helo_cfg *c = vc;
	struct helo_state *st = vst;
	struct mw_action a;
	char name[HELO_SHOW_MAX + 1];

	(void)rcpt;
	if (!st->started || st->applied)
		return;
	if (!st->done)
		finish_dns(s, st);
	explain(s, st);
	st->applied = 1;
	if (st->result == HC_PASS)
		return;
	mw_printable(name, sizeof(name), s->helo);
	if (st->result == HC_TEMPERROR) {
		a = temperror_effective(c);
		if (a.kind == MW_ACT_SCORE)
			mw_session_act(s, &a, 451, "4.7.1", "helo temperror");
		else
			mw_session_act(s, &a, 451, "4.7.1", "<%s>: Helo command "
			    "rejected: temporary DNS failure, try again later",
			    name);
		return;
	}
	a = c->action[st->result];
	if (a.kind == MW_ACT_SCORE)
		mw_session_act(s, &a, 550, "5.7.1", "helo %s",
		    checks[st->result].name);
	else
		mw_session_act(s, &a, 550, "5.7.1", "<%s>: Helo command "
		    "rejected: %s", name, checks[st->result].text);
}

static void
helo_authres(struct mw_session *s, const void *vc, void *vst,
    struct mw_authres *ar)
{
	struct helo_state *st = vst;
	char name[256];

	(void)vc;
	if (!st->started || !st->done)
		return;
	/* A name longer than this is invalid anyway: keep the header short. */
	snprintf(name, sizeof(name), "%s", s->helo);
	if (st->result == HC_PASS) {
		mw_authres_result(ar, "x-helo", "pass");
		mw_authres_prop(ar, "smtp", "helo", name);
	} else if (st->result == HC_TEMPERROR) {
		mw_authres_result(ar, "x-helo", "temperror");
		mw_authres_prop(ar, "smtp", "helo", name);
		mw_authres_comment(ar, "%s", st->why);
	} else {
		mw_authres_result(ar, "x-helo", "fail");
		mw_authres_prop(ar, "smtp", "helo", name);
		mw_authres_prop(ar, "policy", "helo",
		    checks[st->result].name);
	}
}

static void
helo_on_reset(struct mw_session *s, const void *vc, void *vst)
{
	struct helo_state *st = vst;

	(void)vc;
	(void)s;
	st->applied = 0;
}

const struct mw_module mw_module_helo = {
	.name = "helo",
	.inbound = 1,
	.cfg_size = sizeof(struct helo_cfg),
	.cfg_init = helo_cfg_init,
	.cfg_set = helo_cfg_set,
	.cfg_dump = helo_cfg_dump,
	.cfg_free = helo_cfg_free,
	.state_size = sizeof(struct helo_state),
	.on_helo = helo_on_helo,
	.on_rcpt = helo_on_rcpt,
	.authres = helo_authres,
	.on_reset = helo_on_reset,
};
