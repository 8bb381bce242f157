/*
 * mw_dmarc -- DMARC (RFC 7489), section [dmarc].
 *
 * Evaluates the RFC5322.From domain of every inbound message against
 * the domain's published policy, with libopendmarc doing the policy
 * arithmetic (alignment, p/sp selection) and everything else done here:
 *
 *  - the From header field is parsed by our own strict parser (below):
 *    exactly one From field with one or more mailboxes; no From, several
 *    From fields, or a From we cannot read give dmarc=permerror and
 *    [dmarc] bad_from_action -- never "no DMARC" (the OpenDMARC
 *    CVE-2019-16378 and CVE-2021-34555 class of bypasses).  A From with
 *    several mailboxes is evaluated per domain; the strictest outcome
 *    wins (RFC 7489 section 6.6.1).
 *  - _dmarc.<domain> is looked up through mw_dns as soon as the From
 *    field is seen, together with _dmarc.<organizational domain> (Public
 *    Suffix List, read by libopendmarc), and waited for at end of
 *    message.  TXT records that do not start "v=DMARC1" are discarded;
 *    several DMARC records mean no policy (RFC 7489 section 6.6.3).
 *  - the SPF and DKIM inputs are OUR results (s->res, from mw_spf and
 *    mw_dkim, which run before us), never Authentication-Results or
 *    Received-SPF fields found in the message (CVE-2019-20790 class).
 *
 * Results: "dmarc=pass header.from=example.org policy.dmarc=reject
 * (p=reject sp=reject dis=none)" in Authentication-Results; actions at
 * end of message: p=reject -> reject_action, p=quarantine ->
 * quarantine_action (an annotation header, the MTA's hold queue, or an
 * ordinary action), pct= sampling, override_domains for mailing lists.
 * Postmaster@ and other exempt recipients: annotation only.  A record
 * per message for aggregate reports goes to history_file (JSON lines).
 * See the [dmarc] section of etc/mailwarden.ini for every key.
 */
#include "config.h"

#include <sys/types.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <opendmarc/dmarc.h>

#include "mw_authres.h"
#include "mw_log.h"
#include "mw_session_priv.h"
#include "mw_text.h"

/* Exported by libopendmarc 1.4 (the PSL lookup) but not in dmarc.h. */
int	opendmarc_get_tld(u_char *domain, u_char *tld, size_t tld_len);
/* Exported by libopendmarc 1.4, documented, but not in dmarc.h. */
OPENDMARC_STATUS_T opendmarc_policy_fetch_fo(DMARC_POLICY_T *pctx, int *fo);

#define DMARC_MAX_DOMAINS	8	/* distinct From domains evaluated */
#define DMARC_MAX_MAILBOXES	64	/* mailboxes in the From field */
#define DMARC_MAX_TOKENS	4096	/* tokens of the From field */
#define DMARC_MAX_RECORD	4096	/* a longer record is a permerror */
#define DMARC_DOMAIN_MAX	256

/* ------------------------------------------------------------------ */
/* Configuration */

/* What to do with a message the policy wants quarantined or rejected. */
enum disp_mode {
	DISP_ACTION = 0,	/* an ordinary action: accept, reject, score */
	DISP_HEADER,		/* add quarantine_header, deliver */
	DISP_HOLD		/* smfi_quarantine: the MTA's hold queue */
};

struct disp_action {
	enum disp_mode		mode;
	struct mw_action	act;	/* DISP_ACTION */
};

struct dmarc_cfg {
	char			*psl_file;
	struct disp_action	 reject_action;
	struct disp_action	 quarantine_action;
	char			*reject_text;
	char			*quarantine_header;
	bool			 honor_pct;
	char			**override_domains;
	size_t			 n_override;
	struct mw_action	 bad_from_action;
	struct mw_action	 permerror_action;
	struct mw_action	 temperror_action;
	char			*history_file;
};

static void
dmarc_cfg_init(void *vc)
{
	struct dmarc_cfg *c = vc;

	c->psl_file = strdup(MW_DEFAULT_PSL);
	c->reject_action.mode = DISP_ACTION;
	c->reject_action.act.kind = MW_ACT_REJECT;
	c->quarantine_action.mode = DISP_HEADER;
	c->reject_text = strdup("Unauthenticated mail from this domain is "
	    "not accepted due to its DMARC policy");
	c->quarantine_header = strdup("X-Mailwarden-Quarantine");
	c->honor_pct = true;
	c->bad_from_action.kind = MW_ACT_REJECT;
	c->permerror_action.kind = MW_ACT_ACCEPT;
	c->temperror_action.kind = MW_ACT_ACCEPT;
	c->history_file = strdup("");
}

static int
parse_disp(struct disp_action *d, const char *v, char *err, size_t errlen)
{
	if (strcasecmp(v, "header") == 0) {
		d->mode = DISP_HEADER;
		return 0;
	}
	if (strcasecmp(v, "hold") == 0) {
		d->mode = DISP_HOLD;
		return 0;
	}
	d->mode = DISP_ACTION;
	if (mw_action_parse(&d->act, v, err, errlen) == -1) {
		snprintf(err, errlen, "want header, hold, accept, tempfail, "
		    "reject or a score, not \"%s\"", v);
		return -1;
	}
	return 0;
}

static const char *
disp_name(const struct disp_action *d, char *buf, size_t len)
{
	if (d->mode == DISP_HEADER)
		return "header";
	if (d->mode == DISP_HOLD)
		return "hold";
	return mw_action_name(&d->act, buf, len);
}

/* A header field name: printable ASCII without ':' or space. */
static int
valid_field_name(const char *s)
{
	if (*s == '\0' || strlen(s) > 76)
		return 0;
	for (; *s != '\0'; s++)
		if (*s <= 0x20 || *s >= 0x7f || *s == ':')
			return 0;
	return 1;
}

static int
dmarc_cfg_set(void *vc, const char *k, const char *v, char *err,
    size_t errlen)
{
	struct dmarc_cfg *c = vc;

	if (strcmp(k, "psl_file") == 0)
		return mw_set_string(&c->psl_file, v, err, errlen);
	if (strcmp(k, "reject_action") == 0)
		return parse_disp(&c->reject_action, v, err, errlen);
	if (strcmp(k, "quarantine_action") == 0)
		return parse_disp(&c->quarantine_action, v, err, errlen);
	if (strcmp(k, "reject_text") == 0) {
		if (*v == '\0') {
			snprintf(err, errlen, "reject_text must not be empty");
			return -1;
		}
		return mw_set_string(&c->reject_text, v, err, errlen);
	}
	if (strcmp(k, "quarantine_header") == 0) {
		if (!valid_field_name(v)) {
			snprintf(err, errlen, "\"%s\" is not a header field "
			    "name", v);
			return -1;
		}
		return mw_set_string(&c->quarantine_header, v, err, errlen);
	}
	if (strcmp(k, "honor_pct") == 0)
		return mw_parse_bool(v, &c->honor_pct, err, errlen);
	if (strcmp(k, "override_domains") == 0)
		return mw_split_list(v, &c->override_domains, &c->n_override,
		    err, errlen);
	if (strcmp(k, "bad_from_action") == 0)
		return mw_action_parse(&c->bad_from_action, v, err, errlen);
	if (strcmp(k, "permerror_action") == 0)
		return mw_action_parse(&c->permerror_action, v, err, errlen);
	if (strcmp(k, "temperror_action") == 0)
		return mw_action_parse(&c->temperror_action, v, err, errlen);
	if (strcmp(k, "history_file") == 0)
		return mw_set_string(&c->history_file, v, err, errlen);
	return 1;
}

