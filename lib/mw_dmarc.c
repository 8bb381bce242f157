/*
 * mw_dmarc -- DMARC (RFC 9989), section [dmarc].
 *
 * Evaluates the RFC5322.From domain (the Author Domain) of every inbound
 * message against the policy its owner publishes, and decides what to do
 * with a message that fails.  A module of the session library: the hooks
 * at the end of this file are called by mw_session.c; nothing here is
 * called directly.
 *
 *  - The From header field is parsed by our own strict parser (below):
 *    exactly one From field with one or more mailboxes; no From, several
 *    From fields, or a From we cannot read give dmarc=permerror and
 *    [dmarc] bad_from_action -- never "no DMARC" (the OpenDMARC
 *    CVE-2019-16378 and CVE-2021-34555 class of bypasses).  A From with
 *    several mailboxes is evaluated per domain; the strictest outcome
 *    wins (RFC 9989 5.3.1 allows going on).  A U-label domain (RFC 6532)
 *    is converted to its A-label with libidn2 first (RFC 9989 5.3.1).
 *  - Policy discovery and the Organizational Domain come from the RFC
 *    9989 section 4.10 DNS Tree Walk: _dmarc.<Author Domain>, then its
 *    parents one label at a time (a name of more than 8 labels jumps to
 *    its last 7), at most 8 queries, stopping at a record with psd=y or
 *    psd=n; several DMARC records at one name count as none.  All the
 *    walk's queries are sent through mw_dns at once when the From field
 *    arrives (so they run in parallel and are cached) and read in walk
 *    order at end of message.  Alignment (4.10.2) walks the SPF and DKIM
 *    identifiers the same way, when relaxed alignment needs it.
 *    [dmarc] discovery = psl is the RFC 7489 way instead (Author Domain,
 *    then the Organizational Domain from the Public Suffix List, libpsl).
 *  - Tags: p, sp, np (non-existent subdomains: the Author Domain is
 *    asked for an A record; NXDOMAIN means it does not exist, RFC 9989
 *    3.2.13), psd, t=y (one policy level down), adkim, aspf, rua, ruf,
 *    fo.  pct, rf, ri and unknown tags are ignored.  A syntax error in a
 *    tag's value makes that tag take its default (4.8); a missing or
 *    invalid p= (or an invalid sp=/np=) means p=none when rua= has a
 *    valid URI, else no DMARC at all (4.10.1).  A record that repeats a
 *    tag is not a valid record (RFC 6376 3.2 tag-list, which 4.7 adopts):
 *    discovery goes on past it, and if no valid record is found the
 *    result is dmarc=permerror.  A byte outside printable ASCII (a NUL)
 *    in a value is a syntax error of that tag.
 *  - The SPF and DKIM inputs are OUR results (s->res, from mw_spf and
 *    mw_dkim, which run before us), never Authentication-Results or
 *    Received-SPF fields found in the message (CVE-2019-20790 class).
 *
 * Why not libopendmarc (Debian's 1.4.2, written for RFC 7489): its
 * record parser knows no np=, psd= or t=, keeps the last of a repeated
 * tag, rejects a record without p= and refuses unknown tag values; its
 * Organizational Domain and its alignment check come from a Public
 * Suffix List, which RFC 9989 replaced with the tree walk.  Those were
 * all it did for us, so the record parser, the walk and the alignment
 * check are here now and this module no longer links it (tools/mwc_self.c
 * still parses records with it for its advice).
 *
 * Results: "dmarc=pass header.from=example.org policy.dmarc=reject
 * (p=reject sp=reject np=reject dis=none)" in Authentication-Results;
 * actions at end of message: policy reject -> reject_action, quarantine
 * -> quarantine_action (an annotation header, the MTA's hold queue, or
 * an ordinary action), override_domains for mailing lists.  Postmaster@
 * and other exempt recipients: annotation only.  A record per message
 * for aggregate reports goes to history_file (JSON lines, format at
 * history_record() below and in mailwarden.ini(5)).  See the [dmarc]
 * section of etc/mailwarden.ini for every key.
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

#include <limits.h>

#include <idn2.h>
#include <libpsl.h>

#include "mw_authres.h"
#include "mw_dmarc.h"
#include "mw_log.h"
#include "mw_redis.h"
#include "mw_session_priv.h"
#include "mw_text.h"

#define DMARC_MAX_DOMAINS	8	/* distinct From domains evaluated */
#define DMARC_MAX_MAILBOXES	64	/* mailboxes in the From field */
#define DMARC_MAX_TOKENS	4096	/* tokens of the From field */
#define DMARC_MAX_RECORD	4096	/* a longer record is a permerror */
#define DMARC_DOMAIN_MAX	256
#define DMARC_WALK_MAX		8	/* queries of one tree walk (4.10) */
#define DMARC_MAX_NAMES		160	/* distinct _dmarc names a message asks */

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

enum discovery { DISC_TREEWALK = 0, DISC_PSL };

struct dmarc_cfg {
	enum discovery		 discovery;
	char			*psl_file;
	struct disp_action	 reject_action;
	struct disp_action	 quarantine_action;
	char			*reject_text;
	char			*quarantine_header;
	bool			 honor_pct;	/* accepted, ignored (RFC 9989) */
	char			**override_domains;
	size_t			 n_override;
	struct mw_action	 bad_from_action;
	struct mw_action	 permerror_action;
	struct mw_action	 temperror_action;
	char			*history_file;
	struct mw_dmarc_report_cfg report;	/* report_* keys */
	bool			 history_redis;	/* records into [redis] too */
	bool			 failure_reports;	/* RFC 9991, opt-in */
	char			*failure_spool;
	bool			 failure_minimal;	/* failure_content */
};

