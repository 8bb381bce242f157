/*
 * mw_sender -- the MAIL FROM domain must be able to receive mail (the
 * bounce goes there), section [sender].
 *
 * At MAIL FROM the MX, A and AAAA questions for the sender's domain are
 * sent without waiting, before the SPF check runs (this module comes
 * before spf in mw_modules[]), so both share the wait; answers are
 * cached by the resolver.  At the first RCPT the result is final:
 *
 *	pass		an MX, or (RFC 5321 5.1 implicit MX; not with
 *			require_mx) an A or AAAA record
 *	nxdomain	the domain does not exist	550 5.1.8
 *	nomail		it exists but has no MX and no address (or no MX
 *			with require_mx)		550 5.1.8
 *	nullmx		"MX 0 ." (RFC 7505): sends and receives no mail
 *							550 5.7.27
 *	temperror	a lookup failed for now		451 4.1.8
 *	nonfqdn		no domain, or not a fully qualified domain name
 *			(Postfix reject_non_fqdn_sender)	504 5.5.2
 *
 * Each result has a configured action (mw_session_act), held by the
 * session until RCPT so that postmaster@ can still be reached.  The null
 * sender <> and address literals (user@[192.0.2.1]) are not checked.
 *
 * For clients that relay through us (trusted networks, authenticated)
 * the recipient's domain is checked the same way at each RCPT
 * (check_relay_recipients): a domain that does not exist or has no
 * address is refused at once with 550 5.1.2, a null MX with 556 5.1.10,
 * so the user learns at once that the address is wrong rather than from
 * a bounce.  A temporary failure accepts (the queue retries).
 */
#include "config.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "mw_authres.h"
#include "mw_session_priv.h"
#include "mw_text.h"

struct sender_cfg {
	bool			require_mx;
	bool			check_relay_recipients;
	struct mw_action	nxdomain_action;
	struct mw_action	nullmx_action;
	struct mw_action	temperror_action;
	struct mw_action	nonfqdn_action;
};

enum sender_result {
	SR_NONE = 0, SR_PASS, SR_NXDOMAIN, SR_NOMAIL, SR_NULLMX,
	SR_TEMPERROR, SR_NONFQDN
};

struct sender_state {
	int			 checking;	/* lookups sent this message */
	int			 applied;	/* result final and acted on */
	enum sender_result	 result;
	char			 domain[256];
	char			 why[300];
	struct mw_dns_query	*mx, *a, *aaaa;
};

static const char *const result_names[] = {
	[SR_NONE] = "none", [SR_PASS] = "pass", [SR_NXDOMAIN] = "nxdomain",
	[SR_NOMAIL] = "nomail", [SR_NULLMX] = "nullmx",
	[SR_TEMPERROR] = "temperror", [SR_NONFQDN] = "nonfqdn",
};

static void
sender_cfg_init(void *vc)
{
	struct sender_cfg *c = vc;

	c->require_mx = false;
	c->check_relay_recipients = true;
	c->nxdomain_action.kind = MW_ACT_REJECT;
	c->nullmx_action.kind = MW_ACT_REJECT;
	c->temperror_action.kind = MW_ACT_TEMPFAIL;
	c->nonfqdn_action.kind = MW_ACT_REJECT;
}

static int
sender_cfg_set(void *vc, const char *k, const char *v, char *err,
    size_t errlen)
{
	struct sender_cfg *c = vc;

	if (strcmp(k, "require_mx") == 0)
		return mw_parse_bool(v, &c->require_mx, err, errlen);
	if (strcmp(k, "check_relay_recipients") == 0)
		return mw_parse_bool(v, &c->check_relay_recipients, err,
		    errlen);
	if (strcmp(k, "nxdomain_action") == 0)
		return mw_action_parse(&c->nxdomain_action, v, err, errlen);
	if (strcmp(k, "nullmx_action") == 0)
		return mw_action_parse(&c->nullmx_action, v, err, errlen);
	if (strcmp(k, "temperror_action") == 0)
		return mw_action_parse(&c->temperror_action, v, err, errlen);
	if (strcmp(k, "nonfqdn_action") == 0)
		return mw_action_parse(&c->nonfqdn_action, v, err, errlen);
	return 1;
}

static void
sender_cfg_dump(const void *vc, void *fp)
{
	const struct sender_cfg *c = vc;
	char b1[32], b2[32], b3[32], b4[32];

	fprintf(fp, "require_mx = %s\n"
	    "check_relay_recipients = %s\nnxdomain_action = %s\n"
	    "nullmx_action = %s\ntemperror_action = %s\n"
	    "nonfqdn_action = %s\n", c->require_mx ? "yes" : "no",
	    c->check_relay_recipients ? "yes" : "no",
	    mw_action_name(&c->nxdomain_action, b1, sizeof(b1)),
	    mw_action_name(&c->nullmx_action, b2, sizeof(b2)),
	    mw_action_name(&c->temperror_action, b3, sizeof(b3)),
	    mw_action_name(&c->nonfqdn_action, b4, sizeof(b4)));
}

