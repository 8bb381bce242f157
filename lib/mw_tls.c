/*
 * mw_tls -- TLS of the inbound hop, section [tls].
 *
 * The MTA tells the milter whether the client used STARTTLS and how
 * (Postfix milter_helo_macros and Sendmail's Milter.macros.helo send
 * {tls_version}, {cipher}, {cipher_bits} by default); the daemon hands
 * that to mw_session_set_tls().  Written into Authentication-Results the
 * way authentication_milter does:
 *
 *	x-tls=pass smtp.version=TLSv1.3 smtp.cipher=TLS_AES_256_GCM_SHA384
 *	    smtp.bits=256
 *	x-tls=none				plaintext
 *
 * Policy, all off by default (port 25 must take plaintext, RFC 3207
 * section 4): plaintext_action for a client without TLS,
 * old_version_action for a protocol older than min_version, and
 * require_domains: senders of these domains (and their subdomains) must
 * come over TLS (require_action, reject by default).  Decided at MAIL
 * FROM, given at RCPT with the other pre-DATA checks (postmaster@ still
 * receives); refusals are 550 5.7.10 (RFC 5248: encryption needed).
 */
#include "config.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mw_authres.h"
#include "mw_session_priv.h"

struct tls_cfg {
	struct mw_action	plaintext_action;
	struct mw_action	old_version_action;
	int			min_version;	/* 10 = TLSv1.0 ... 13 */
	char			**require_domains;
	size_t			n_require_domains;
	struct mw_action	require_action;
};

struct tls_state {
	int	decided;	/* this transaction */
};

static void
tls_cfg_init(void *vc)
{
	struct tls_cfg *c = vc;

	c->plaintext_action.kind = MW_ACT_ACCEPT;
	c->old_version_action.kind = MW_ACT_ACCEPT;
	c->min_version = 12;
	c->require_action.kind = MW_ACT_REJECT;
}

/* "TLSv1.2" -> 12, "SSLv3" -> 3, anything else -> 0. */
static int
version_number(const char *v)
{
	if (strncasecmp(v, "TLSv1.", 6) == 0 && v[6] >= '0' && v[6] <= '9' &&
	    v[7] == '\0')
		return 10 + (v[6] - '0');
	if (strcasecmp(v, "TLSv1") == 0)
		return 10;
	if (strcasecmp(v, "SSLv3") == 0)
		return 3;
	if (strcasecmp(v, "SSLv2") == 0)
		return 2;
	return 0;
}

static int
tls_cfg_set(void *vc, const char *k, const char *v, char *err, size_t errlen)
{
	struct tls_cfg *c = vc;

	if (strcmp(k, "plaintext_action") == 0)
		return mw_action_parse(&c->plaintext_action, v, err, errlen);
	if (strcmp(k, "old_version_action") == 0)
		return mw_action_parse(&c->old_version_action, v, err, errlen);
	if (strcmp(k, "require_action") == 0)
		return mw_action_parse(&c->require_action, v, err, errlen);
	if (strcmp(k, "min_version") == 0) {
		int n = version_number(v);

		if (n < 10) {
			snprintf(err, errlen, "want TLSv1, "
			    "TLSv1.1, TLSv1.2 or TLSv1.3, not \"%s\"", v);
			return -1;
		}
		c->min_version = n;
		return 0;
	}
	if (strcmp(k, "require_domains") == 0)
		return mw_split_list(v, &c->require_domains,
		    &c->n_require_domains, err, errlen);
	return 1;
}

static void
tls_cfg_dump(const void *vc, void *fp)
{
	const struct tls_cfg *c = vc;
	char b1[32], b2[32], b3[32];
	size_t i;

	fprintf(fp, "plaintext_action = %s\n"
	    "old_version_action = %s\nmin_version = TLSv1.%d\n"
	    "require_action = %s\nrequire_domains =",
	    mw_action_name(&c->plaintext_action, b1, sizeof(b1)),
	    mw_action_name(&c->old_version_action, b2, sizeof(b2)),
	    c->min_version - 10,
	    mw_action_name(&c->require_action, b3, sizeof(b3)));
	for (i = 0; i < c->n_require_domains; i++)
		fprintf(fp, "%s%s", i ? ", " : " ", c->require_domains[i]);
	fprintf(fp, "\n");
}