static int
dmarc_cfg_check(void *vc, const struct mw_config *mc, char *err,
    size_t errlen)
{
	struct dmarc_cfg *c = vc;
	size_t i, n;
	char why[300];

	(void)mc;
	if (c->psl_file == NULL || c->reject_text == NULL ||
	    c->quarantine_header == NULL || c->history_file == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	/* Domains are compared lower-case, without a trailing dot. */
	for (i = 0; i < c->n_override; i++) {
		char *d = c->override_domains[i];

		for (n = 0; d[n] != '\0'; n++)
			d[n] = (char)tolower((unsigned char)d[n]);
		while (n > 0 && d[n - 1] == '.')
			d[--n] = '\0';
		if (!mw_domain_ok(d, MW_DOMAIN_LDH)) {
			snprintf(err, errlen, "override_domains: bad domain "
			    "\"%s\"", c->override_domains[i]);
			return -1;
		}
	}
	if (*c->psl_file != '\0' &&
	    access(c->psl_file, R_OK) == -1) {
		snprintf(err, errlen, "psl_file %s: %s (apt-get install "
		    "publicsuffix, or set psl_file)", c->psl_file,
		    strerror(errno));
		return -1;
	}
	/* Never a directory, FIFO or /dev/zero: the loader would hang. */
	if (*c->psl_file != '\0' &&
	    mw_check_regular(c->psl_file, MW_CONFIG_MAX_BYTES, why,
	    sizeof(why)) == -1) {
		snprintf(err, errlen, "psl_file %s", why);
		return -1;
	}
	return 0;
}

static void
dmarc_cfg_dump(const void *vc, void *vfp)
{
	const struct dmarc_cfg *c = vc;
	FILE *fp = vfp;
	char b1[32], b2[32], b3[32], b4[32], b5[32];
	size_t i;

	fprintf(fp, "psl_file = %s\nreject_action = %s\n"
	    "quarantine_action = %s\nreject_text = %s\n"
	    "quarantine_header = %s\nhonor_pct = %s\noverride_domains =",
	    c->psl_file,
	    disp_name(&c->reject_action, b1, sizeof(b1)),
	    disp_name(&c->quarantine_action, b2, sizeof(b2)),
	    c->reject_text, c->quarantine_header,
	    c->honor_pct ? "yes" : "no");
	for (i = 0; i < c->n_override; i++)
		fprintf(fp, "%s%s", i ? ", " : " ", c->override_domains[i]);
	fprintf(fp, "\nbad_from_action = %s\npermerror_action = %s\n"
	    "temperror_action = %s\nhistory_file = %s\n",
	    mw_action_name(&c->bad_from_action, b3, sizeof(b3)),
	    mw_action_name(&c->permerror_action, b4, sizeof(b4)),
	    mw_action_name(&c->temperror_action, b5, sizeof(b5)),
	    c->history_file);
}

static void
dmarc_cfg_free(void *vc)
{
	struct dmarc_cfg *c = vc;

	free(c->psl_file);
	free(c->reject_text);
	free(c->quarantine_header);
	free(c->history_file);
	mw_free_list(c->override_domains, c->n_override);
}

/* ------------------------------------------------------------------ */
/*
 * The library: one initialisation per process.  libopendmarc keeps the
 * Public Suffix List in a process-wide table; opendmarc_tld_read_file()
 * swaps in a new one under its own mutex, so a reload (SIGHUP: a new
 * context while the old one still serves sessions) may re-read it.
 */

static pthread_mutex_t	lib_lock = PTHREAD_MUTEX_INITIALIZER;
static int		lib_refs;

static int
dmarc_global_new(const struct mw_config *mc, const void *vc, void **global,
    char *err, size_t errlen)
{
	const struct dmarc_cfg *c = vc;
	OPENDMARC_LIB_T lib;
	int r = 0;

	(void)mc;
	*global = NULL;
	pthread_mutex_lock(&lib_lock);
	if (lib_refs == 0) {
		memset(&lib, 0, sizeof(lib));
		lib.tld_type = *c->psl_file != '\0' ?
		    OPENDMARC_TLD_TYPE_MOZILLA : OPENDMARC_TLD_TYPE_NONE;
		snprintf((char *)lib.tld_source_file,
		    sizeof(lib.tld_source_file), "%s", c->psl_file);
		r = opendmarc_policy_library_init(&lib);
	} else if (*c->psl_file != '\0')
		r = opendmarc_tld_read_file(c->psl_file, "//", "*.", "!");
	if (r == 0)
		lib_refs++;
	pthread_mutex_unlock(&lib_lock);
	if (r != 0) {
		snprintf(err, errlen, "dmarc: cannot load psl_file %s: %s",
		    c->psl_file, strerror(r > 0 && r < 200 ? r : EINVAL));
		return -1;
	}
	*global = &lib_refs;	/* a token: the library is ours */
	return 0;
}

static void
dmarc_global_free(void *global)
{
	if (global == NULL)
		return;
	pthread_mutex_lock(&lib_lock);
	if (--lib_refs == 0)
		opendmarc_policy_library_shutdown(NULL);
	pthread_mutex_unlock(&lib_lock);
}

/* ------------------------------------------------------------------ */
/* Per-message state */

enum dres {
	DR_PASS = 0, DR_NONE, DR_PERMERROR, DR_TEMPERROR, DR_FAIL
};	/* in rising severity: the worst domain decides */

static const char *
dres_name(enum dres r)
{
	switch (r) {
	case DR_PASS: return "pass";
	case DR_NONE: return "none";
	case DR_PERMERROR: return "permerror";
	case DR_TEMPERROR: return "temperror";
	case DR_FAIL: return "fail";
	}
	return "none";
}

struct dmarc_domain {
	char			 domain[DMARC_DOMAIN_MAX];	/* From domain */
	char			 org[DMARC_DOMAIN_MAX];	/* organizational */
	struct mw_dns_query	*q_from, *q_org;	/* q_org: NULL if same */

	enum dres		 result;
	char			 why[600];	/* comment for errors, none */
	int			 have_policy;	/* a record was applied */
	int			 at_org;	/* record found at org domain */
	int			 p, sp, pct, adkim, aspf;
	int			 policy;	/* 'r' 'q' 'n' applying to us */
	int			 dkim_aligned, spf_aligned;
	char			*rua;		/* comma-separated, or NULL */
	char			*fo;
};

struct dmarc_state {
	int			 n_from;	/* From fields seen */
	const char		*from_error;	/* NULL: From parsed */
	char			 from_why[128];	/* from_error's text */
	size_t			 n_mailboxes;
	size_t			 n_domains;
	struct dmarc_domain	 d[DMARC_MAX_DOMAINS];

	int			 evaluated;
	enum dres		 result;	/* of the message */
	size_t			 worst;		/* index of the deciding domain */
	const char		*dis;		/* none, quarantine, reject */
	char			 note[160];	/* override, pct, exempt ... */
};

static void
free_domains(struct dmarc_state *st)
{
	size_t i;

	for (i = 0; i < st->n_domains; i++) {
		free(st->d[i].rua);
		free(st->d[i].fo);
	}
}

static void
dmarc_on_reset(struct mw_session *s, const void *vc, void *vst)
{
	struct dmarc_state *st = vst;

	(void)vc;
	(void)s;
	free_domains(st);
	memset(st, 0, sizeof(*st));
}

/* ------------------------------------------------------------------ */
/*
 * The From field body (RFC 5322 section 3.4 mailbox-list, plus RFC 6854
 * groups), parsed only far enough to find the domain of every mailbox.
 * Strict where strictness stops ambiguity: an '@' in a display name,
 * text after the angle-addr, two angle-addrs in one mailbox, a domain
 * literal or a non-ASCII domain, an unterminated quote, comment or
 * angle bracket are all errors (permerror), because a reader that
 * guesses differently from the MUA is how DMARC gets bypassed.
 * Lenient where it is harmless: several words before '@' (obs-local-
 * part), raw 8-bit display names, empty list elements (obs-mbox-list).
 */

enum tok_kind { T_ATOM, T_QSTR, T_DLIT, T_SPECIAL };

struct tok {
	enum tok_kind	 kind;
	const char	*p;	/* into the field body */
	size_t		 len;
	char		 c;	/* T_SPECIAL */
};

struct from_parse {
	struct tok	*t;
	size_t		 n;
	const char	*why;	/* error */
};

static int
tokenize(const char *v, struct from_parse *fp)
{
	const char *p = v;
	size_t cap = 0;

	fp->t = NULL;
	fp->n = 0;
	while (*p != '\0') {
		unsigned char c = (unsigned char)*p;
		struct tok tk;

		if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
			p++;
			continue;
		}
		if (c == '(') {		/* comment, nested, with quoted-pairs */
			int depth = 0;

			do {
				if (*p == '\\' && p[1] != '\0')
					p++;
				else if (*p == '(') {
					if (++depth > 64) {
						fp->why = "comments nested too "
						    "deep";
						return -1;
					}
				} else if (*p == ')')
					depth--;
				p++;
			} while (depth > 0 && *p != '\0');
			if (depth > 0) {
				fp->why = "an unterminated comment";
				return -1;
			}
			continue;
		}
		if (c < 0x20 || c == 0x7f) {
			fp->why = "control character";
			return -1;
		}
		memset(&tk, 0, sizeof(tk));
		tk.p = p;
		if (c == '"' || c == '[') {
			char end = c == '"' ? '"' : ']';

			tk.kind = c == '"' ? T_QSTR : T_DLIT;
			for (p++; *p != '\0' && *p != end; p++)
				if (*p == '\\' && p[1] != '\0')
					p++;
			if (*p == '\0') {
				fp->why = c == '"' ? "an unterminated quoted "
				    "string" : "an unterminated domain literal";
				return -1;
			}
			p++;
		} else if (strchr("()<>[]:;@\\,\"", c) != NULL) {
			tk.kind = T_SPECIAL;
			tk.c = (char)c;
			p++;
		} else {
			/* An atom; dots belong to it (dot-atom, obs-phrase). */
			tk.kind = T_ATOM;
			while (*p != '\0' && (unsigned char)*p > 0x20 &&
			    *p != 0x7f && strchr("()<>[]:;@\\,\"", *p) == NULL)
				p++;
		}
		tk.len = (size_t)(p - tk.p);
		if (tk.kind == T_SPECIAL && (tk.c == ')' || tk.c == ']' ||
		    tk.c == '\\')) {
			fp->why = "stray special character";
			return -1;
		}
		if (fp->n == cap) {
			struct tok *nt;

			if (cap >= DMARC_MAX_TOKENS) {
				fp->why = "too complex";
				return -1;
			}
			cap = cap ? cap * 2 : 32;
			if ((nt = realloc(fp->t, cap * sizeof(*nt))) == NULL) {
				fp->why = "out of memory";
				return -1;
			}
			fp->t = nt;
		}
		fp->t[fp->n++] = tk;
	}
	return 0;
}