/*
 * The domain of an address (without <>), into out.  Returns 1 for a
 * domain name to look up, 0 for an address literal (nothing to check),
 * -1 if there is no fully qualified, syntactically valid domain.
 */
static int
address_domain(const char *addr, char *out, size_t outlen)
{
	const char *at = strrchr(addr, '@'), *d;
	size_t n;

	out[0] = '\0';
	if (at == NULL || at[1] == '\0')
		return -1;
	d = at + 1;
	if (d[0] == '[')
		return 0;
	n = strlen(d);
	if (mw_domain_check(d, n, MW_DOMAIN_HOST | MW_DOMAIN_DOTTED) != NULL)
		return -1;
	if (d[n - 1] == '.')
		n--;
	if (n >= outlen)
		return -1;
	memcpy(out, d, n);
	out[n] = '\0';
	return 1;
}

/* "MX 0 ." as the only MX (RFC 7505 section 3). */
static int
is_null_mx(const struct mw_dns_answer *a)
{
	return a->status == MW_DNS_OK && a->nrr == 1 &&
	    (a->rr[0].text[0] == '\0' || strcmp(a->rr[0].text, ".") == 0);
}

/* An answer with at least one address. */
static int
has_address(const struct mw_dns_answer *a)
{
	return a != NULL && a->status == MW_DNS_OK && a->nrr > 0;
}

static int
temporary(const struct mw_dns_answer *a)
{
	return a != NULL && (a->status == MW_DNS_TEMPFAIL ||
	    a->status == MW_DNS_PERMFAIL);
}

/*
 * Decide from the answers (waiting for those still out).  a and aaaa
 * are NULL when they were not asked (require_mx).
 */
static enum sender_result
evaluate(struct mw_session *s, const char *domain, struct mw_dns_query *qmx,
    struct mw_dns_query *qa, struct mw_dns_query *qaaaa, bool require_mx,
    char *why, size_t whylen, int note)
{
	const struct mw_dns_answer *mx = mw_dns_wait(s->dns, qmx);
	const struct mw_dns_answer *a = NULL, *aaaa = NULL;

	if (note)
		mw_session_note_dns(s, "sender", mx);
	if (mx->status == MW_DNS_NXDOMAIN) {
		snprintf(why, whylen, "%s does not exist", domain);
		return SR_NXDOMAIN;
	}
	if (is_null_mx(mx)) {
		snprintf(why, whylen, "%s has a null MX: it accepts no mail",
		    domain);
		return SR_NULLMX;
	}
	if (mx->status == MW_DNS_OK && mx->nrr > 0) {
		snprintf(why, whylen, "%s has an MX", domain);
		return SR_PASS;
	}
	if (mx->status != MW_DNS_NODATA &&
	    !(mx->status == MW_DNS_OK && mx->nrr == 0)) {
		snprintf(why, whylen, "MX lookup of %s: %s", domain,
		    mx->error ? mx->error : "temporary failure");
		return SR_TEMPERROR;
	}
	if (require_mx || qa == NULL) {
		snprintf(why, whylen, "%s has no MX record", domain);
		return SR_NOMAIL;
	}
	a = mw_dns_wait(s->dns, qa);
	aaaa = mw_dns_wait(s->dns, qaaaa);
	if (note) {
		mw_session_note_dns(s, "sender", a);
		mw_session_note_dns(s, "sender", aaaa);
	}
	if (has_address(a) || has_address(aaaa)) {
		snprintf(why, whylen, "%s has no MX but an address (implicit "
		    "MX)", domain);
		return SR_PASS;
	}
	if (temporary(a) || temporary(aaaa)) {
		const struct mw_dns_answer *t = temporary(a) ? a : aaaa;

		snprintf(why, whylen, "%s lookup of %s: %s",
		    mw_dns_type_name(t->type), domain,
		    t->error ? t->error : "temporary failure");
		return SR_TEMPERROR;
	}
	snprintf(why, whylen, "%s has no MX and no address record", domain);
	return SR_NOMAIL;
}

static void
sender_on_mail(struct mw_session *s, const void *vc, void *vst)
{
	const struct sender_cfg *c = vc;
	struct sender_state *st = vst;
	int r;

	if (s->skip_inbound || s->mail_from == NULL ||
	    s->mail_from[0] == '\0')
		return;		/* the null sender is exempt */
	r = address_domain(s->mail_from, st->domain, sizeof(st->domain));
	if (r == 0)
		return;
	st->checking = 1;
	if (r < 0) {
		st->result = SR_NONFQDN;
		snprintf(st->why, sizeof(st->why), "no fully qualified "
		    "domain in the sender address");
		return;
	}
	st->mx = mw_dns_submit(s->dns, st->domain, MW_DNS_MX);
	if (!c->require_mx) {
		st->a = mw_dns_submit(s->dns, st->domain, MW_DNS_A);
		st->aaaa = mw_dns_submit(s->dns, st->domain, MW_DNS_AAAA);
	}
}