static void
tls_cfg_free(void *vc)
{
	struct tls_cfg *c = vc;

	mw_free_list(c->require_domains, c->n_require_domains);
}

/* Is the sender's domain d, or under d? */
static int
domain_listed(const char *addr, char *const *v, size_t n)
{
	const char *dom = strrchr(addr, '@');
	size_t i, dl, l;

	if (dom == NULL)
		return 0;
	dom++;
	dl = strlen(dom);
	for (i = 0; i < n; i++) {
		l = strlen(v[i]);
		if (dl == l && strcasecmp(dom, v[i]) == 0)
			return 1;
		if (dl > l && dom[dl - l - 1] == '.' &&
		    strcasecmp(dom + dl - l, v[i]) == 0)
			return 1;
	}
	return 0;
}

static void
tls_on_mail(struct mw_session *s, const void *vc, void *vst)
{
	const struct tls_cfg *c = vc;
	struct tls_state *st = vst;
	int v;

	if (st->decided)
		return;
	st->decided = 1;
	if (s->tls.on) {
		mw_session_note(s, "tls", "%s %s %s bits%s%s", s->tls.version,
		    s->tls.cipher, s->tls.bits, s->tls.verify[0] ?
		    ", client certificate verify=" : "", s->tls.verify);
		v = version_number(s->tls.version);
		if (v != 0 && v < c->min_version) {
			if (c->old_version_action.kind == MW_ACT_SCORE)
				mw_session_act(s, &c->old_version_action, 550,
				    "5.7.10", "tls old version");
			else
				mw_session_act(s, &c->old_version_action, 550,
				    "5.7.10", "%s is too old: TLSv1.%d or newer "
				    "required", s->tls.version,
				    c->min_version - 10);
		}
		return;
	}
	mw_session_note(s, "tls", "plaintext: the client did not use "
	    "STARTTLS");
	if (s->mail_from != NULL && domain_listed(s->mail_from,
	    c->require_domains, c->n_require_domains)) {
		if (c->require_action.kind == MW_ACT_SCORE)
			mw_session_act(s, &c->require_action, 550, "5.7.10",
			    "tls required");
		else
			mw_session_act(s, &c->require_action, 550, "5.7.10",
			    "Mail from %.200s must be sent over TLS "
			    "(STARTTLS)", strrchr(s->mail_from, '@') + 1);
	}
	if (c->plaintext_action.kind == MW_ACT_SCORE)
		mw_session_act(s, &c->plaintext_action, 550, "5.7.10",
		    "tls none");
	else
		mw_session_act(s, &c->plaintext_action, 550, "5.7.10",
		    "Must issue a STARTTLS command first");
}

static void
tls_authres(struct mw_session *s, const void *vc, void *vst,
    struct mw_authres *ar)
{
	(void)vc;
	(void)vst;
	if (!s->tls.on) {
		mw_authres_result(ar, "x-tls", "none");
		return;
	}
	mw_authres_result(ar, "x-tls", "pass");
	mw_authres_prop(ar, "smtp", "version", s->tls.version);
	if (s->tls.cipher[0] != '\0')
		mw_authres_prop(ar, "smtp", "cipher", s->tls.cipher);
	if (s->tls.bits[0] != '\0')
		mw_authres_prop(ar, "smtp", "bits", s->tls.bits);
}

static void
tls_on_reset(struct mw_session *s, const void *vc, void *vst)
{
	struct tls_state *st = vst;

	(void)s;
	(void)vc;
	st->decided = 0;
}

const struct mw_module mw_module_tls = {
	.name = "tls",
	.inbound = 1,
	/* Off unless configured; the sample mailwarden.ini turns it on. */
	.off_by_default = 1,
	.cfg_size = sizeof(struct tls_cfg),
	.cfg_init = tls_cfg_init,
	.cfg_set = tls_cfg_set,
	.cfg_dump = tls_cfg_dump,
	.cfg_free = tls_cfg_free,
	.state_size = sizeof(struct tls_state),
	.on_mail = tls_on_mail,
	.authres = tls_authres,
	.on_reset = tls_on_reset,
};