static int
is_special(const struct tok *t, char c)
{
	return t->kind == T_SPECIAL && t->c == c;
}

/*
 * A domain as DMARC can use it (LDH labels, underscore tolerated,
 * optional final dot), lower-cased into out without the dot.
 */
static int
domain_copy(const char *p, size_t len, char *out, size_t outlen)
{
	size_t i;

	if (mw_domain_check(p, len, MW_DOMAIN_LDH) != NULL)
		return -1;
	if (p[len - 1] == '.')
		len--;
	if (len >= outlen)
		return -1;
	for (i = 0; i < len; i++)
		out[i] = (char)tolower((unsigned char)p[i]);
	out[len] = '\0';
	return 0;
}

/* One addr-spec, tokens [a, b): words '@' domain. */
static int
addr_spec(struct dmarc_state *st, const struct from_parse *fp, size_t a,
    size_t b, const char **why)
{
	char dom[DMARC_DOMAIN_MAX];
	const struct tok *d;
	size_t i;

	if (b < a + 3 || !is_special(&fp->t[b - 2], '@')) {
		*why = "a mailbox without an address";
		for (i = a; i < b; i++)
			if (is_special(&fp->t[i], '@'))
				*why = "a malformed address";
		return -1;
	}
	for (i = a; i < b - 2; i++)
		if (fp->t[i].kind != T_ATOM && fp->t[i].kind != T_QSTR) {
			*why = "a malformed address";
			return -1;
		}
	d = &fp->t[b - 1];
	if (d->kind == T_DLIT) {
		*why = "an address with a domain literal";
		return -1;
	}
	if (d->kind != T_ATOM || domain_copy(d->p, d->len, dom,
	    sizeof(dom)) == -1) {
		*why = "an address with an invalid domain";
		return -1;
	}
	if (++st->n_mailboxes > DMARC_MAX_MAILBOXES) {
		*why = "too many mailboxes";
		return -1;
	}
	for (i = 0; i < st->n_domains; i++)
		if (strcmp(st->d[i].domain, dom) == 0)
			return 0;
	if (st->n_domains == DMARC_MAX_DOMAINS) {
		*why = "too many domains";
		return -1;
	}
	snprintf(st->d[st->n_domains++].domain, DMARC_DOMAIN_MAX, "%s", dom);
	return 0;
}