static void
apply(struct mw_session *s, const struct sender_cfg *c,
    struct sender_state *st)
{
	const struct mw_action *a;
	int code;
	const char *xcode;
	char what[600];

	switch (st->result) {
	case SR_NXDOMAIN:
		a = &c->nxdomain_action;
		code = 550;
		xcode = "5.1.8";
		snprintf(what, sizeof(what), "Sender address rejected: "
		    "Domain not found (%s)", st->why);
		break;
	case SR_NOMAIL:
		a = &c->nxdomain_action;
		code = 550;
		xcode = "5.1.8";
		snprintf(what, sizeof(what), "Sender address rejected: "
		    "no mail server for the domain (%s)", st->why);
		break;
	case SR_NULLMX:
		a = &c->nullmx_action;
		code = 550;
		xcode = "5.7.27";
		snprintf(what, sizeof(what), "Sender address rejected: "
		    "domain %s does not accept mail (null MX)", st->domain);
		break;
	case SR_TEMPERROR:
		a = &c->temperror_action;
		code = 451;
		xcode = "4.1.8";
		snprintf(what, sizeof(what), "Sender address: temporary DNS "
		    "failure looking up %s, try again later", st->domain);
		break;
	case SR_NONFQDN:
		a = &c->nonfqdn_action;
		code = 504;
		xcode = "5.5.2";
		snprintf(what, sizeof(what), "Sender address rejected: need "
		    "fully-qualified address");
		break;
	default:
		return;
	}
	if (a->kind == MW_ACT_SCORE)
		mw_session_act(s, a, code, xcode, "sender %s",
		    result_names[st->result]);
	else
		mw_session_act(s, a, code, xcode, "%s", what);
}

/* The recipient's domain, for clients that relay through us. */
static void
check_recipient(struct mw_session *s, const char *rcpt)
{
	char domain[256], why[300];
	struct mw_dns_query *mx, *qa, *qaaaa;
	enum sender_result r;

	if (address_domain(rcpt, domain, sizeof(domain)) != 1)
		return;		/* local or literal: the MTA's business */
	mx = mw_dns_submit(s->dns, domain, MW_DNS_MX);
	qa = mw_dns_submit(s->dns, domain, MW_DNS_A);
	qaaaa = mw_dns_submit(s->dns, domain, MW_DNS_AAAA);
	r = evaluate(s, domain, mx, qa, qaaaa, false, why, sizeof(why),
	    s->explain);
	if (r == SR_NXDOMAIN || r == SR_NOMAIL)
		mw_session_refuse(s, MW_REJECT, 550, "5.1.2", "Recipient "
		    "address rejected: Domain not found (%s)", why);
	else if (r == SR_NULLMX)
		mw_session_refuse(s, MW_REJECT, 556, "5.1.10", "Recipient "
		    "address rejected: domain %s does not accept mail "
		    "(null MX)", domain);
}

static void
sender_on_rcpt(struct mw_session *s, const void *vc, void *vst,
    const char *rcpt)
{
	const struct sender_cfg *c = vc;
	struct sender_state *st = vst;

	if (s->skip_inbound) {
		if (c->check_relay_recipients)
			check_recipient(s, rcpt);
		return;
	}
	if (!st->checking || st->applied)
		return;
	st->applied = 1;
	if (st->result == SR_NONE)
		st->result = evaluate(s, st->domain, st->mx, st->a, st->aaaa,
		    c->require_mx, st->why, sizeof(st->why), s->explain);
	mw_session_note(s, "sender", "%s: %s", result_names[st->result],
	    st->why);
	apply(s, c, st);
}

static void
sender_on_reset(struct mw_session *s, const void *vc, void *vst)
{
	struct sender_state *st = vst;

	(void)s;
	(void)vc;
	memset(st, 0, sizeof(*st));
}

const struct mw_module mw_module_sender = {
	.name = "sender",
	/* runs for relaying clients too: their recipients are checked */
	.inbound = 0,
	/*
	 * Off unless configured (the sample mailwarden.ini turns it on):
	 * an upgrade must not start refusing mail an existing
	 * configuration accepted.
	 */
	.off_by_default = 1,
	.cfg_size = sizeof(struct sender_cfg),
	.cfg_init = sender_cfg_init,
	.cfg_set = sender_cfg_set,
	.cfg_dump = sender_cfg_dump,
	.state_size = sizeof(struct sender_state),
	.on_mail = sender_on_mail,
	.on_rcpt = sender_on_rcpt,
	.on_reset = sender_on_reset,
};