static void
dmarc_cfg_init(void *vc)
{
	struct dmarc_cfg *c = vc;

	c->discovery = DISC_TREEWALK;
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
	c->report.org_name = strdup("");
	c->report.from = strdup("");
	c->report.submitter = strdup("");
	c->report.extra_contact = strdup("");
	c->report.state_dir = strdup("/var/lib/mailwarden/reports");
	c->report.sendmail = strdup("/usr/sbin/sendmail");
	c->report.smtp = strdup("");
	c->report.max_size = 10 * 1024 * 1024;
	c->report.interval = 86400;
	c->report.retry_for = 2 * 86400;
	c->report.redis_key = strdup("mw:dmarc:history");
	c->report.redis_max = 2000000;
	c->report.redis_keep = 8 * 86400;
	c->report.failure_rate = 10;
	c->report.failure_period = 3600;
	c->failure_spool = strdup("/var/lib/mailwarden/failures");
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

/* The report_* keys: mailwarden-report's; the daemon only checks them. */
static int
report_cfg_set(struct mw_dmarc_report_cfg *r, const char *k, const char *v,
    char *err, size_t errlen)
{
	const char *at;
	long n;

	if (strcmp(k, "org_name") == 0)
		return mw_set_string(&r->org_name, v, err, errlen);
	if (strcmp(k, "extra_contact") == 0)
		return mw_set_string(&r->extra_contact, v, err, errlen);
	if (strcmp(k, "from") == 0) {
		at = strrchr(v, '@');
		if (*v != '\0' && (at == NULL || at == v || strpbrk(v,
		    " \t<>\"") != NULL || !mw_domain_ok(at + 1,
		    MW_DOMAIN_LDH))) {
			snprintf(err, errlen, "want an address local@domain, "
			    "not \"%s\"", v);
			return -1;
		}
		return mw_set_string(&r->from, v, err, errlen);
	}
	if (strcmp(k, "submitter") == 0) {
		if (*v != '\0' && !mw_domain_ok(v, MW_DOMAIN_LDH)) {
			snprintf(err, errlen, "\"%s\" is not a domain", v);
			return -1;
		}
		return mw_set_string(&r->submitter, v, err, errlen);
	}
	if (strcmp(k, "state_dir") == 0) {
		if (*v != '/') {
			snprintf(err, errlen, "want an absolute path, not "
			    "\"%s\"", v);
			return -1;
		}
		return mw_set_string(&r->state_dir, v, err, errlen);
	}
	if (strcmp(k, "sendmail") == 0) {
		if (*v != '/') {
			snprintf(err, errlen, "want an absolute path, not "
			    "\"%s\"", v);
			return -1;
		}
		return mw_set_string(&r->sendmail, v, err, errlen);
	}
	if (strcmp(k, "smtp") == 0) {
		int family, port;
		unsigned char addr[16];

		if (*v != '\0' && mw_parse_hostport(v, &family, addr, &port,
		    err, errlen) == -1)
			return -1;
		return mw_set_string(&r->smtp, v, err, errlen);
	}
	if (strcmp(k, "max_size") == 0) {
		if (mw_parse_size(v, &r->max_size, err, errlen) == -1)
			return -1;
		if (r->max_size < 4096) {
			snprintf(err, errlen, "at least 4k");
			return -1;
		}
		return 0;
	}
	if (strcmp(k, "interval") == 0) {
		if (mw_parse_duration(v, &n, err, errlen) == -1)
			return -1;
		if (n < 3600 || n > 86400 || 86400 % n != 0) {
			snprintf(err, errlen, "want a whole fraction of a day "
			    "from 1h to 1d, not \"%s\"", v);
			return -1;
		}
		r->interval = n;
		return 0;
	}
	if (strcmp(k, "retry_for") == 0) {
		if (mw_parse_duration(v, &n, err, errlen) == -1)
			return -1;
		r->retry_for = n;
		return 0;
	}
	return 1;
}

static int
dmarc_cfg_set(void *vc, const char *k, const char *v, char *err,
    size_t errlen)
{
	struct dmarc_cfg *c = vc;

	if (strcmp(k, "discovery") == 0) {
		if (strcasecmp(v, "treewalk") == 0)
			c->discovery = DISC_TREEWALK;
		else if (strcasecmp(v, "psl") == 0)
			c->discovery = DISC_PSL;
		else {
			snprintf(err, errlen, "want treewalk or psl, not "
			    "\"%s\"", v);
			return -1;
		}
		return 0;
	}
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
	if (strcmp(k, "honor_pct") == 0)	/* RFC 9989 has no pct= */
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
	if (strncmp(k, "report_", 7) == 0)
		return report_cfg_set(&c->report, k + 7, v, err, errlen);
	if (strcmp(k, "failure_reports") == 0)
		return mw_parse_bool(v, &c->failure_reports, err, errlen);
	if (strcmp(k, "history_redis") == 0) {
		if (mw_parse_bool(v, &c->history_redis, err, errlen) == -1)
			return -1;
		c->report.redis = c->history_redis;
		return 0;
	}
	if (strcmp(k, "history_redis_key") == 0) {
		if (*v == '\0' || strpbrk(v, " \t\r\n") != NULL ||
		    strlen(v) > 100) {
			snprintf(err, errlen, "want a key prefix without "
			    "spaces, not \"%s\"", v);
			return -1;
		}
		return mw_set_string(&c->report.redis_key, v, err, errlen);
	}
	if (strcmp(k, "history_redis_max") == 0)
		return mw_parse_int(v, 1000, 1000000000L, &c->report.redis_max,
		    err, errlen);
	if (strcmp(k, "history_redis_keep") == 0) {
		long n;

		if (mw_parse_duration(v, &n, err, errlen) == -1)
			return -1;
		if (n < 86400 || n > 400L * 86400) {
			snprintf(err, errlen, "want 1d to 400d, not \"%s\"", v);
			return -1;
		}
		c->report.redis_keep = n;
		return 0;
	}
	if (strcmp(k, "failure_spool") == 0) {
		if (*v != '/') {
			snprintf(err, errlen, "want an absolute path, not "
			    "\"%s\"", v);
			return -1;
		}
		return mw_set_string(&c->failure_spool, v, err, errlen);
	}
	if (strcmp(k, "failure_content") == 0) {
		if (strcmp(v, "headers") == 0)
			c->failure_minimal = false;
		else if (strcmp(v, "minimal") == 0)
			c->failure_minimal = true;
		else {
			snprintf(err, errlen, "want headers or minimal, not "
			    "\"%s\"", v);
			return -1;
		}
		return 0;
	}
	if (strcmp(k, "failure_rate") == 0) {
		char *slash;
		long n, per;

		n = strtol(v, &slash, 10);
		if (slash == v || *slash != '/' || n < 1 || n > 100000 ||
		    mw_parse_duration(slash + 1, &per, err, errlen) == -1 ||
		    per < 60) {
			snprintf(err, errlen, "want N/period such as 10/1h, "
			    "not \"%s\"", v);
			return -1;
		}
		c->report.failure_rate = n;
		c->report.failure_period = per;
		return 0;
	}
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
	    c->quarantine_header == NULL || c->history_file == NULL ||
	    c->report.org_name == NULL || c->report.from == NULL ||
	    c->report.submitter == NULL || c->report.extra_contact == NULL ||
	    c->report.state_dir == NULL || c->report.sendmail == NULL ||
	    c->report.smtp == NULL || c->failure_spool == NULL ||
	    c->report.redis_key == NULL) {
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
	if (c->discovery == DISC_PSL && *c->psl_file != '\0' &&
	    access(c->psl_file, R_OK) == -1) {
		snprintf(err, errlen, "psl_file %s: %s (apt-get install "
		    "publicsuffix, or set psl_file)", c->psl_file,
		    strerror(errno));
		return -1;
	}
	/*
	 * Never a directory, FIFO or /dev/zero: the loader would hang.
	 * Checked whenever the file is there, used (psl) or not.
	 */
	if (*c->psl_file != '\0' && (c->discovery == DISC_PSL ||
	    access(c->psl_file, F_OK) == 0) &&
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

	fprintf(fp, "discovery = %s\npsl_file = %s\n"
	    "reject_action = %s\nquarantine_action = %s\nreject_text = %s\n"
	    "quarantine_header = %s\nhonor_pct = %s\noverride_domains =",
	    c->discovery == DISC_PSL ? "psl" : "treewalk", c->psl_file,
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
	fprintf(fp, "report_org_name = %s\nreport_from = %s\n"
	    "report_submitter = %s\nreport_extra_contact = %s\n"
	    "report_state_dir = %s\nreport_sendmail = %s\nreport_smtp = %s\n"
	    "report_max_size = %llu\nreport_interval = %ld\n"
	    "report_retry_for = %ld\n", c->report.org_name, c->report.from,
	    c->report.submitter, c->report.extra_contact, c->report.state_dir,
	    c->report.sendmail, c->report.smtp, c->report.max_size,
	    c->report.interval, c->report.retry_for);
	fprintf(fp, "history_redis = %s\nhistory_redis_key = %s\n"
	    "history_redis_max = %ld\nhistory_redis_keep = %ld\n",
	    c->history_redis ? "yes" : "no", c->report.redis_key,
	    c->report.redis_max, c->report.redis_keep);
	fprintf(fp, "failure_reports = %s\nfailure_spool = %s\n"
	    "failure_content = %s\nfailure_rate = %ld/%lds\n",
	    c->failure_reports ? "yes" : "no", c->failure_spool,
	    c->failure_minimal ? "minimal" : "headers",
	    c->report.failure_rate, c->report.failure_period);
}

static void
dmarc_cfg_free(void *vc)
{
	struct dmarc_cfg *c = vc;

	free(c->psl_file);
	free(c->reject_text);
	free(c->quarantine_header);
	free(c->history_file);
	free(c->report.org_name);
	free(c->report.from);
	free(c->report.submitter);
	free(c->report.extra_contact);
	free(c->report.state_dir);
	free(c->report.sendmail);
	free(c->report.smtp);
	free(c->failure_spool);
	free(c->report.redis_key);
	mw_free_list(c->override_domains, c->n_override);
}

const struct mw_dmarc_report_cfg *
mw_dmarc_report_cfg(const struct mw_config *mc)
{
	struct dmarc_cfg *c;
	int idx = mw_module_index("dmarc");

	if (idx < 0 || mc->mod[idx] == NULL)
		return NULL;
	c = mc->mod[idx];
	c->report.history_file = c->history_file;
	c->report.failure_spool = c->failure_spool;
	return &c->report;
}

/* ------------------------------------------------------------------ */
/*
 * The process-wide part: with discovery = psl, the Public Suffix List
 * (libpsl; its lookups are read-only and safe from every thread).  A
 * reload builds a new one beside the old.
 */

struct dmarc_global {
	psl_ctx_t	*psl;
};

static int
dmarc_global_new(const struct mw_config *mc, const void *vc, void **global,
    char *err, size_t errlen)
{
	const struct dmarc_cfg *c = vc;
	struct dmarc_global *g;

	(void)mc;
	*global = NULL;
	if (c->discovery != DISC_PSL)
		return 0;
	if ((g = calloc(1, sizeof(*g))) == NULL) {
		snprintf(err, errlen, "dmarc: out of memory");
		return -1;
	}
	g->psl = *c->psl_file != '\0' ? psl_load_file(c->psl_file) :
	    psl_latest(NULL);
	if (g->psl == NULL) {
		snprintf(err, errlen, "dmarc: cannot load psl_file %s",
		    *c->psl_file != '\0' ? c->psl_file : "(libpsl default)");
		free(g);
		return -1;
	}
	*global = g;
	return 0;
}

static void
dmarc_global_free(void *global)
{
	struct dmarc_global *g = global;

	if (g == NULL)
		return;
	psl_free(g->psl);
	free(g);
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

/* Policy values of p=, sp=, np=. */
enum pol { POL_UNSET = 0, POL_NONE, POL_QUARANTINE, POL_REJECT, POL_BAD };

static const char *
pol_name(int p)
{
	switch (p) {
	case POL_REJECT: return "reject";
	case POL_QUARANTINE: return "quarantine";
	}
	return "none";
}

/* One parsed DMARC record (RFC 9989 4.7). */
struct drec {
	int		 p, sp, np;	/* enum pol */
	char		 psd;		/* 'y' 'n' 'u' */
	int		 t;		/* t=y */
	char		 adkim, aspf;	/* 'r' 's' */
	char		 fo[16];
	char		 rua[512];	/* as published, "" if none */
	char		 ruf[512];
	long		 ri;		/* ri=, seconds (reports only) */
	int		 rua_ok;	/* rua= has a syntactically valid URI */
	char		 dup[16];	/* a repeated tag: not a valid record */
	char		 bad[64];	/* first tag with a syntax error */
};

/* What one _dmarc.<name> TXT query gave. */
enum lookup {
	LK_RECORD,	/* one valid DMARC record: rec */
	LK_NONE,	/* no DMARC record (NXDOMAIN, NODATA, other TXT) */
	LK_SEVERAL,	/* several DMARC records: none counts */
	LK_INVALID,	/* one DMARC record that is not valid: rec.dup */
	LK_TEMP,	/* DNS: could not find out */
	LK_PERM		/* DNS: a bad answer */
};

struct dq {
	char			 name[DMARC_DOMAIN_MAX];	/* without _dmarc. */
	struct mw_dns_query	*q;
	int			 done;
	enum lookup		 lk;
	const char		*error;	/* LK_TEMP, LK_PERM */
	struct drec		 rec;
};

/* The outcome of a DNS Tree Walk (or of the PSL) for one domain. */
struct walk {
	enum lookup	 err;		/* LK_NONE, or LK_TEMP / LK_PERM */
	struct dq	*err_at;
	char		 org[DMARC_DOMAIN_MAX];	/* Organizational Domain */
	struct dq	*org_rq;	/* its record, if it has one */
	struct dq	*psd_rq;	/* the psd=y record that stopped it */
	struct dq	*invalid;	/* an invalid record on the way */
	struct dq	*several;	/* a name with several records */
};

struct dmarc_domain {
	char			 domain[DMARC_DOMAIN_MAX];	/* A-label */
	char			 utf8[DMARC_DOMAIN_MAX];	/* U-label, or "" */
	struct mw_dns_query	*q_exist;	/* A: does it exist (np=)? */

	enum dres		 result;
	char			 why[600];	/* comment for errors, none */
	int			 have_policy;	/* a record was applied */
	struct dq		*rq;		/* the record applied */
	char			 org[DMARC_DOMAIN_MAX];	/* Organizational */
	int			 at_org;	/* record of a parent (org/PSD) */
	int			 nonexistent;	/* NXDOMAIN: np= applies */
	const char		*which;		/* "p", "sp" or "np" */
	int			 p, sp, np;	/* effective (defaults filled) */
	int			 t;
	char			 adkim, aspf;
	int			 from_rua;	/* p=none: no valid p=, has rua= */
	int			 base;		/* p, sp or np as published */
	int			 policy;	/* applied, after t=y */
	int			 dkim_aligned, spf_aligned;
};

struct dmarc_state {
	const struct dmarc_cfg	*c;		/* the hook's [dmarc], for helpers */
	int			 n_from;	/* From fields seen */
	const char		*from_error;	/* NULL: From parsed */
	char			 from_why[128];	/* from_error's text */
	size_t			 n_mailboxes;
	size_t			 n_domains;
	struct dmarc_domain	 d[DMARC_MAX_DOMAINS];
	struct dq		**dq;		/* every _dmarc name asked */
	size_t			 n_dq;

	int			 evaluated;
	enum dres		 result;	/* of the message */
	size_t			 worst;		/* index of the deciding domain */
	const char		*dis;		/* none, quarantine, reject */
	char			 note[160];	/* override, testing, exempt ... */
	struct mw_buf		 hdrs;		/* header fields (failure reports) */
	const char		*override_type;	/* RFC 9990 reason, or NULL */
	char			 override_comment[300];
};

static void
dmarc_on_reset(struct mw_session *s, const void *vc, void *vst)
{
	struct dmarc_state *st = vst;
	size_t i;

	(void)s;
	(void)vc;
	for (i = 0; i < st->n_dq; i++)
		free(st->dq[i]);
	free(st->dq);
	mw_buf_free(&st->hdrs);
	memset(st, 0, sizeof(*st));
}

/* ------------------------------------------------------------------ */
/*
 * The From field body (RFC 5322 section 3.4 mailbox-list, plus RFC 6854
 * groups), parsed only far enough to find the domain of every mailbox.
 * Strict where strictness stops ambiguity: an '@' in a display name,
 * text after the angle-addr, two angle-addrs in one mailbox, a domain
 * literal or a non-ASCII domain that is not valid IDNA, an unterminated
 * quote, comment or angle bracket are all errors (permerror), because a
 * reader that guesses differently from the MUA is how DMARC gets
 * bypassed.
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

static int
has_8bit(const char *p, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if ((unsigned char)p[i] >= 0x80)
			return 1;
	return 0;
}

/*
 * A UTF-8 domain (U-labels, RFC 6532) as its A-label form (IDNA2008 with
 * the UTS #46 mapping, libidn2), then checked like any other domain.
 */
static int
a_label(const char *p, size_t len, char *out, size_t outlen)
{
	char in[DMARC_DOMAIN_MAX * 4], *ace = NULL;
	int r;

	if (len >= sizeof(in))
		return -1;
	memcpy(in, p, len);
	in[len] = '\0';
	if (len > 0 && in[len - 1] == '.')
		in[len - 1] = '\0';
	r = idn2_lookup_u8((const uint8_t *)in, (uint8_t **)&ace,
	    IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL);
	if (r != IDN2_OK || ace == NULL) {
		idn2_free(ace);
		return -1;
	}
	r = domain_copy(ace, strlen(ace), out, outlen);
	idn2_free(ace);
	return r;
}

/* One addr-spec, tokens [a, b): words '@' domain. */
static int
addr_spec(struct dmarc_state *st, const struct from_parse *fp, size_t a,
    size_t b, const char **why)
{
	char dom[DMARC_DOMAIN_MAX], utf8[DMARC_DOMAIN_MAX];
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
	if (d->kind != T_ATOM) {
		*why = "an address with an invalid domain";
		return -1;
	}
	utf8[0] = '\0';
	if (has_8bit(d->p, d->len)) {
		/* RFC 9989 5.3.1: a U-label domain is used as its A-label. */
		if (a_label(d->p, d->len, dom, sizeof(dom)) == -1) {
			*why = "an address with an invalid internationalised "
			    "domain";
			return -1;
		}
		snprintf(utf8, sizeof(utf8), "%.*s", (int)d->len, d->p);
	} else if (domain_copy(d->p, d->len, dom, sizeof(dom)) == -1) {
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
	snprintf(st->d[st->n_domains].domain, DMARC_DOMAIN_MAX, "%s", dom);
	snprintf(st->d[st->n_domains++].utf8, DMARC_DOMAIN_MAX, "%s", utf8);
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
/* DMARC records (RFC 9989 4.7, 4.8) */

/*
 * Does this TXT record start with the version tag, "v" *WSP "=" *WSP
 * "DMARC1" (case-sensitive), followed by ';', white space or the end?
 * Returns the offset after "DMARC1", or 0: not a DMARC record.
 */
static size_t
dmarc_version(const char *t, size_t len)
{
	size_t i = 0;

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
	if (i == len || t[i] == ';' || t[i] == ' ' || t[i] == '\t')
		return i;
	return 0;
}

/* One URI of rua=/ruf= (RFC 3986 scheme ":" something, no space). */
static int
valid_uri(const char *p, size_t len)
{
	size_t i;

	/* obs-dmarc-report-size "!" 1*DIGIT [k/m/g/t] is ignored */
	for (i = 0; i < len; i++)
		if (p[i] == '!')
			len = i;
	if (len < 3 || !isalpha((unsigned char)p[0]))
		return 0;
	for (i = 1; i < len && p[i] != ':'; i++)
		if (!isalnum((unsigned char)p[i]) && p[i] != '+' &&
		    p[i] != '-' && p[i] != '.')
			return 0;
	if (i >= len - 1)
		return 0;
	for (; i < len; i++)
		if (p[i] == ' ' || p[i] == '\t')
			return 0;
	return 1;
}

static int
urilist_ok(const char *v)
{
	const char *p = v, *e;

	for (;;) {
		while (*p == ' ' || *p == '\t')
			p++;
		e = p + strcspn(p, ",");
		while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		if (valid_uri(p, (size_t)(e - p)))
			return 1;
		p += strcspn(p, ",");
		if (*p++ == '\0')
			return 0;
	}
}

static int
parse_pol(const char *v)
{
	if (strcasecmp(v, "none") == 0)
		return POL_NONE;
	if (strcasecmp(v, "quarantine") == 0)
		return POL_QUARANTINE;
	if (strcasecmp(v, "reject") == 0)
		return POL_REJECT;
	return POL_BAD;
}

static int
valid_fo(const char *v)
{
	const char *p;

	for (p = v; *p != '\0'; p++) {
		if (strchr("01dsDS", *p) == NULL)
			return 0;
		if (p[1] != '\0' && p[1] != ':')
			return 0;
		if (p[1] == ':')
			p++;
	}
	return *v != '\0';
}

/* ri=: 1*DIGIT seconds (spaces around allowed); anything else: 86400. */
static long
parse_ri(const char *v, size_t n)
{
	long ri = 0;
	size_t i = 0, d = 0;

	while (i < n && (v[i] == ' ' || v[i] == '\t'))
		i++;
	for (; i < n && v[i] >= '0' && v[i] <= '9'; i++, d++)
		if ((ri = ri * 10 + (v[i] - '0')) > 31L * 86400)
			ri = 31L * 86400;	/* capped at 31 days */
	while (i < n && (v[i] == ' ' || v[i] == '\t'))
		i++;
	return d == 0 || i != n || ri == 0 ? 86400 : ri;
}

static const char *const known_tags[] = {
	"v", "p", "sp", "np", "psd", "t", "adkim", "aspf", "rua", "ruf", "fo"
};
#define N_KNOWN_TAGS	(sizeof(known_tags) / sizeof(known_tags[0]))

/*
 * The tags after "v=DMARC1" (t[i..len), which may hold NULs).  Unknown
 * tags (pct, rf, ri among them) are ignored; a known tag whose value is
 * not valid takes its default (rec.bad names the first); a repeated
 * known tag makes the record invalid (rec.dup).
 */
static void
parse_tags(const char *t, size_t len, size_t i, struct drec *r)
{
	unsigned int seen = 1;	/* v */
	char name[16], value[512];
	size_t s, e, n, v, k;

	memset(r, 0, sizeof(*r));
	r->psd = 'u';
	r->adkim = r->aspf = 'r';
	snprintf(r->fo, sizeof(r->fo), "0");
	r->ri = 86400;
	while (i < len) {
		if (t[i] == ';' || t[i] == ' ' || t[i] == '\t') {
			i++;
			continue;
		}
		for (s = i; i < len && t[i] != ';'; i++)
			;
		e = i;
		while (e > s && (t[e - 1] == ' ' || t[e - 1] == '\t'))
			e--;
		for (n = s; n < e && isalpha((unsigned char)t[n]); n++)
			;
		for (v = n; v < e && (t[v] == ' ' || t[v] == '\t'); v++)
			;
		if (n == s || n - s >= sizeof(name) || v >= e || t[v] != '=') {
			if (r->bad[0] == '\0')
				snprintf(r->bad, sizeof(r->bad), "\"%.*s\"",
				    (int)(e - s > 20 ? 20 : e - s), t + s);
			continue;
		}
		memcpy(name, t + s, n - s);
		name[n - s] = '\0';
		for (k = 0; k < N_KNOWN_TAGS; k++)
			if (strcasecmp(name, known_tags[k]) == 0)
				break;
		if (k == N_KNOWN_TAGS) {
			/*
			 * Unknown tags MUST be ignored; ri= (RFC 7489, gone
			 * from RFC 9989) only sets the aggregate-report
			 * interval of mailwarden-report, never the verdict.
			 */
			if (strcasecmp(name, "ri") == 0)
				r->ri = parse_ri(t + v + 1, e - v - 1);
			continue;
		}
		if (seen & (1u << k)) {
			if (r->dup[0] == '\0')
				snprintf(r->dup, sizeof(r->dup), "%s",
				    known_tags[k]);
			continue;
		}
		seen |= 1u << k;
		for (v++; v < e && (t[v] == ' ' || t[v] == '\t'); v++)
			;
		n = e - v;
		/* dmarc-value: printing characters but ';' (a NUL is not) */
		for (s = v; s < e; s++)
			if ((unsigned char)t[s] < 0x20 ||
			    (unsigned char)t[s] > 0x7e)
				break;
		if (n == 0 || s < e || n >= sizeof(value)) {
			value[0] = '\0';
		} else {
			memcpy(value, t + v, n);
			value[n] = '\0';
		}
		switch (k) {
		case 1: case 2: case 3: {
			int pol = value[0] ? parse_pol(value) : POL_BAD;

			if (k == 1)
				r->p = pol;
			else if (k == 2)
				r->sp = pol;
			else
				r->np = pol;
			if (pol == POL_BAD)
				goto bad;
			break;
		}
		case 4:	/* psd */
			if (strlen(value) != 1 || strchr("ynuYNU", value[0]) ==
			    NULL)
				goto bad;
			r->psd = (char)tolower((unsigned char)value[0]);
			break;
		case 5:	/* t */
			if (strlen(value) != 1 || strchr("ynYN", value[0]) ==
			    NULL)
				goto bad;
			r->t = tolower((unsigned char)value[0]) == 'y';
			break;
		case 6: case 7:	/* adkim, aspf */
			if (strlen(value) != 1 || strchr("rsRS", value[0]) ==
			    NULL)
				goto bad;
			*(k == 6 ? &r->adkim : &r->aspf) =
			    (char)tolower((unsigned char)value[0]);
			break;
		case 8:	/* rua */
			if (value[0] == '\0')
				goto bad;
			snprintf(r->rua, sizeof(r->rua), "%s", value);
			r->rua_ok = urilist_ok(value);
			if (!r->rua_ok)
				goto bad;
			break;
		case 9:	/* ruf */
			if (value[0] == '\0' || !urilist_ok(value))
				goto bad;
			snprintf(r->ruf, sizeof(r->ruf), "%s", value);
			break;
		case 10: /* fo */
			if (!valid_fo(value))
				goto bad;
			snprintf(r->fo, sizeof(r->fo), "%.15s", value);
			break;
		}
		continue;
bad:
		if (r->bad[0] == '\0')
			snprintf(r->bad, sizeof(r->bad), "%s=", known_tags[k]);
	}
}

/* The DMARC record of one answer into q->lk and q->rec. */
static void
pick_record(const struct mw_dns_answer *a, struct dq *q)
{
	const struct mw_dns_rr *one = NULL;
	size_t off = 0, o;
	int i, n = 0;

	q->error = a->error;
	switch (a->status) {
	case MW_DNS_OK:
		break;
	case MW_DNS_NXDOMAIN:
	case MW_DNS_NODATA:
		q->lk = LK_NONE;
		return;
	case MW_DNS_PERMFAIL:
		q->lk = LK_PERM;
		return;
	default:
		q->lk = LK_TEMP;
		return;
	}
	for (i = 0; i < a->nrr; i++) {
		const struct mw_dns_rr *rr = &a->rr[i];

		if (rr->type != MW_DNS_TXT || rr->text == NULL ||
		    (o = dmarc_version(rr->text, rr->len)) == 0)
			continue;
		n++;
		one = rr;
		off = o;
	}
	if (n != 1) {
		q->lk = n > 1 ? LK_SEVERAL : LK_NONE;
		return;
	}
	if (one->len > DMARC_MAX_RECORD) {
		q->lk = LK_INVALID;
		snprintf(q->rec.dup, sizeof(q->rec.dup), "(too long)");
		return;
	}
	parse_tags(one->text, one->len, off, &q->rec);
	q->lk = q->rec.dup[0] != '\0' ? LK_INVALID : LK_RECORD;
}

/* ------------------------------------------------------------------ */
/* DNS: one query per _dmarc name per message, shared by every walk */

static struct dq *
dq_get(struct mw_session *s, struct dmarc_state *st, const char *name)
{
	char qname[DMARC_DOMAIN_MAX + 8];
	struct dq *q, **nv;
	size_t i;

	for (i = 0; i < st->n_dq; i++)
		if (strcmp(st->dq[i]->name, name) == 0)
			return st->dq[i];
	if (st->n_dq >= DMARC_MAX_NAMES)
		return NULL;
	if ((nv = realloc(st->dq, (st->n_dq + 1) * sizeof(*nv))) == NULL)
		return NULL;
	st->dq = nv;
	if ((q = calloc(1, sizeof(*q))) == NULL)
		return NULL;
	snprintf(q->name, sizeof(q->name), "%s", name);
	if (strlen(name) + 7 > 253) {
		/* "_dmarc." + name is too long to exist: no record. */
		q->done = 1;
		q->lk = LK_NONE;
	} else {
		snprintf(qname, sizeof(qname), "_dmarc.%s", name);
		q->q = mw_dns_submit(s->dns, qname, MW_DNS_TXT);
	}
	st->dq[st->n_dq++] = q;
	return q;
}

static void
dq_wait(struct mw_session *s, struct dq *q)
{
	const struct mw_dns_answer *a;

	if (q->done)
		return;
	a = mw_dns_wait(s->dns, q->q);
	mw_session_note_dns(s, "dmarc", a);
	pick_record(a, q);
	q->done = 1;
}

static size_t
n_labels(const char *d)
{
	size_t n = 1;

	for (; *d != '\0'; d++)
		if (*d == '.')
			n++;
	return n;
}

/* The suffix of d that has n labels (n <= labels of d). */
static const char *
last_labels(const char *d, size_t n)
{
	const char *p = d + strlen(d);
	size_t seen = 0;

	while (p > d) {
		p--;
		if (*p == '.' && ++seen == n)
			return p + 1;
	}
	return d;
}

/*
 * The names a DNS Tree Walk from d asks, in order (RFC 9989 4.10): d,
 * then its parents one label at a time, a name of 8 labels or more
 * jumping to its last 7 first.  At most DMARC_WALK_MAX.
 */
static size_t
walk_names(const char *d, const char *out[DMARC_WALK_MAX])
{
	size_t x = n_labels(d), k, n = 0;

	out[n++] = d;
	for (k = x - 1 < 7 ? x - 1 : 7; k >= 1; k--)
		out[n++] = last_labels(d, k);
	return n;
}

static void
walk_submit(struct mw_session *s, struct dmarc_state *st, const char *d)
{
	const char *names[DMARC_WALK_MAX];
	size_t i, n = walk_names(d, names);

	for (i = 0; i < n; i++)
		(void)dq_get(s, st, names[i]);
}

/* The registrable domain of d by the Public Suffix List (libpsl). */
static void
psl_org(struct mw_session *s, const char *d, char *out, size_t outlen)
{
	struct dmarc_global *g = mw_session_global(s);
	const char *r = NULL;

	if (g != NULL && g->psl != NULL)
		r = psl_registrable_domain(g->psl, d);
	snprintf(out, outlen, "%s", r != NULL ? r : d);
}

/*
 * The Organizational Domain of d, and the records met on the way: the
 * tree walk (RFC 9989 4.10.2), or the PSL.  0, or -1 with w->err.
 */
static int
walk(struct mw_session *s, struct dmarc_state *st, const char *d,
    struct walk *w)
{
	const char *names[DMARC_WALK_MAX];
	struct dq *qs[DMARC_WALK_MAX], *last = NULL, *stop = NULL;
	size_t i, n;

	memset(w, 0, sizeof(*w));
	w->err = LK_NONE;
	if (st->c->discovery == DISC_PSL) {
		psl_org(s, d, w->org, sizeof(w->org));
		return 0;
	}
	n = walk_names(d, names);
	for (i = 0; i < n; i++)		/* all at once: they run in parallel */
		qs[i] = dq_get(s, st, names[i]);
	for (i = 0; i < n && stop == NULL; i++) {
		if (qs[i] == NULL) {
			w->err = LK_TEMP;
			return -1;
		}
		dq_wait(s, qs[i]);
		switch (qs[i]->lk) {
		case LK_TEMP:
		case LK_PERM:
			w->err = qs[i]->lk;
			w->err_at = qs[i];
			return -1;
		case LK_INVALID:
			if (w->invalid == NULL)
				w->invalid = qs[i];
			break;
		case LK_SEVERAL:
			if (w->several == NULL)
				w->several = qs[i];
			break;
		case LK_NONE:
			break;
		case LK_RECORD:
			last = qs[i];
			if (qs[i]->rec.psd != 'u')
				stop = qs[i];
			break;
		}
	}
	if (stop != NULL && stop->rec.psd == 'n')
		snprintf(w->org, sizeof(w->org), "%s", stop->name);
	else if (stop != NULL && stop != qs[0]) {
		/* psd=y: the Organizational Domain is one label below. */
		snprintf(w->org, sizeof(w->org), "%s", last_labels(d,
		    n_labels(stop->name) + 1));
		w->psd_rq = stop;
	} else if (last != NULL)
		snprintf(w->org, sizeof(w->org), "%s", last->name);
	else
		snprintf(w->org, sizeof(w->org), "%s", d);
	for (i = 0; i < n && qs[i] != NULL && qs[i]->done; i++)
		if (qs[i]->lk == LK_RECORD && strcmp(qs[i]->name, w->org) == 0)
			w->org_rq = qs[i];
	return 0;
}

/* ------------------------------------------------------------------ */
/* Evaluation */

/* The SPF identity DMARC uses (RFC 9989 3.2.4): MAIL FROM, else HELO. */
static const char *
spf_identity(const struct mw_session *s, enum mw_auth_result *r, int *helo)
{
	*helo = 0;
	if (s->res.spf_domain[0] != '\0') {
		*r = s->res.spf;
		*helo = s->mail_from == NULL || *s->mail_from == '\0';
		return s->res.spf_domain;
	}
	if ((s->mail_from == NULL || *s->mail_from == '\0') &&
	    s->helo != NULL && *s->helo != '\0') {
		*r = s->res.spf_helo;
		*helo = 1;
		return s->helo;
	}
	*r = MW_AUTH_NONE;
	return NULL;
}

/* a is b or a subdomain of b. */
static int
same_or_sub(const char *a, const char *b)
{
	size_t n = strlen(a), m = strlen(b);

	if (n == m)
		return strcasecmp(a, b) == 0;
	return n > m && a[n - m - 1] == '.' && strcasecmp(a + n - m, b) == 0;
}

static const char *
walk_error(const struct walk *w, char *buf, size_t len)
{
	if (w->err_at == NULL)
		snprintf(buf, len, "too many DNS names");
	else
		snprintf(buf, len, "DNS error looking up _dmarc.%s: %s",
		    w->err_at->name, w->err_at->error != NULL ?
		    w->err_at->error : w->err == LK_TEMP ? "no answer" :
		    "bad answer");
	return buf;
}

/*
 * Is the authenticated identifier id aligned with the Author Domain
 * (RFC 9989 4.4, 4.10.2)?  1 yes, 0 no, -1 a DNS error stopped a walk
 * (why set).  Strict: the same name.  Relaxed: the same Organizational
 * Domain -- which can only be if id is at or below the Author Domain's.
 */
static int
aligned(struct mw_session *s, struct dmarc_state *st, struct dmarc_domain *d,
    const char *id, char mode, char *why, size_t whylen)
{
	struct walk w;
	char lid[DMARC_DOMAIN_MAX];
	size_t i;

	if (id == NULL || *id == '\0')
		return 0;
	/* Names are walked (and the PSL asked) lower-case, without a dot. */
	for (i = 0; id[i] != '\0' && i + 1 < sizeof(lid); i++)
		lid[i] = (char)tolower((unsigned char)id[i]);
	while (i > 0 && lid[i - 1] == '.')
		i--;
	lid[i] = '\0';
	id = lid;
	if (*id == '\0')
		return 0;
	if (strcasecmp(id, d->domain) == 0)
		return 1;
	if (mode == 's')
		return 0;
	if (d->org[0] == '\0') {
		if (walk(s, st, d->domain, &w) == -1) {
			walk_error(&w, why, whylen);
			return -1;
		}
		snprintf(d->org, sizeof(d->org), "%s", w.org);
	}
	if (!same_or_sub(id, d->org))
		return 0;
	if (walk(s, st, id, &w) == -1) {
		walk_error(&w, why, whylen);
		return -1;
	}
	return strcasecmp(w.org, d->org) == 0;
}

/*
 * Policy discovery (RFC 9989 4.10.1): the Author Domain's record, else
 * its Organizational Domain's, else its Public Suffix Domain's.  Sets
 * d->rq and d->at_org, or d->result and d->why.
 */
static void
discover(struct mw_session *s, struct dmarc_state *st, struct dmarc_domain *d)
{
	struct dq *q0 = dq_get(s, st, d->domain), *inv = NULL, *sev = NULL;
	struct walk w;
	char buf[400];

	if (q0 == NULL) {
		d->result = DR_TEMPERROR;
		snprintf(d->why, sizeof(d->why), "out of memory");
		return;
	}
	dq_wait(s, q0);
	switch (q0->lk) {
	case LK_RECORD:
		d->rq = q0;
		return;
	case LK_TEMP:
	case LK_PERM:
		d->result = q0->lk == LK_TEMP ? DR_TEMPERROR : DR_PERMERROR;
		snprintf(d->why, sizeof(d->why), "DNS error looking up "
		    "_dmarc.%s: %s", q0->name, q0->error != NULL ? q0->error :
		    q0->lk == LK_TEMP ? "no answer" : "bad answer");
		return;
	case LK_INVALID:
		inv = q0;
		break;
	case LK_SEVERAL:
		sev = q0;
		break;
	case LK_NONE:
		break;
	}
	if (st->c->discovery == DISC_PSL) {
		struct dq *qo;

		psl_org(s, d->domain, d->org, sizeof(d->org));
		if (strcmp(d->org, d->domain) != 0 &&
		    (qo = dq_get(s, st, d->org)) != NULL) {
			dq_wait(s, qo);
			if (qo->lk == LK_RECORD) {
				d->rq = qo;
				d->at_org = 1;
				return;
			}
			if (qo->lk == LK_TEMP || qo->lk == LK_PERM) {
				d->result = qo->lk == LK_TEMP ? DR_TEMPERROR :
				    DR_PERMERROR;
				snprintf(d->why, sizeof(d->why), "DNS error "
				    "looking up _dmarc.%s: %s", qo->name,
				    qo->error != NULL ? qo->error : "no answer");
				return;
			}
			if (inv == NULL && qo->lk == LK_INVALID)
				inv = qo;
			if (sev == NULL && qo->lk == LK_SEVERAL)
				sev = qo;
		}
	} else {
		if (walk(s, st, d->domain, &w) == -1) {
			d->result = w.err == LK_PERM ? DR_PERMERROR :
			    DR_TEMPERROR;
			snprintf(d->why, sizeof(d->why), "%s",
			    walk_error(&w, buf, sizeof(buf)));
			return;
		}
		snprintf(d->org, sizeof(d->org), "%s", w.org);
		if (w.org_rq != NULL && w.org_rq != q0) {
			d->rq = w.org_rq;
			d->at_org = 1;
			return;
		}
		if (w.psd_rq != NULL) {
			d->rq = w.psd_rq;
			d->at_org = 1;
			return;
		}
		if (inv == NULL)
			inv = w.invalid;
		if (sev == NULL)
			sev = w.several;
	}
	if (inv != NULL) {
		/* Someone published a record we cannot use: say so. */
		d->result = DR_PERMERROR;
		snprintf(d->why, sizeof(d->why), "invalid DMARC record at "
		    "_dmarc.%s: tag %s repeated", inv->name, inv->rec.dup);
		return;
	}
	d->result = DR_NONE;
	if (sev != NULL)
		snprintf(d->why, sizeof(d->why), "several DMARC records at "
		    "_dmarc.%s, none applies", sev->name);
}

/*
 * The policy of the discovered record for d (4.10.1): p= for the Author
 * Domain's own record; sp= (existing) or np= (non-existent) for a
 * parent's; a missing or invalid p= (or invalid sp=/np=) is p=none with
 * a valid rua=, else no DMARC.  Then t=y, one level down.  0, or -1
 * with d->result set.
 */
static int
apply_policy(struct mw_session *s, struct dmarc_domain *d)
{
	const struct drec *r = &d->rq->rec;
	const struct mw_dns_answer *a;
	int base;

	if (r->p == POL_UNSET || r->p == POL_BAD || r->sp == POL_BAD ||
	    r->np == POL_BAD) {
		if (!r->rua_ok) {
			d->result = DR_NONE;
			snprintf(d->why, sizeof(d->why), "DMARC record at "
			    "_dmarc.%s has no valid %s and no valid rua=, "
			    "not applied", d->rq->name, r->p == POL_UNSET ||
			    r->p == POL_BAD ? "p=" : r->sp == POL_BAD ? "sp=" :
			    "np=");
			return -1;
		}
		d->from_rua = 1;
		d->p = d->sp = d->np = POL_NONE;
	} else {
		d->p = r->p;
		d->sp = r->sp != POL_UNSET ? r->sp : d->p;
		d->np = r->np != POL_UNSET ? r->np : d->sp;
	}
	d->t = r->t;
	d->adkim = r->adkim;
	d->aspf = r->aspf;
	if (!d->at_org) {
		d->which = "p";
		base = d->p;
	} else {
		/*
		 * A parent's record: sp= for an existing Author Domain, np=
		 * for one that does not exist (4.10.1).  But sp= is for the
		 * subdomains of an Organizational Domain, "not to the
		 * Organizational Domain itself" (4.7): a public suffix's
		 * record (psd=y) applied to the Organizational Domain just
		 * below it gives p= (RFC 9091's PSD policy).
		 */
		if (d->rq->rec.psd == 'y' && strcmp(d->org, d->domain) == 0) {
			d->which = "p";
			base = d->p;
		} else {
			d->which = "sp";
			base = d->sp;
		}
		a = d->q_exist != NULL ? mw_dns_wait(s->dns, d->q_exist) : NULL;
		if (a != NULL)
			mw_session_note_dns(s, "dmarc", a);
		if (a != NULL && a->status == MW_DNS_NXDOMAIN) {
			d->nonexistent = 1;
			d->which = "np";
			base = d->np;
		} else if (d->np != base && (a == NULL ||
		    (a->status != MW_DNS_OK && a->status != MW_DNS_NODATA))) {
			d->result = DR_TEMPERROR;
			snprintf(d->why, sizeof(d->why), "cannot tell whether %s "
			    "exists (np=%s applies if not): %s", d->domain,
			    pol_name(d->np), a != NULL && a->error != NULL ?
			    a->error : "no answer");
			return -1;
		}
	}
	d->base = d->policy = base;
	if (d->t && d->policy > POL_NONE)
		d->policy--;	/* 4.7 t=y: reject -> quarantine -> none */
	d->have_policy = 1;
	return 0;
}

static void
evaluate_domain(struct mw_session *s, struct dmarc_state *st,
    struct dmarc_domain *d)
{
	const char *spf_d, *temp = NULL, *what = NULL;
	enum mw_auth_result spf_r;
	char why[400] = "", w2[400];
	struct walk w;
	int helo, a, unknown = 0;
	size_t i;

	discover(s, st, d);
	if (d->rq == NULL || apply_policy(s, d) == -1)
		return;
	/* The Organizational Domain, for alignment and the history. */
	if (d->org[0] == '\0' && walk(s, st, d->domain, &w) == 0)
		snprintf(d->org, sizeof(d->org), "%s", w.org);
	/* Only passing signatures count (RFC 9989 4.4.1). */
	for (i = 0; i < s->res.n_dkim && i < MW_MAX_DKIM_RESULTS &&
	    !d->dkim_aligned; i++) {
		if (s->res.dkim[i].result != MW_AUTH_PASS)
			continue;
		a = aligned(s, st, d, s->res.dkim[i].domain, d->adkim, w2,
		    sizeof(w2));
		if (a == 1)
			d->dkim_aligned = 1;
		else if (a == -1 && !unknown++)
			snprintf(why, sizeof(why), "%s", w2);
	}
	spf_d = spf_identity(s, &spf_r, &helo);
	if (spf_d != NULL && spf_r == MW_AUTH_PASS) {
		a = aligned(s, st, d, spf_d, d->aspf, w2, sizeof(w2));
		if (a == 1)
			d->spf_aligned = 1;
		else if (a == -1 && !unknown++)
			snprintf(why, sizeof(why), "%s", w2);
	}
	if (d->dkim_aligned || d->spf_aligned) {
		d->result = DR_PASS;
		goto out;
	}
	if (unknown) {
		/* An identifier might align: RFC 9989 5.3.6, no pass or fail. */
		d->result = DR_TEMPERROR;
		snprintf(d->why, sizeof(d->why), "alignment unknown: %s", why);
		goto out;
	}
	d->result = DR_FAIL;
	/*
	 * A fail only because an aligned identifier could not be checked
	 * (DNS trouble at SPF or at the DKIM key) is a temperror: the
	 * sender's retry may well pass, a 5xx would be final.
	 */
	if (spf_d != NULL && spf_r == MW_AUTH_TEMPERROR &&
	    aligned(s, st, d, spf_d, d->aspf, w2, sizeof(w2)) != 0) {
		temp = spf_d;
		what = "SPF";
	}
	for (i = 0; i < s->res.n_dkim && i < MW_MAX_DKIM_RESULTS &&
	    temp == NULL; i++)
		if (s->res.dkim[i].result == MW_AUTH_TEMPERROR &&
		    s->res.dkim[i].domain[0] != '\0' &&
		    aligned(s, st, d, s->res.dkim[i].domain, d->adkim, w2,
		    sizeof(w2)) != 0) {
			temp = s->res.dkim[i].domain;
			what = "DKIM";
		}
	if (temp != NULL) {
		d->result = DR_TEMPERROR;
		snprintf(d->why, sizeof(d->why), "%s for %s: temporary error",
		    what, temp);
	}
out:
	mw_session_note(s, "dmarc", "%s: %s, record of %s (%s), policy %s "
	    "from %s= (p=%s sp=%s np=%s%s), Organizational Domain %s, DKIM "
	    "%saligned, SPF %saligned", d->domain, dres_name(d->result),
	    d->rq->name, d->at_org ? d->rq->rec.psd == 'y' ? "Public "
	    "Suffix Domain" : "Organizational Domain" : "Author Domain",
	    pol_name(d->policy), d->which, pol_name(d->p), pol_name(d->sp),
	    pol_name(d->np), d->t ? " t=y" : "", d->org[0] ? d->org : "?",
	    d->dkim_aligned ? "" : "not ", d->spf_aligned ? "" : "not ");
}

static int
pol_rank(int p)
{
	return p == POL_REJECT ? 2 : p == POL_QUARANTINE ? 1 : 0;
}

/* Is a domain (or a parent of it) in override_domains? */
static const char *
override_match(const struct dmarc_cfg *c, const char *dom)
{
	size_t i;

	for (i = 0; i < c->n_override; i++)
		if (same_or_sub(dom, c->override_domains[i]))
			return c->override_domains[i];
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
	int helo;
	size_t i;

	if (c->n_override == 0)
		return NULL;
	if ((m = override_match(c, d->domain)) != NULL)
		return m;
	for (i = 0; i < s->res.n_dkim && i < MW_MAX_DKIM_RESULTS; i++)
		if (s->res.dkim[i].result == MW_AUTH_PASS &&
		    (m = override_match(c, s->res.dkim[i].domain)) != NULL)
			return m;
	spf_d = spf_identity(s, &spf_r, &helo);
	if (spf_d != NULL && spf_r == MW_AUTH_PASS &&
	    (m = override_match(c, spf_d)) != NULL)
		return m;
	return NULL;
}

/*
 * The trusted-forwarder override ([arc] trusted_sealers, mw_arc.c): the
 * ARC chain passed, its newest set was sealed by a trusted sealer, and
 * that sealer's ARC-Authentication-Results says DMARC passed for this
 * Author Domain, or DKIM or SPF passed for an identifier aligned with
 * it.  1 yes, 0 no.
 */
static int
arc_override(struct mw_session *s, struct dmarc_state *st,
    struct dmarc_domain *d)
{
	const struct mw_shared_results *r = &s->res;
	char why[256];
	size_t i;

	if (!r->arc_done || r->arc != MW_AUTH_PASS || !r->arc_trusted)
		return 0;
	if (r->arc_aar_dmarc && (r->arc_aar_from[0] == '\0' ||
	    strcasecmp(r->arc_aar_from, d->domain) == 0))
		return 1;
	for (i = 0; i < r->n_arc_aar_dkim && i < MW_MAX_ARC_AAR_DKIM; i++)
		if (aligned(s, st, d, r->arc_aar_dkim[i], d->adkim, why,
		    sizeof(why)) == 1)
			return 1;
	return r->arc_aar_spf[0] != '\0' && aligned(s, st, d, r->arc_aar_spf,
	    d->aspf, why, sizeof(why)) == 1;
}

/* Carry out a reject_action / quarantine_action; returns the dis= word. */
static const char *
apply_disp(struct mw_session *s, const struct dmarc_cfg *c,
    const struct disp_action *da, const struct dmarc_domain *d,
    const char *policy)
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
decide(struct mw_session *s, struct dmarc_state *st)
{
	const struct dmarc_cfg *c = st->c;
	struct dmarc_domain *d = st->n_domains ? &st->d[st->worst] : NULL;
	const struct disp_action *da;
	const char *ov;

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
	if ((ov = find_override(s, c, d)) != NULL) {
		note_add(st, "local override: %s", ov);
		return;
	}
	if (d->policy != d->base)
		note_add(st, "t=y: one level down");
	if (d->policy == POL_NONE)
		return;
	if (arc_override(s, st, d)) {
		st->override_type = "trusted_forwarder";
		snprintf(st->override_comment, sizeof(st->override_comment),
		    "arc=pass sealer=%s", s->res.arc_sealer);
		mw_session_note(s, "dmarc", "local policy override: %s is a "
		    "trusted ARC sealer", s->res.arc_sealer);
		return;
	}
	da = d->policy == POL_REJECT ? &c->reject_action :
	    &c->quarantine_action;
	if (s->exempt_rcpt) {
		/* The session will not refuse it: hold or mark it neither. */
		note_add(st, "exempt recipient");
		return;
	}
	st->dis = apply_disp(s, c, da, d, pol_name(d->policy));
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

/*
 * One history line (format version 2), for RFC 9990 aggregate reports:
 *
 *   v 2, time (Unix seconds), queue_id, source_ip, helo, envelope_from,
 *   envelope_from_domain, envelope_to (recipient domains),
 *   header_from (the Author Domain, A-label), discovery_method
 *   ("treewalk" or "psl"), policy_domain (where the record applied was
 *   found), org_domain (the Author Domain's Organizational Domain, ""
 *   if a DNS error hid it), p, sp, np (the record's, defaults filled
 *   in: sp defaults to p, np to sp), testing ("y" for t=y, else "n"),
 *   psd ("y", "n", "u" of the record applied), adkim, aspf ("r"/"s"),
 *   fo, rua, ruf (as published, null if absent), ri (the record's ri=
 *   in seconds, 86400 if absent or invalid, at most 31 days: only
 *   mailwarden-report reads it), dmarc (pass or fail),
 *   policy (the policy that applied after t=), policy_from ("p", "sp",
 *   "np": which tag gave it), disposition (none, quarantine, reject,
 *   tempfail: what was done), reason (why the disposition differs:
 *   "local override: D", "t=y: one level down", "exempt recipient",
 *   "dry run"), dkim_aligned, spf_aligned ("pass"/"fail"), spf
 *   {domain, scope "mfrom"/"helo", result}, dkim [{domain, selector,
 *   result} for every signature checked], and only when a local policy
 *   override of this kind applied: override {type, comment} (RFC 9990
 *   PolicyOverrideReason): type "trusted_forwarder", comment
 *   "arc=pass sealer=DOMAIN" for an ARC chain sealed by one of [arc]
 *   trusted_sealers.
 */
static void
history_record(struct mw_session *s, struct dmarc_state *st,
    struct dmarc_domain *d, time_t now, struct mw_buf *b)
{
	const struct drec *r = &d->rq->rec;
	const char *spf_d, *at;
	enum mw_auth_result spf_r;
	int helo;
	size_t i;
	char buf[16];

	mw_buf_printf(b, "{\"v\":2,\"time\":%lld", (long long)now);
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
	json_str(b, "discovery_method", st->c->discovery == DISC_PSL ?
	    "psl" : "treewalk");
	json_str(b, "policy_domain", d->rq->name);
	json_str(b, "org_domain", d->org);
	json_str(b, "p", pol_name(d->p));
	json_str(b, "sp", pol_name(d->sp));
	json_str(b, "np", pol_name(d->np));
	json_str(b, "testing", d->t ? "y" : "n");
	snprintf(buf, sizeof(buf), "%c", r->psd);
	json_str(b, "psd", buf);
	snprintf(buf, sizeof(buf), "%c", d->adkim);
	json_str(b, "adkim", buf);
	snprintf(buf, sizeof(buf), "%c", d->aspf);
	json_str(b, "aspf", buf);
	json_str(b, "fo", r->fo);
	json_str(b, "rua", r->rua[0] ? r->rua : NULL);
	json_str(b, "ruf", r->ruf[0] ? r->ruf : NULL);
	mw_buf_printf(b, ",\"ri\":%ld", r->ri);
	json_str(b, "dmarc", dres_name(d->result));
	json_str(b, "policy", pol_name(d->policy));
	json_str(b, "policy_from", d->which);
	json_str(b, "disposition", d == &st->d[st->worst] ? st->dis : "none");
	json_str(b, "reason", d == &st->d[st->worst] ? st->note : "");
	json_str(b, "dkim_aligned", d->dkim_aligned ? "pass" : "fail");
	json_str(b, "spf_aligned", d->spf_aligned ? "pass" : "fail");
	spf_d = spf_identity(s, &spf_r, &helo);
	mw_buf_puts(b, ",\"spf\":{\"domain\":");
	json_string(b, spf_d != NULL ? spf_d : "");
	json_str(b, "scope", helo ? "helo" : "mfrom");
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
	mw_buf_puts(b, "]");
	if (d == &st->d[st->worst] && st->override_type != NULL) {
		mw_buf_puts(b, ",\"override\":{\"type\":");
		json_string(b, st->override_type);
		json_str(b, "comment", st->override_comment);
		mw_buf_puts(b, "}");
	}
	mw_buf_puts(b, "}\n");
}

/*
 * The Redis store ([redis], history_redis = yes): the message's lines
 * appended to the list of its UTC day, "<history_redis_key>:<day start>",
 * in one round trip: RPUSH (one element per line), LTRIM to the newest
 * history_redis_max, EXPIREAT the end of the day + history_redis_keep.
 * Redis down: logged (once per outage), the mail goes on.
 */
static void
history_to_redis(struct mw_session *s, const struct dmarc_cfg *c,
    const struct mw_buf *b, time_t now)
{
	struct mw_redis *r = mw_session_redis(s);
	const char *av[2 + DMARC_MAX_DOMAINS], *tv[4], *ev[3];
	size_t al[2 + DMARC_MAX_DOMAINS], n = 2;
	struct mw_redis_cmd cmds[3];
	struct redisReply *rep[3];
	char key[160], lo[32], at[32], err[256];
	const char *p, *e;
	long long day = (long long)now / 86400 * 86400;
	int quiet = 0;

	if (r == NULL)
		return;
	snprintf(key, sizeof(key), "%s:%lld", c->report.redis_key, day);
	av[0] = "RPUSH";
	al[0] = 5;
	av[1] = key;
	al[1] = strlen(key);
	for (p = b->s; p < b->s + b->len && n < 2 + DMARC_MAX_DOMAINS; p = e + 1) {
		e = memchr(p, '\n', (size_t)(b->s + b->len - p));
		if (e == NULL)
			e = b->s + b->len;
		av[n] = p;
		al[n++] = (size_t)(e - p);
	}
	snprintf(lo, sizeof(lo), "%ld", -c->report.redis_max);
	tv[0] = "LTRIM";
	tv[1] = key;
	tv[2] = lo;
	tv[3] = "-1";
	snprintf(at, sizeof(at), "%lld", day + 86400 + c->report.redis_keep);
	ev[0] = "EXPIREAT";
	ev[1] = key;
	ev[2] = at;
	cmds[0].argc = (int)n;
	cmds[0].argv = av;
	cmds[0].argvlen = al;
	cmds[1].argc = 4;
	cmds[1].argv = tv;
	cmds[1].argvlen = NULL;
	cmds[2].argc = 3;
	cmds[2].argv = ev;
	cmds[2].argvlen = NULL;
	if (mw_redis_run_quiet(r, cmds, 3, rep, &quiet, err, sizeof(err)) !=
	    MW_REDIS_OK) {
		mw_log(quiet ? LOG_DEBUG : LOG_ERR, "dmarc: history to redis "
		    "%s: %s", mw_redis_target(r), err);
		return;
	}
	mw_redis_free_replies(rep, 3);
	if (*c->history_file == '\0')
		mw_stats_inc(mw_session_stats(s), MW_ST_REPORTS_WRITTEN);
}

static void
write_history(struct mw_session *s, struct dmarc_state *st)
{
	const struct dmarc_cfg *c = st->c;
	struct mw_buf b = MW_BUF_INIT(256 * 1024);
	time_t now = time(NULL);
	ssize_t w;
	size_t i;
	int fd;

	if ((*c->history_file == '\0' && !c->history_redis) || s->read_only)
		return;
	for (i = 0; i < st->n_domains; i++)
		if (st->d[i].have_policy && (st->d[i].result == DR_PASS ||
		    st->d[i].result == DR_FAIL))
			history_record(s, st, &st->d[i], now, &b);
	if (b.len == 0 || b.truncated) {
		mw_buf_free(&b);
		return;
	}
	if (c->history_redis) {
		b.len--;	/* the last '\n' */
		history_to_redis(s, c, &b, now);
		b.s[b.len++] = '\n';
	}
	if (*c->history_file == '\0') {
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

/*
 * A failure report (RFC 9991) to send: one file per message and failing
 * From domain in failure_spool, for mailwarden-report --failures (which
 * confirms external ruf= addresses, rate-limits per domain and sends the
 * RFC 6591 report).  Only when failure_reports = yes, the record has
 * ruf=, psd is not y (RFC 9991 section 3) and fo= asks for it: 0 or 1
 * (DMARC failed: nothing aligned passed), d (a DKIM signature failed),
 * s (SPF failed).  Format: "key value" lines (ruf, domain, org, source_ip,
 * source_port 0, mail_from, queue_id, arrival (Unix time), alignment
 * ("dkim,spf": what failed to give an aligned pass), disposition, dkim
 * "d s result" per signature, spf "domain result"), an empty line, then
 * the message's header fields (all, or From, Date, Subject, Message-ID
 * with failure_content = minimal).
 */
static void
write_failure(struct mw_session *s, struct dmarc_state *st,
    struct dmarc_domain *d, time_t now)
{
	const struct dmarc_cfg *c = st->c;
	const struct drec *r = &d->rq->rec;
	struct mw_buf b = MW_BUF_INIT(128 * 1024);
	enum mw_auth_result spf_r;
	const char *spf_d;
	char path[PATH_MAX], tmp[PATH_MAX + 8], dom[DMARC_DOMAIN_MAX];
	int helo, want = 0, dkim_fail = 0, fd;
	size_t i;
	ssize_t w;

	if (!c->failure_reports || r->ruf[0] == '\0' || r->psd == 'y' ||
	    s->read_only)
		return;
	for (i = 0; i < s->res.n_dkim && i < MW_MAX_DKIM_RESULTS; i++)
		if (s->res.dkim[i].result == MW_AUTH_FAIL)
			dkim_fail = 1;
	spf_d = spf_identity(s, &spf_r, &helo);
	if (strchr(r->fo, '0') != NULL || strchr(r->fo, '1') != NULL ||
	    (strchr(r->fo, 'd') != NULL && dkim_fail) ||
	    (strchr(r->fo, 's') != NULL && spf_r == MW_AUTH_FAIL))
		want = 1;
	if (!want)
		return;
	mw_buf_printf(&b, "ruf %s\ndomain %s\norg %s\nsource_ip %s\n"
	    "mail_from %s\nqueue_id %s\narrival %lld\nalignment %s\n"
	    "disposition %s\n", r->ruf, d->rq->name, d->org, s->ip,
	    s->mail_from != NULL ? s->mail_from : "",
	    s->queue_id != NULL ? s->queue_id : "", (long long)now,
	    !d->dkim_aligned && !d->spf_aligned ? "dkim,spf" :
	    !d->dkim_aligned ? "dkim" : !d->spf_aligned ? "spf" : "none",
	    d == &st->d[st->worst] && st->dis != NULL ? st->dis : "none");
	mw_buf_printf(&b, "header_from %s\n", d->domain);
	for (i = 0; i < s->res.n_dkim && i < MW_MAX_DKIM_RESULTS; i++)
		mw_buf_printf(&b, "dkim %s %s %s\n", s->res.dkim[i].domain,
		    s->res.dkim[i].selector,
		    mw_auth_result_name(s->res.dkim[i].result));
	mw_buf_printf(&b, "spf %s %s\n\n", spf_d != NULL && *spf_d ? spf_d :
	    "-", mw_auth_result_name(spf_r));
	mw_buf_append(&b, st->hdrs.s != NULL ? st->hdrs.s : "", st->hdrs.len);
	/* Network text must not break the "key value" lines. */
	for (i = 0; i < b.len && !(i > 0 && b.s[i] == '\n' &&
	    b.s[i - 1] == '\n'); i++)
		if (b.s[i] == '\r')
			b.s[i] = '?';
	snprintf(dom, sizeof(dom), "%s", d->rq->name);
	snprintf(path, sizeof(path), "%s/%lld.%s.%s", c->failure_spool,
	    (long long)now, s->queue_id != NULL && *s->queue_id ?
	    s->queue_id : "noqueue", dom);
	for (i = strlen(c->failure_spool) + 1; path[i] != '\0'; i++)
		if (!isalnum((unsigned char)path[i]) && path[i] != '.' &&
		    path[i] != '-')
			path[i] = '_';
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
	if (fd == -1) {
		mw_log(LOG_ERR, "dmarc: failure_spool %s: %s", tmp,
		    strerror(errno));
		mw_buf_free(&b);
		return;
	}
	w = write(fd, b.s, b.len);
	close(fd);
	if (w != (ssize_t)b.len || rename(tmp, path) == -1) {
		mw_log(LOG_ERR, "dmarc: failure_spool %s: %s", path,
		    w == -1 ? strerror(errno) : "short write");
		unlink(tmp);
	}
	mw_buf_free(&b);
}

/* ------------------------------------------------------------------ */
/* Hooks */

/*
 * The From field: parse it and send every query the evaluation may
 * need at once -- the tree walk of each Author Domain (or its record and
 * its PSL Organizational Domain's) and the Author Domain's existence
 * (np=) -- so that the answers are in by the end of the message.
 */
static void
dmarc_on_header(struct mw_session *s, const void *vc, void *vst,
    const char *name, const char *value)
{
	const struct dmarc_cfg *c = vc;
	struct dmarc_state *st = vst;
	char org[DMARC_DOMAIN_MAX];
	size_t i;

	st->c = c;
	if (c->failure_reports) {
		/* For failure reports: the header fields, 64 KiB at most. */
		if (st->hdrs.max == 0)
			st->hdrs.max = 64 * 1024;
		if (!c->failure_minimal || mw_header_name_is(name, "From") ||
		    mw_header_name_is(name, "Date") ||
		    mw_header_name_is(name, "Subject") ||
		    mw_header_name_is(name, "Message-ID"))
			mw_buf_printf(&st->hdrs, "%s:%s%s\r\n", name,
			    *value == ' ' || *value == '\t' ? "" : " ", value);
	}
	if (!mw_header_name_is(name, "From"))
		return;
	if (++st->n_from > 1)
		return;
	if (parse_from(st, value) == -1)
		return;		/* permerror at end of message */
	for (i = 0; i < st->n_domains; i++) {
		struct dmarc_domain *d = &st->d[i];

		if (c->discovery == DISC_PSL) {
			(void)dq_get(s, st, d->domain);
			psl_org(s, d->domain, org, sizeof(org));
			(void)dq_get(s, st, org);
		} else
			walk_submit(s, st, d->domain);
		if (strchr(d->domain, '.') != NULL)
			d->q_exist = mw_dns_submit(s->dns, d->domain, MW_DNS_A);
	}
}

static void
dmarc_on_eom(struct mw_session *s, const void *vc, void *vst)
{
	struct dmarc_state *st = vst;
	size_t i;

	st->c = vc;
	st->evaluated = 1;
	st->worst = 0;
	if (st->n_from == 0)
		st->from_error = "no From header field";
	else if (st->n_from > 1)
		st->from_error = "several From header fields";
	if (st->from_error != NULL) {
		st->result = DR_PERMERROR;
		mw_session_note(s, "dmarc", "%s", st->from_error);
		decide(s, st);
		return;
	}
	st->result = DR_PASS;
	for (i = 0; i < st->n_domains; i++) {
		struct dmarc_domain *d = &st->d[i];
		struct dmarc_domain *w = &st->d[st->worst];

		evaluate_domain(s, st, d);
		if (d->result > st->result || (d->result == DR_FAIL &&
		    w->result == DR_FAIL && pol_rank(d->policy) >
		    pol_rank(w->policy))) {
			st->result = d->result;
			st->worst = i;
		}
	}
	decide(s, st);
	write_history(s, st);
	for (i = 0; i < st->n_domains; i++)
		if (st->d[i].have_policy && st->d[i].result == DR_FAIL)
			write_failure(s, st, &st->d[i], time(NULL));
}

static void
dmarc_authres(struct mw_session *s, const void *vc, void *vst,
    struct mw_authres *ar)
{
	struct dmarc_state *st = vst;
	struct dmarc_domain *d;

	(void)s;
	(void)vc;
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
		mw_authres_comment(ar, "p=%s sp=%s np=%s%s dis=%s%s%s%s%s%s",
		    pol_name(d->p), pol_name(d->sp), pol_name(d->np),
		    d->t ? " t=y" : "", st->dis != NULL ? st->dis : "none",
		    st->note[0] ? "; " : "", st->note,
		    st->override_type != NULL ? "; override=arc " : "",
		    st->override_type != NULL ? st->override_comment : "",
		    d->from_rua ? "; no valid p=, rua= given: p=none" : "");
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