/* One mailbox, tokens [a, b): addr-spec, or [phrase] "<" addr-spec ">". */
static int
mailbox(struct dmarc_state *st, const struct from_parse *fp, size_t a,
    size_t b, const char **why)
{
	size_t i, lt = b, gt = b;

	for (i = a; i < b; i++) {
		if (is_special(&fp->t[i], '<')) {
			if (lt != b) {
				*why = "two angle-addrs in one mailbox";
				return -1;
			}
			lt = i;
		} else if (is_special(&fp->t[i], '>')) {
			if (lt == b || gt != b) {
				*why = "a stray '>'";
				return -1;
			}
			gt = i;
		}
	}
	if (lt == b)
		return addr_spec(st, fp, a, b, why);
	if (gt == b) {
		*why = "an unterminated angle-addr";
		return -1;
	}
	if (gt + 1 != b) {
		*why = "text after the angle-addr";
		return -1;
	}
	/* The display name: words (and the dots of obs-phrase) only. */
	for (i = a; i < lt; i++)
		if (fp->t[i].kind != T_ATOM && fp->t[i].kind != T_QSTR) {
			*why = is_special(&fp->t[i], '@') ? "an '@' in the "
			    "display name" : "a special character in the "
			    "display name";
			return -1;
		}
	/* obs-route "@a,@b:" before the address: skip it. */
	i = lt + 1;
	if (i < gt && is_special(&fp->t[i], '@')) {
		while (i < gt && !is_special(&fp->t[i], ':'))
			i++;
		if (i == gt) {
			*why = "a malformed route";
			return -1;
		}
		i++;
	}
	return addr_spec(st, fp, i, gt, why);
}

/*
 * Parse the From field body into st->d[].domain.  Returns 0, or -1 with
 * st->from_error set.
 */
static int
parse_from(struct dmarc_state *st, const char *value)
{
	struct from_parse fp;
	const char *why = NULL;
	size_t i, start = 0;
	int in_group = 0, in_angle = 0;

	memset(&fp, 0, sizeof(fp));
	if (tokenize(value, &fp) == -1) {
		why = fp.why;
		goto fail;
	}
	/*
	 * Split at ',' (and at the ':' and ';' of a group) outside angle
	 * brackets; each piece is one mailbox or empty.
	 */
	for (i = 0; i <= fp.n; i++) {
		const struct tok *t = i < fp.n ? &fp.t[i] : NULL;

		if (t != NULL && is_special(t, '<'))
			in_angle = 1;
		else if (t != NULL && is_special(t, '>'))
			in_angle = 0;
		if (t != NULL && (in_angle || (!is_special(t, ',') &&
		    !is_special(t, ':') && !is_special(t, ';'))))
			continue;
		if (t != NULL && is_special(t, ':')) {
			/* group: display-name ":" [mailbox-list] ";" */
			size_t j;

			if (in_group || i == start) {
				why = "a malformed group";
				goto fail;
			}
			for (j = start; j < i; j++)
				if (fp.t[j].kind != T_ATOM &&
				    fp.t[j].kind != T_QSTR) {
					why = "a malformed group";
					goto fail;
				}
			in_group = 1;
			start = i + 1;
			continue;
		}
		if (t != NULL && is_special(t, ';') && !in_group) {
			why = "a stray ';'";
			goto fail;
		}
		if (i > start && mailbox(st, &fp, start, i, &why) == -1)
			goto fail;
		if (t != NULL && is_special(t, ';'))
			in_group = 0;
		start = i + 1;
	}
	if (in_angle || in_group) {
		why = in_angle ? "an unterminated angle-addr" :
		    "an unterminated group";
		goto fail;
	}
	free(fp.t);
	if (st->n_domains == 0) {
		st->from_error = "From header field without an address";
		return -1;
	}
	return 0;
fail:
	free(fp.t);
	st->n_domains = 0;
	snprintf(st->from_why, sizeof(st->from_why), "unreadable From header "
	    "field: %s", why != NULL ? why : "?");
	st->from_error = st->from_why;
	return -1;
}

/* ------------------------------------------------------------------ */
/* Organizational domain and DNS */

static void
org_domain(const char *domain, char *out, size_t outlen)
{
	u_char buf[DMARC_DOMAIN_MAX];
	const char *p;
	size_t i;

	memset(buf, 0, sizeof(buf));
	if (opendmarc_get_tld((u_char *)domain, buf, sizeof(buf)) == 0 &&
	    buf[0] != '\0') {
		snprintf(out, outlen, "%s", (char *)buf);
	} else {
		/*
		 * No rule matched (a TLD missing from the list, like .test):
		 * the PSL's default rule "*" makes the last label the
		 * public suffix, so the last two are the org domain.
		 */
		p = strrchr(domain, '.');
		if (p != NULL) {
			while (p > domain && p[-1] != '.')
				p--;
		}
		snprintf(out, outlen, "%s", p != NULL ? p : domain);
	}
	for (i = 0; out[i] != '\0'; i++)
		out[i] = (char)tolower((unsigned char)out[i]);
}

static void
submit_lookups(struct mw_session *s, struct dmarc_state *st)
{
	char name[DMARC_DOMAIN_MAX + 8];
	size_t i;

	for (i = 0; i < st->n_domains; i++) {
		struct dmarc_domain *d = &st->d[i];

		snprintf(name, sizeof(name), "_dmarc.%s", d->domain);
		d->q_from = mw_dns_submit(s->dns, name, MW_DNS_TXT);
		/*
		 * Ask for the org domain's record at once too: it is
		 * needed whenever the From domain has none, and asking
		 * now costs no waiting later.
		 */
		if (strcmp(d->org, d->domain) != 0) {
			snprintf(name, sizeof(name), "_dmarc.%s", d->org);
			d->q_org = mw_dns_submit(s->dns, name, MW_DNS_TXT);
		}
	}
}

static void
dmarc_on_header(struct mw_session *s, const void *vc, void *vst,
    const char *name, const char *value)
{
	struct dmarc_state *st = vst;
	size_t i;

	(void)vc;
	if (!mw_header_name_is(name, "From"))
		return;
	if (++st->n_from > 1)
		return;
	if (parse_from(st, value) == -1)
		return;		/* permerror at end of message */
	for (i = 0; i < st->n_domains; i++)
		org_domain(st->d[i].domain, st->d[i].org,
		    sizeof(st->d[i].org));
	submit_lookups(s, st);
}

/*
 * Is this TXT record a DMARC record?  RFC 7489 section 6.4: it starts
 * with the version tag, "v" *WSP "=" *WSP "DMARC1" (case-sensitive),
 * followed by ';', white space or the end.
 */
static int
is_dmarc_record(const char *t, size_t len)
{
	size_t i = 0;

	if (memchr(t, '\0', len) != NULL)
		return 0;
	if (len < 1 || t[i++] != 'v')
		return 0;
	while (i < len && (t[i] == ' ' || t[i] == '\t'))
		i++;
	if (i >= len || t[i++] != '=')
		return 0;
	while (i < len && (t[i] == ' ' || t[i] == '\t'))
		i++;
	if (len - i < 6 || memcmp(t + i, "DMARC1", 6) != 0)
		return 0;
	i += 6;
	return i == len || t[i] == ';' || t[i] == ' ' || t[i] == '\t';
}

enum lookup { LK_RECORD, LK_NONE, LK_SEVERAL, LK_TEMP, LK_PERM };

/* The DMARC record of one answer: LK_RECORD with *rec, or why not. */
static enum lookup
pick_record(const struct mw_dns_answer *a, const char **rec)
{
	int i, n = 0;

	*rec = NULL;
	switch (a->status) {
	case MW_DNS_OK:
		break;
	case MW_DNS_NXDOMAIN:
	case MW_DNS_NODATA:
		return LK_NONE;
	case MW_DNS_PERMFAIL:
		return LK_PERM;
	default:
		return LK_TEMP;
	}
	for (i = 0; i < a->nrr; i++) {
		const struct mw_dns_rr *rr = &a->rr[i];

		if (rr->type != MW_DNS_TXT || rr->text == NULL ||
		    !is_dmarc_record(rr->text, rr->len))
			continue;
		n++;
		*rec = rr->text;
	}
	if (n > 1)
		return LK_SEVERAL;
	return n == 1 ? LK_RECORD : LK_NONE;
}

/* ------------------------------------------------------------------ */
/* Evaluation */

static const char *
pol_name(int p)
{
	switch (p) {
	case DMARC_RECORD_P_REJECT: return "reject";
	case DMARC_RECORD_P_QUARANTINE: return "quarantine";
	case DMARC_RECORD_P_NONE: return "none";
	}
	return "none";
}

static int
aligned(const char *from, const char *d, int mode)
{
	return opendmarc_policy_check_alignment((u_char *)d, (u_char *)from,
	    mode) == 0;
}

/* The SPF identity DMARC uses (RFC 7489 4.1): MAIL FROM, else HELO. */
static const char *
spf_identity(const struct mw_session *s, enum mw_auth_result *r, int *origin)
{
	if (s->res.spf_domain[0] != '\0') {
		*r = s->res.spf;
		*origin = s->mail_from != NULL && *s->mail_from != '\0' ?
		    DMARC_POLICY_SPF_ORIGIN_MAILFROM :
		    DMARC_POLICY_SPF_ORIGIN_HELO;
		return s->res.spf_domain;
	}
	if ((s->mail_from == NULL || *s->mail_from == '\0') &&
	    s->helo != NULL && *s->helo != '\0') {
		*r = s->res.spf_helo;
		*origin = DMARC_POLICY_SPF_ORIGIN_HELO;
		return s->helo;
	}
	*r = MW_AUTH_NONE;
	*origin = DMARC_POLICY_SPF_ORIGIN_MAILFROM;
	return NULL;
}

/* rua= of the record, comma-separated (no DNS: constant list). */
static char *
fetch_list(DMARC_POLICY_T *pctx)
{
	u_char **v = opendmarc_policy_fetch_rua(pctx, NULL, 0, 1);
	struct mw_buf b = MW_BUF_INIT(4096);
	char *out;
	int i;

	for (i = 0; v != NULL && v[i] != NULL; i++)
		mw_buf_printf(&b, "%s%s", i ? "," : "", (char *)v[i]);
	out = b.len ? strdup(mw_buf_str(&b)) : NULL;
	mw_buf_free(&b);
	return out;
}

static char *
fo_string(DMARC_POLICY_T *pctx)
{
	static const struct { int bit; const char *name; } fo[] = {
		{ DMARC_RECORD_FO_0, "0" }, { DMARC_RECORD_FO_1, "1" },
		{ DMARC_RECORD_FO_D, "d" }, { DMARC_RECORD_FO_S, "s" }
	};
	char buf[16] = "";
	int v = 0;
	size_t i;

	opendmarc_policy_fetch_fo(pctx, &v);
	for (i = 0; i < sizeof(fo) / sizeof(fo[0]); i++)
		if (v & fo[i].bit)
			snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf),
			    "%s%s", buf[0] ? ":" : "", fo[i].name);
	return strdup(buf[0] ? buf : "0");
}

/* Hand the record to the library; LK_RECORD, or a result for d. */
static void
apply_record(struct mw_session *s, struct dmarc_domain *d, const char *rec,
    const char *where)
{
	DMARC_POLICY_T *pctx;
	char *copy = NULL;
	const char *spf_d;
	enum mw_auth_result spf_r;
	int st, origin, pol, da = 0, sa = 0;
	size_t i;

	if (strlen(rec) > DMARC_MAX_RECORD) {
		d->result = DR_PERMERROR;
		snprintf(d->why, sizeof(d->why), "DMARC record at %s is too "
		    "long", where);
		return;
	}
	pctx = opendmarc_policy_connect_init((u_char *)s->ip,
	    s->family == AF_INET6);
	if (pctx == NULL)
		goto temp;
	if (opendmarc_policy_store_from_domain(pctx, (u_char *)d->domain) !=
	    DMARC_PARSE_OKAY)
		goto temp;
	st = opendmarc_policy_store_dmarc(pctx, (u_char *)rec,
	    (u_char *)d->domain, d->at_org ? (u_char *)d->org : NULL);
	if (st == DMARC_PARSE_ERROR_NO_REQUIRED_P) {
		/*
		 * RFC 7489 6.6.3: no valid p= -- act as p=none if rua=
		 * names somewhere to report to, else no DMARC at all.
		 */
		char *rua = fetch_list(pctx);
		int has_rua = rua != NULL;

		free(rua);
		if (!has_rua) {
			d->result = DR_NONE;
			snprintf(d->why, sizeof(d->why), "DMARC record at %s "
			    "has no p= and no rua=", where);
			goto out;
		}
		if (asprintf(&copy, "%s; p=none", rec) == -1) {
			copy = NULL;
			goto temp;
		}
		opendmarc_policy_connect_rset(pctx);
		opendmarc_policy_store_from_domain(pctx, (u_char *)d->domain);
		st = opendmarc_policy_store_dmarc(pctx, (u_char *)copy,
		    (u_char *)d->domain, d->at_org ? (u_char *)d->org : NULL);
	}
	if (st != DMARC_PARSE_OKAY) {
		d->result = DR_PERMERROR;
		snprintf(d->why, sizeof(d->why), "invalid DMARC record at %s: "
		    "%s", where, opendmarc_policy_status_to_str(st));
		goto out;
	}
	/*
	 * Only passing signatures matter to DMARC (RFC 7489 4.2), and
	 * libopendmarc 1.4 lets a later failing signature of the From
	 * domain itself override an earlier aligned pass: give it passes.
	 */
	for (i = 0; i < s->res.n_dkim && i < MW_MAX_DKIM_RESULTS; i++)
		if (s->res.dkim[i].result == MW_AUTH_PASS &&
		    s->res.dkim[i].domain[0] != '\0')
			opendmarc_policy_store_dkim(pctx,
			    (u_char *)s->res.dkim[i].domain,
			    (u_char *)s->res.dkim[i].selector,
			    DMARC_POLICY_DKIM_OUTCOME_PASS, NULL);
	spf_d = spf_identity(s, &spf_r, &origin);
	if (spf_d != NULL)
		opendmarc_policy_store_spf(pctx, (u_char *)spf_d,
		    spf_r == MW_AUTH_PASS ? DMARC_POLICY_SPF_OUTCOME_PASS :
		    spf_r == MW_AUTH_TEMPERROR ?
		    DMARC_POLICY_SPF_OUTCOME_TMPFAIL :
		    spf_r == MW_AUTH_FAIL || spf_r == MW_AUTH_SOFTFAIL ?
		    DMARC_POLICY_SPF_OUTCOME_FAIL :
		    DMARC_POLICY_SPF_OUTCOME_NONE, origin, NULL);
	pol = opendmarc_get_policy_to_enforce(pctx);
	opendmarc_policy_fetch_alignment(pctx, &da, &sa);
	opendmarc_policy_fetch_p(pctx, &d->p);
	opendmarc_policy_fetch_sp(pctx, &d->sp);
	opendmarc_policy_fetch_pct(pctx, &d->pct);
	opendmarc_policy_fetch_adkim(pctx, &d->adkim);
	opendmarc_policy_fetch_aspf(pctx, &d->aspf);
	d->dkim_aligned = da == DMARC_POLICY_DKIM_ALIGNMENT_PASS;
	d->spf_aligned = sa == DMARC_POLICY_SPF_ALIGNMENT_PASS;
	d->rua = fetch_list(pctx);
	d->fo = fo_string(pctx);
	d->have_policy = 1;
	/* sp= applies to the subdomains of an org record, else p=. */
	d->policy = d->at_org && d->sp != DMARC_RECORD_P_UNSPECIFIED ?
	    d->sp : d->p;
	switch (pol) {
	case DMARC_POLICY_PASS:
		d->result = DR_PASS;
		break;
	case DMARC_POLICY_REJECT:
	case DMARC_POLICY_QUARANTINE:
	case DMARC_POLICY_NONE:
		d->result = DR_FAIL;
		break;
	default:
		d->result = DR_PERMERROR;
		d->have_policy = 0;
		snprintf(d->why, sizeof(d->why), "DMARC evaluation failed: %s",
		    opendmarc_policy_status_to_str(pol));
		goto out;
	}
	/*
	 * A fail only because an aligned identifier could not be checked
	 * (DNS trouble at SPF or at the DKIM key) is a temperror: the
	 * sender's retry may well pass, a 5xx would be final.
	 */
	if (d->result == DR_FAIL) {
		const char *temp = NULL, *what = NULL;

		if (spf_d != NULL && spf_r == MW_AUTH_TEMPERROR &&
		    aligned(d->domain, spf_d, d->aspf)) {
			temp = spf_d;
			what = "SPF";
		}
		for (i = 0; i < s->res.n_dkim && i < MW_MAX_DKIM_RESULTS; i++)
			if (temp == NULL &&
			    s->res.dkim[i].result == MW_AUTH_TEMPERROR &&
			    s->res.dkim[i].domain[0] != '\0' &&
			    aligned(d->domain, s->res.dkim[i].domain,
			    d->adkim)) {
				temp = s->res.dkim[i].domain;
				what = "DKIM";
			}
		if (temp != NULL) {
			d->result = DR_TEMPERROR;
			snprintf(d->why, sizeof(d->why), "%s for %s: temporary "
			    "error", what, temp);
		}
	}
	goto out;
temp:
	d->result = DR_TEMPERROR;
	snprintf(d->why, sizeof(d->why), "out of memory");
out:
	free(copy);
	if (pctx != NULL)
		opendmarc_policy_connect_shutdown(pctx);
}

static void
evaluate_domain(struct mw_session *s, struct dmarc_domain *d)
{
	const struct mw_dns_answer *a;
	const char *rec;
	char where[DMARC_DOMAIN_MAX + 8];
	enum lookup lk;

	snprintf(where, sizeof(where), "_dmarc.%s", d->domain);
	a = mw_dns_wait(s->dns, d->q_from);
	mw_session_note_dns(s, "dmarc", a);
	lk = pick_record(a, &rec);
	if (lk == LK_NONE && d->q_org != NULL) {
		/* RFC 7489 6.6.3 step 4: the organizational domain's record */
		snprintf(where, sizeof(where), "_dmarc.%s", d->org);
		a = mw_dns_wait(s->dns, d->q_org);
		mw_session_note_dns(s, "dmarc", a);
		lk = pick_record(a, &rec);
		d->at_org = 1;
	}
	switch (lk) {
	case LK_RECORD:
		apply_record(s, d, rec, where);
		break;
	case LK_NONE:
		d->result = DR_NONE;
		break;
	case LK_SEVERAL:
		d->result = DR_NONE;
		snprintf(d->why, sizeof(d->why), "several DMARC records at %s, "
		    "none applies", where);
		break;
	case LK_TEMP:
		d->result = DR_TEMPERROR;
		snprintf(d->why, sizeof(d->why), "DNS error looking up %s: %s",
		    where, a->error != NULL ? a->error : "no answer");
		break;
	case LK_PERM:
		d->result = DR_PERMERROR;
		snprintf(d->why, sizeof(d->why), "DNS error looking up %s: %s",
		    where, a->error != NULL ? a->error : "bad answer");
		break;
	}
	if (d->have_policy)
		mw_session_note(s, "dmarc", "%s: %s, policy %s (p=%s sp=%s "
		    "pct=%d), DKIM %saligned, SPF %saligned", d->domain,
		    dres_name(d->result), pol_name(d->policy), pol_name(d->p),
		    pol_name(d->sp ? d->sp : d->p), d->pct,
		    d->dkim_aligned ? "" : "not ", d->spf_aligned ? "" : "not ");
}

static int
pol_rank(int p)
{
	return p == DMARC_RECORD_P_REJECT ? 2 :
	    p == DMARC_RECORD_P_QUARANTINE ? 1 : 0;
}

/* Is a domain (or a parent of it) in override_domains? */
static const char *
override_match(const struct dmarc_cfg *c, const char *dom)
{
	size_t i, n = strlen(dom), m;

	for (i = 0; i < c->n_override; i++) {
		m = strlen(c->override_domains[i]);
		if (m <= n && strcasecmp(dom + n - m,
		    c->override_domains[i]) == 0 &&
		    (m == n || dom[n - m - 1] == '.'))
			return c->override_domains[i];
	}
	return NULL;
}

/*
 * The local override: the From domain itself, or an identity that
 * authenticated (a DKIM d= that passed, the SPF domain if it passed) --
 * a mailing list re-sends with its own signature or envelope.
 */
static const char *
find_override(struct mw_session *s, const struct dmarc_cfg *c,
    const struct dmarc_domain *d)
{
	const char *m, *spf_d;
	enum mw_auth_result spf_r;
	int origin;
	size_t i;

	if (c->n_override == 0)
		return NULL;
	if ((m = override_match(c, d->domain)) != NULL)
		return m;
	for (i = 0; i < s->res.n_dkim && i < MW_MAX_DKIM_RESULTS; i++)
		if (s->res.dkim[i].result == MW_AUTH_PASS &&
		    (m = override_match(c, s->res.dkim[i].domain)) != NULL)
			return m;
	spf_d = spf_identity(s, &spf_r, &origin);
	if (spf_d != NULL && spf_r == MW_AUTH_PASS &&
	    (m = override_match(c, spf_d)) != NULL)
		return m;
	return NULL;
}

/* Carry out a reject_action / quarantine_action; returns the dis= word. */
static const char *
apply_disp(struct mw_session *s, const struct dmarc_cfg *c,
    const struct disp_action *da,
    const struct dmarc_domain *d, const char *policy)
{
	char value[512];

	switch (da->mode) {
	case DISP_HEADER:
		snprintf(value, sizeof(value), "DMARC policy of %s (p=%s)",
		    d->domain, policy);
		mw_session_add_header(s, c->quarantine_header, value);
		return "quarantine";
	case DISP_HOLD:
		mw_session_set_quarantine(s, "DMARC policy of %s (p=%s)",
		    d->domain, policy);
		return "quarantine";
	case DISP_ACTION:
		mw_session_act(s, &da->act, 550, "5.7.1", "%s (%s)",
		    c->reject_text, d->domain);
		return da->act.kind == MW_ACT_REJECT ? "reject" :
		    da->act.kind == MW_ACT_TEMPFAIL ? "tempfail" : "none";
	}
	return "none";
}

/* Append "; text" to the reason shown after dis= (and in the history). */
static void __attribute__((format(printf, 2, 3)))
note_add(struct dmarc_state *st, const char *fmt, ...)
{
	size_t n = strlen(st->note);
	va_list ap;

	if (n > 0 && n + 2 < sizeof(st->note)) {
		memcpy(st->note + n, "; ", 3);
		n += 2;
	}
	va_start(ap, fmt);
	vsnprintf(st->note + n, sizeof(st->note) - n, fmt, ap);
	va_end(ap);
}

/* The configured consequence of the message's result. */
static void
decide(struct mw_session *s, const struct dmarc_cfg *c, struct dmarc_state *st)
{
	struct dmarc_domain *d = st->n_domains ? &st->d[st->worst] : NULL;
	const struct disp_action *da;
	const char *ov;
	int policy;

	st->dis = "none";
	switch (st->result) {
	case DR_PASS:
	case DR_NONE:
		return;
	case DR_TEMPERROR:
		mw_session_act(s, &c->temperror_action, 451, "4.7.1",
		    "DMARC policy of %s could not be checked, try again later",
		    d->domain);
		return;
	case DR_PERMERROR:
		if (st->from_error != NULL)
			mw_session_act(s, &c->bad_from_action, 550, "5.7.1",
			    "Message rejected: %s (DMARC)",
			    st->from_error);
		else
			mw_session_act(s, &c->permerror_action, 550, "5.7.1",
			    "DMARC policy of %s is invalid", d->domain);
		return;
	case DR_FAIL:
		break;
	}
	policy = d->policy;
	if ((ov = find_override(s, c, d)) != NULL) {
		note_add(st, "local override: %s", ov);
		return;
	}
	if (c->honor_pct && d->pct >= 0 && d->pct < 100 &&
	    policy != DMARC_RECORD_P_NONE &&
	    (int)arc4random_uniform(100) >= d->pct) {
		/* RFC 7489 6.6.4: not sampled, the next policy down. */
		note_add(st, "pct=%d: not sampled", d->pct);
		policy = policy == DMARC_RECORD_P_REJECT ?
		    DMARC_RECORD_P_QUARANTINE : DMARC_RECORD_P_NONE;
	}
	if (policy == DMARC_RECORD_P_NONE)
		return;
	da = policy == DMARC_RECORD_P_REJECT ? &c->reject_action :
	    &c->quarantine_action;
	if (s->exempt_rcpt) {
		/* The session will not refuse it: hold or mark it neither. */
		note_add(st, "exempt recipient");
		return;
	}
	st->dis = apply_disp(s, c, da, d, pol_name(policy));
	if (s->cfg->dry_run && strcmp(st->dis, "none") != 0)
		note_add(st, "dry run");
}

/* ------------------------------------------------------------------ */
/* Aggregate-report history: one JSON object per line, per domain. */

/* A JSON string (NULL: null); bytes outside printable ASCII as \u00XX. */
static void
json_string(struct mw_buf *b, const char *v)
{
	const unsigned char *p;

	if (v == NULL) {
		mw_buf_puts(b, "null");
		return;
	}
	mw_buf_puts(b, "\"");
	for (p = (const unsigned char *)v; *p != '\0'; p++) {
		if (*p == '"' || *p == '\\')
			mw_buf_printf(b, "\\%c", *p);
		else if (*p < 0x20 || *p >= 0x7f)
			mw_buf_printf(b, "\\u%04x", *p);
		else
			mw_buf_append(b, (const char *)p, 1);
	}
	mw_buf_puts(b, "\"");
}

/* ,"key":"value" */
static void
json_str(struct mw_buf *b, const char *key, const char *v)
{
	mw_buf_printf(b, ",\"%s\":", key);
	json_string(b, v);
}

static void
history_record(struct mw_session *s, struct dmarc_state *st,
    struct dmarc_domain *d, time_t now, struct mw_buf *b)
{
	const char *spf_d, *at;
	enum mw_auth_result spf_r;
	int origin;
	size_t i;
	char buf[16];

	mw_buf_printf(b, "{\"v\":1,\"time\":%lld", (long long)now);
	json_str(b, "queue_id", s->queue_id);
	json_str(b, "source_ip", s->ip);
	json_str(b, "helo", s->helo);
	json_str(b, "envelope_from", s->mail_from);
	at = s->mail_from != NULL ? strrchr(s->mail_from, '@') : NULL;
	json_str(b, "envelope_from_domain", at != NULL ? at + 1 : "");
	mw_buf_puts(b, ",\"envelope_to\":[");
	for (i = 0; i < s->n_rcpts; i++) {
		at = strrchr(s->rcpts[i], '@');
		if (i > 0)
			mw_buf_puts(b, ",");
		json_string(b, at != NULL ? at + 1 : s->rcpts[i]);
	}
	mw_buf_puts(b, "]");
	json_str(b, "header_from", d->domain);
	json_str(b, "policy_domain", d->at_org ? d->org : d->domain);
	json_str(b, "org_domain", d->org);
	json_str(b, "p", pol_name(d->p));
	json_str(b, "sp", pol_name(d->sp ? d->sp : d->p));
	mw_buf_printf(b, ",\"pct\":%d", d->pct);
	snprintf(buf, sizeof(buf), "%c", d->adkim ? d->adkim : 'r');
	json_str(b, "adkim", buf);
	snprintf(buf, sizeof(buf), "%c", d->aspf ? d->aspf : 'r');
	json_str(b, "aspf", buf);
	json_str(b, "fo", d->fo);
	json_str(b, "rua", d->rua);
	json_str(b, "dmarc", dres_name(d->result));
	json_str(b, "policy", pol_name(d->policy));
	json_str(b, "disposition", d == &st->d[st->worst] ? st->dis : "none");
	json_str(b, "reason", d == &st->d[st->worst] ? st->note : "");
	json_str(b, "dkim_aligned", d->dkim_aligned ? "pass" : "fail");
	json_str(b, "spf_aligned", d->spf_aligned ? "pass" : "fail");
	spf_d = spf_identity(s, &spf_r, &origin);
	mw_buf_puts(b, ",\"spf\":{\"domain\":");
	json_string(b, spf_d != NULL ? spf_d : "");
	json_str(b, "scope", origin == DMARC_POLICY_SPF_ORIGIN_HELO ?
	    "helo" : "mfrom");
	json_str(b, "result", mw_auth_result_name(spf_r));
	mw_buf_puts(b, "},\"dkim\":[");
	for (i = 0; i < s->res.n_dkim && i < MW_MAX_DKIM_RESULTS; i++) {
		mw_buf_printf(b, "%s{\"domain\":", i ? "," : "");
		json_string(b, s->res.dkim[i].domain);
		json_str(b, "selector", s->res.dkim[i].selector);
		json_str(b, "result",
		    mw_auth_result_name(s->res.dkim[i].result));
		mw_buf_puts(b, "}");
	}
	mw_buf_puts(b, "]}\n");
}

static void
write_history(struct mw_session *s, const struct dmarc_cfg *c,
    struct dmarc_state *st)
{
	struct mw_buf b = MW_BUF_INIT(256 * 1024);
	time_t now = time(NULL);
	ssize_t w;
	size_t i;
	int fd;

	if (*c->history_file == '\0' || s->read_only)
		return;
	for (i = 0; i < st->n_domains; i++)
		if (st->d[i].have_policy)
			history_record(s, st, &st->d[i], now, &b);
	if (b.len == 0 || b.truncated) {
		mw_buf_free(&b);
		return;
	}
	/* O_APPEND and one write(): lines of concurrent writers never mix. */
	fd = open(c->history_file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC,
	    0640);
	if (fd == -1) {
		mw_log(LOG_ERR, "dmarc: history_file %s: %s", c->history_file,
		    strerror(errno));
	} else {
		w = write(fd, b.s, b.len);
		if (w != (ssize_t)b.len)
			mw_log(LOG_ERR, "dmarc: history_file %s: %s",
			    c->history_file, w == -1 ? strerror(errno) :
			    "short write");
		else
			mw_stats_inc(mw_session_stats(s), MW_ST_REPORTS_WRITTEN);
		close(fd);
	}
	mw_buf_free(&b);
}

static void
dmarc_on_eom(struct mw_session *s, const void *vc, void *vst)
{
	const struct dmarc_cfg *c = vc;
	struct dmarc_state *st = vst;
	size_t i;

	st->evaluated = 1;
	st->worst = 0;
	if (st->n_from == 0)
		st->from_error = "no From header field";
	else if (st->n_from > 1)
		st->from_error = "several From header fields";
	if (st->from_error != NULL) {
		st->result = DR_PERMERROR;
		mw_session_note(s, "dmarc", "%s", st->from_error);
		decide(s, c, st);
		return;
	}
	st->result = DR_PASS;
	for (i = 0; i < st->n_domains; i++) {
		struct dmarc_domain *d = &st->d[i];
		struct dmarc_domain *w = &st->d[st->worst];

		evaluate_domain(s, d);
		if (d->result > st->result || (d->result == DR_FAIL &&
		    w->result == DR_FAIL && pol_rank(d->policy) >
		    pol_rank(w->policy))) {
			st->result = d->result;
			st->worst = i;
		}
	}
	decide(s, c, st);
	write_history(s, c, st);
}

static void
dmarc_authres(struct mw_session *s, const void *vc, void *vst,
    struct mw_authres *ar)
{
	struct dmarc_state *st = vst;
	struct dmarc_domain *d;
	char pct[24] = "";

	(void)vc;
	(void)s;
	if (!st->evaluated)
		return;
	mw_authres_result(ar, "dmarc", dres_name(st->result));
	if (st->from_error != NULL) {
		mw_authres_comment(ar, "%s", st->from_error);
		return;
	}
	d = &st->d[st->worst];
	mw_authres_prop(ar, "header", "from", d->domain);
	if (d->have_policy && (st->result == DR_PASS ||
	    st->result == DR_FAIL)) {
		mw_authres_prop(ar, "policy", "dmarc", pol_name(d->policy));
		if (d->pct >= 0 && d->pct < 100)
			snprintf(pct, sizeof(pct), " pct=%d", d->pct);
		mw_authres_comment(ar, "p=%s sp=%s%s dis=%s%s%s",
		    pol_name(d->p), pol_name(d->sp ? d->sp : d->p), pct,
		    st->dis != NULL ? st->dis : "none",
		    st->note[0] ? "; " : "", st->note);
	} else if (d->why[0] != '\0')
		mw_authres_comment(ar, "%s", d->why);
	if (st->n_domains > 1)
		mw_authres_comment(ar, "%zu From domains, the strictest "
		    "result shown", st->n_domains);
}

static void
dmarc_on_close(struct mw_session *s, const void *vc, void *vst)
{
	dmarc_on_reset(s, vc, vst);
}

const struct mw_module mw_module_dmarc = {
	.name = "dmarc",
	.inbound = 1,
	.cfg_size = sizeof(struct dmarc_cfg),
	.cfg_init = dmarc_cfg_init,
	.cfg_set = dmarc_cfg_set,
	.cfg_check = dmarc_cfg_check,
	.cfg_dump = dmarc_cfg_dump,
	.cfg_free = dmarc_cfg_free,
	.global_new = dmarc_global_new,
	.global_free = dmarc_global_free,
	.state_size = sizeof(struct dmarc_state),
	.on_header = dmarc_on_header,
	.on_eom = dmarc_on_eom,
	.authres = dmarc_authres,
	.on_reset = dmarc_on_reset,
	.on_close = dmarc_on_close,
};
