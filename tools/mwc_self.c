/*
 * mwc_self -- self-check mode of mailwarden-check: "will big receivers
 * accept my mail?"
 *
 *	rc = mwc_self(ctx, &opts);	-- 0 all pass, 1 warnings, 2 failures
 *
 * Looks at a sending domain and server the way receivers do, and says
 * pass / warn / fail per item, each with the fix in one line:
 *
 *	Reverse DNS	the IP has a PTR that resolves back to it
 *	HELO name	a FQDN that resolves to the IP, ideally the PTR name,
 *			not a generic (dynamic-looking) name
 *	MX		names (not IPs, not CNAMEs) that have addresses
 *	SPF		one valid record ending in -all or ~all that
 *			authorizes the IP, within 10 lookups and 2 void ones
 *	DKIM		a key at the selector: RSA >= 2048 bits or Ed25519,
 *			the one of --key if given
 *	DMARC		a record that parses; its policy and report addresses
 *	DNSBL		the IP is not on the configured lists (or the list
 *			refused to answer our resolver)
 *	SMTP		(--smtp) the MX greets with its name, offers STARTTLS
 *			and accepts postmaster@ and abuse@ (mwc_smtp.c)
 *
 * The DNS lookups go through mw_dns, the daemon's resolver layer, with
 * the configuration's [dns] settings.  Verdicts that are the daemon's
 * business come from the daemon's own checks, run in a read-only
 * session as a receiver would run them: whether SPF authorizes the IP
 * and whether the record is valid (mw_spf / libspf2), and the DNSBL
 * listings (mw_dnsbl).  The SPF record is walked here only to count its
 * DNS lookups for the report.  DKIM keys are inspected with OpenSSL,
 * DMARC records parsed by libopendmarc, organizational domains (for the
 * report-destination check) read from the Public Suffix List by libpsl.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <opendmarc/dmarc.h>
#include <libpsl.h>

#include "mw_cidr.h"
#include "mw_dns.h"
#include "mw_session.h"
#include "mw_text.h"
#include "mwc.h"

#define MAX_SECTIONS	16
#define MAX_ITEMS	64
#define MAX_DETAILS	48
#define MAX_NAMES	10	/* PTR names, MX hosts looked at */
#define SPF_MAX_DEPTH	10	/* include/redirect nesting we follow */
#define SPF_MAX_QUERIES	100	/* DNS queries the walk may make */

/* ---- the report --------------------------------------------------------- */

struct item {
	enum mwc_status	 st;
	char		 id[32];
	char		*text;
	char		*fix;
	char		*details[MAX_DETAILS];
	int		 nd;
	int		 more;		/* details dropped */
};

struct section {
	char		*title;
	struct item	 items[MAX_ITEMS];
	int		 n;
};

struct mwc_report {
	struct section	*sec[MAX_SECTIONS];
	int		 nsec;
	struct item	*last;
};

static char *
vfmt(const char *fmt, va_list ap)
{
	char buf[2048];

	vsnprintf(buf, sizeof(buf), fmt, ap);
	return strdup(buf);
}

void
mwc_section(struct mwc_report *r, const char *title)
{
	struct section *s;

	r->last = NULL;
	if (r->nsec >= MAX_SECTIONS || (s = calloc(1, sizeof(*s))) == NULL)
		return;
	s->title = strdup(title);
	r->sec[r->nsec++] = s;
}

void
mwc_item(struct mwc_report *r, enum mwc_status st, const char *id,
    const char *fix, const char *fmt, ...)
{
	struct section *s;
	struct item *it;
	va_list ap;

	r->last = NULL;
	if (r->nsec == 0)
		mwc_section(r, "Checks");
	if (r->nsec == 0 || (s = r->sec[r->nsec - 1])->n >= MAX_ITEMS)
		return;
	it = &s->items[s->n++];
	it->st = st;
	snprintf(it->id, sizeof(it->id), "%s", id);
	va_start(ap, fmt);
	it->text = vfmt(fmt, ap);
	va_end(ap);
	it->fix = fix != NULL ? strdup(fix) : NULL;
	r->last = it;
}

void
mwc_detail(struct mwc_report *r, const char *fmt, ...)
{
	struct item *it = r->last;
	va_list ap;

	if (it == NULL)
		return;
	if (it->nd >= MAX_DETAILS) {
		it->more++;
		return;
	}
	va_start(ap, fmt);
	it->details[it->nd++] = vfmt(fmt, ap);
	va_end(ap);
}

static void
report_free(struct mwc_report *r)
{
	int i, j, k;

	for (i = 0; i < r->nsec; i++) {
		struct section *s = r->sec[i];

		for (j = 0; j < s->n; j++) {
			free(s->items[j].text);
			free(s->items[j].fix);
			for (k = 0; k < s->items[j].nd; k++)
				free(s->items[j].details[k]);
		}
		free(s->title);
		free(s);
	}
}

/* ---- DNS helpers -------------------------------------------------------- */

/* An answer as a detail line: "MX example.org: 10 mx.example.org". */
static void
detail_answer(struct mwc_report *r, const struct mw_dns_answer *a)
{
	struct mw_buf b = MW_BUF_INIT(1500);

	mw_dns_answer_format(&b, a);
	mwc_detail(r, "%s", mw_buf_str(&b));
	mw_buf_free(&b);
}

static int
missing(const struct mw_dns_answer *a)
{
	return a->status == MW_DNS_NXDOMAIN || a->status == MW_DNS_NODATA;
}

static const char *
why_failed(const struct mw_dns_answer *a)
{
	return a->error != NULL ? a->error : "lookup failed";
}

/* Does an A/AAAA answer hold ip? */
static int
answer_has_ip(const struct mw_dns_answer *a, const char *ip)
{
	uint8_t want[16], got[16];
	int i, wf, gf;

	if (a->status != MW_DNS_OK || mw_ip_parse(ip, &wf, want) == -1)
		return 0;
	for (i = 0; i < a->nrr; i++)
		if (mw_ip_parse(a->rr[i].text, &gf, got) == 0 && gf == wf &&
		    memcmp(got, want, 16) == 0)
			return 1;
	return 0;
}

/* "192.0.2.1, 192.0.2.2" */
static void
addresses(const struct mw_dns_answer *a, char *out, size_t outlen)
{
	size_t o = 0;
	int i;

	out[0] = '\0';
	for (i = 0; a->status == MW_DNS_OK && i < a->nrr && o < outlen; i++)
		o += (size_t)snprintf(out + o, outlen - o, "%s%s", i ? ", " :
		    "", a->rr[i].text);
}

/* A TXT record as a C string (the NULs a TXT may hold end it). */
static const char *
txt(const struct mw_dns_rr *rr)
{
	return rr->text;
}

/* ---- names -------------------------------------------------------------- */

/* RFC 1123 host name with at least two labels and a non-numeric top. */
static const char *
not_fqdn_reason(const char *h)
{
	uint8_t tmp[16];

	if (inet_pton(AF_INET, h, tmp) == 1 || inet_pton(AF_INET6, h, tmp) ==
	    1 || h[0] == '[')
		return "an address, not a name";
	/* The rules of the [helo] check, and a dot. */
	return mw_domain_check(h, strlen(h), MW_DOMAIN_HOST |
	    MW_DOMAIN_DOTTED);
}

/*
 * Does the name look like one an access provider gives a dynamic or
 * generic address ("203-0-113-5.dsl.isp.net", "dyn-12.pool.isp.net")?
 * Big receivers score those as "not a mail server".  Only the labels
 * before the last two are looked at (the registered domain is yours).
 * Returns a reason, or NULL.
 */
static const char *
generic_reason(const char *name, const char *ip, char *buf, size_t buflen)
{
	static const char *const words[] = { "dynamic", "dyn", "dhcp",
	    "pool", "dsl", "adsl", "vdsl", "xdsl", "cable", "ppp", "pppoe",
	    "dialup", "dial", "static", "client", "clients", "customer",
	    "cust", "broadband", "residential", "res", "cpe", "dip",
	    "mobile", "wireless", "wifi", "nat", "unassigned", "host",
	    "ip", "user", "users", NULL };
	char copy[256], *tok, *save, octet[4][4];
	const char *end;
	int nlabels = 0, i, digits = 0, hits = 0, nocts = 0;
	size_t n, keep;
	struct in_addr a4;

	snprintf(copy, sizeof(copy), "%s", name);
	n = strlen(copy);
	if (n > 0 && copy[n - 1] == '.')
		copy[--n] = '\0';
	for (i = 0; copy[i] != '\0'; i++) {
		copy[i] = (char)tolower((unsigned char)copy[i]);
		if (copy[i] == '.')
			nlabels++;
	}
	/* Keep only the labels before the registered domain. */
	if (nlabels < 2)
		return NULL;
	end = copy + n;
	for (i = 0; i < 2; i++)
		while (end > copy && *--end != '.')
			;
	keep = (size_t)(end - copy);
	copy[keep] = '\0';
	if (ip != NULL && inet_pton(AF_INET, ip, &a4) == 1) {
		const uint8_t *b = (const uint8_t *)&a4;

		for (i = 0; i < 4; i++)
			snprintf(octet[i], sizeof(octet[i]), "%u", b[i]);
		nocts = 4;
	}
	for (i = 0; copy[i] != '\0'; i++)
		if (isdigit((unsigned char)copy[i]))
			digits++;
	{
		int seen[4] = { 0, 0, 0, 0 };
		char scan[256];

		snprintf(scan, sizeof(scan), "%s", copy);
		for (tok = strtok_r(scan, ".-_", &save); tok != NULL;
		    tok = strtok_r(NULL, ".-_", &save)) {
			char word[64];
			size_t wl;
			int w;

			for (i = 0; i < nocts; i++)
				if (!seen[i] && strcmp(tok, octet[i]) == 0) {
					seen[i] = 1;
					hits++;
					break;
				}
			/* "dyn123" counts as "dyn". */
			snprintf(word, sizeof(word), "%s", tok);
			wl = strlen(word);
			while (wl > 0 && isdigit((unsigned char)word[wl - 1]))
				word[--wl] = '\0';
			for (w = 0; words[w] != NULL; w++)
				if (wl > 0 && strcmp(word, words[w]) == 0) {
					snprintf(buf, buflen, "has \"%s\" in it",
					    tok);
					return buf;
				}
		}
	}
	if (hits >= 3) {
		snprintf(buf, buflen, "has the address in it");
		return buf;
	}
	if (digits > 4) {
		snprintf(buf, buflen, "has %d digits in the host part",
		    digits);
		return buf;
	}
	return NULL;
}

/* ---- receiver's view: the daemon's own checks --------------------------- */

/*
 * One read-only transaction as a receiver running mailwarden with this
 * configuration sees it: connect from ip, HELO, MAIL FROM postmaster@
 * the domain, RCPT (an exempt address, so nothing is refused or
 * greylisted), then RSET.
 */
struct rview {
	int		 ran;
	int		 trusted;
	int		 spf_done;
	enum mw_auth_result spf;
	char		*authres;
	struct mw_buf	 notes;		/* "module\ttext\n" evidence */
};

static void
receiver_view(struct mw_ctx *ctx, const char *ip, const char *helo,
    const char *domain, struct rview *rv)
{
	struct mw_session *s;
	const struct mw_note *nv;
	char from[300];
	size_t i, n;

	memset(rv, 0, sizeof(*rv));
	rv->notes.max = 64 * 1024;
	if ((s = mw_session_new(ctx)) == NULL)
		return;
	mw_session_set_explain(s, 1);
	mw_session_set_read_only(s, 1);
	snprintf(from, sizeof(from), "<postmaster@%s>", domain);
	mw_session_connect(s, ip, NULL, 25);
	rv->trusted = mw_session_skips_inbound(s);
	if (helo != NULL)
		mw_session_helo(s, helo);
	mw_session_mail(s, from, NULL, 0);
	rv->spf_done = mw_session_results(s)->spf_done;
	rv->spf = mw_session_results(s)->spf;
	mw_session_rcpt(s, from, NULL, 0);
	mw_session_abort(s);
	if (mw_session_authres(s) != NULL)
		rv->authres = strdup(mw_session_authres(s));
	n = mw_session_notes(s, &nv);
	for (i = 0; i < n; i++)
		if (nv[i].kind == MW_NOTE_EVIDENCE)
			mw_buf_printf(&rv->notes, "%s\t%s\n", nv[i].module,
			    nv[i].text);
	mw_session_free(s);
	rv->ran = 1;
}

static void
rview_free(struct rview *rv)
{
	free(rv->authres);
	mw_buf_free(&rv->notes);
}

/* The evidence a module noted, as detail lines. */
static void
detail_notes(struct mwc_report *r, const struct rview *rv, const char *module)
{
	const char *p = mw_buf_str(&rv->notes), *tab, *nl;
	size_t ml = strlen(module);

	while (*p != '\0' && (tab = strchr(p, '\t')) != NULL &&
	    (nl = strchr(tab, '\n')) != NULL) {
		if ((size_t)(tab - p) == ml && strncmp(p, module, ml) == 0)
			mwc_detail(r, "%s: %.*s", module, (int)(nl - tab - 1),
			    tab + 1);
		p = nl + 1;
	}
}

struct find_ri {
	const char		*method;
	const char		*ptype, *prop;	/* must have, or NULL */
	struct mwc_resinfo	 ri;
	int			 found;
};

static void
find_cb(void *arg, const struct mwc_resinfo *ri)
{
	struct find_ri *f = arg;

	if (f->found || strcmp(ri->method, f->method) != 0)
		return;
	if (f->ptype != NULL && mwc_resinfo_prop(ri, f->ptype, f->prop) ==
	    NULL)
		return;
	f->ri = *ri;
	f->found = 1;
}

/* ---- self-check state --------------------------------------------------- */

struct self {
	const struct mwc_opts	*o;
	struct mw_ctx		*ctx;
	const struct mw_config	*cfg;
	struct mw_dns_batch	*b;
	struct mwc_report	 r;
	char			 ptr_names[MAX_NAMES][256];
	int			 n_ptr;
	char			 mx_host[256];	/* first MX with an address */
	char			 mx_addr[64];
	struct rview		 rv;		/* with --ip */
};

/* ---- Reverse DNS -------------------------------------------------------- */

static void
check_ptr(struct self *sc)
{
	const struct mwc_opts *o = sc->o;
	struct mwc_report *r = &sc->r;
	const struct mw_dns_answer *a, *f[MAX_NAMES];
	struct mw_dns_query *q[MAX_NAMES];
	char rev[128], title[128], why[128], addrs[512];
	int i, fam, type, confirmed = -1;
	uint8_t tmp[16];

	snprintf(title, sizeof(title), "Reverse DNS of %s", o->ip ? o->ip :
	    "the sending IP");
	mwc_section(r, title);
	if (o->ip == NULL) {
		mwc_item(r, MWC_SKIP, "ptr", "run again with --ip and the "
		    "address your mail leaves from", "no --ip given");
		return;
	}
	mw_ip_parse(o->ip, &fam, tmp);
	type = fam == AF_INET6 ? MW_DNS_AAAA : MW_DNS_A;
	if (mw_dns_reverse(o->ip, NULL, rev, sizeof(rev)) == -1)
		return;
	a = mw_dns_lookup(sc->b, rev, MW_DNS_PTR);
	if (missing(a)) {
		mwc_item(r, MWC_FAIL, "ptr", "ask whoever runs the address "
		    "(hosting or access provider) to set its PTR to your "
		    "mail server's name", "%s has no PTR record: big "
		    "receivers refuse mail from it", o->ip);
		detail_answer(r, a);
		return;
	}
	if (a->status != MW_DNS_OK) {
		mwc_item(r, MWC_WARN, "ptr", "check the DNS servers of the "
		    "reverse zone, then run this again", "the PTR lookup "
		    "failed: %s", why_failed(a));
		detail_answer(r, a);
		return;
	}
	sc->n_ptr = a->nrr < MAX_NAMES ? a->nrr : MAX_NAMES;
	for (i = 0; i < sc->n_ptr; i++)
		snprintf(sc->ptr_names[i], sizeof(sc->ptr_names[i]), "%s",
		    a->rr[i].text);
	if (a->nrr > 1) {
		mwc_item(r, MWC_WARN, "ptr", "keep one PTR record, the name "
		    "your server says in HELO", "%s has %d PTR names; "
		    "receivers look at one", o->ip, a->nrr);
	} else
		mwc_item(r, MWC_PASS, "ptr", NULL, "%s has a PTR record: %s",
		    o->ip, sc->ptr_names[0]);
	detail_answer(r, a);

	/* Forward-confirmed: a PTR name that resolves back to the IP. */
	for (i = 0; i < sc->n_ptr; i++)
		q[i] = mw_dns_submit(sc->b, sc->ptr_names[i], type);
	for (i = 0; i < sc->n_ptr; i++) {
		f[i] = mw_dns_wait(sc->b, q[i]);
		if (confirmed < 0 && answer_has_ip(f[i], o->ip))
			confirmed = i;
	}
	if (confirmed >= 0) {
		mwc_item(r, MWC_PASS, "fcrdns", NULL, "%s resolves back to %s "
		    "(forward-confirmed reverse DNS)",
		    sc->ptr_names[confirmed], o->ip);
		detail_answer(r, f[confirmed]);
	} else if (f[0]->status == MW_DNS_TEMPFAIL) {
		mwc_item(r, MWC_WARN, "fcrdns", "check the DNS servers of the "
		    "name, then run this again", "looking up %s failed: %s",
		    sc->ptr_names[0], why_failed(f[0]));
		detail_answer(r, f[0]);
	} else {
		char fix[600];

		snprintf(fix, sizeof(fix), "add an %s record %s -> %s, or "
		    "point the PTR at a name that has one",
		    type == MW_DNS_A ? "A" : "AAAA", sc->ptr_names[0], o->ip);
		addresses(f[0], addrs, sizeof(addrs));
		if (missing(f[0]))
			mwc_item(r, MWC_FAIL, "fcrdns", fix, "the PTR name %s "
			    "does not resolve (no %s record): the reverse DNS "
			    "is not forward-confirmed",
			    sc->ptr_names[0], mw_dns_type_name(type));
		else
			mwc_item(r, MWC_FAIL, "fcrdns", fix, "the PTR name %s "
			    "resolves to %s, not to %s: the reverse DNS is "
			    "not forward-confirmed", sc->ptr_names[0], addrs,
			    o->ip);
		for (i = 0; i < sc->n_ptr; i++)
			detail_answer(r, f[i]);
	}
	if (generic_reason(sc->ptr_names[0], o->ip, why, sizeof(why)) !=
	    NULL)
		mwc_item(r, MWC_WARN, "ptr-generic", "ask for a PTR with your "
		    "own server name (mail.your-domain): receivers score "
		    "generic names as end-user machines", "the PTR name %s "
		    "looks generic: it %s", sc->ptr_names[0], why);
	else
		mwc_item(r, MWC_PASS, "ptr-generic", NULL, "the PTR name looks "
		    "like a server's own name, not a generic one");
}

/* ---- HELO --------------------------------------------------------------- */

static void
check_helo(struct self *sc)
{
	const struct mwc_opts *o = sc->o;
	struct mwc_report *r = &sc->r;
	const struct mw_dns_answer *a4, *a6;
	struct mw_dns_query *q4, *q6;
	const char *why;
	char title[320], buf[128], addrs[512], fix[600];
	int i, same = 0;

	snprintf(title, sizeof(title), "HELO name%s%s", o->helo ? " " : "",
	    o->helo ? o->helo : "");
	mwc_section(r, title);
	if (o->helo == NULL) {
		if (sc->n_ptr > 0)
			snprintf(fix, sizeof(fix), "run again with --helo and "
			    "the name your server says in EHLO (best: its "
			    "PTR name, %s)", sc->ptr_names[0]);
		else
			snprintf(fix, sizeof(fix), "run again with --helo and "
			    "the name your server says in EHLO (Postfix: "
			    "smtp_helo_name)");
		mwc_item(r, MWC_SKIP, "helo", fix, "no --helo given");
		return;
	}
	if ((why = not_fqdn_reason(o->helo)) != NULL) {
		mwc_item(r, MWC_FAIL, "helo-fqdn", "make the server say its "
		    "fully-qualified name, e.g. mail.your-domain (Postfix: "
		    "smtp_helo_name, default myhostname)", "%s %s", o->helo,
		    why);
		return;
	}
	mwc_item(r, MWC_PASS, "helo-fqdn", NULL, "%s is a fully-qualified "
	    "host name", o->helo);
	q4 = mw_dns_submit(sc->b, o->helo, MW_DNS_A);
	q6 = mw_dns_submit(sc->b, o->helo, MW_DNS_AAAA);
	a4 = mw_dns_wait(sc->b, q4);
	a6 = mw_dns_wait(sc->b, q6);
	snprintf(fix, sizeof(fix), "add an A record %s -> %s", o->helo,
	    o->ip != NULL ? o->ip : "your server's address");
	if (a4->status == MW_DNS_TEMPFAIL || a6->status == MW_DNS_TEMPFAIL) {
		mwc_item(r, MWC_WARN, "helo-resolves", "check the DNS servers "
		    "of the name, then run this again", "looking up %s "
		    "failed: %s", o->helo, why_failed(a4->status ==
		    MW_DNS_TEMPFAIL ? a4 : a6));
	} else if (a4->status != MW_DNS_OK && a6->status != MW_DNS_OK) {
		mwc_item(r, MWC_FAIL, "helo-resolves", fix, "%s does not "
		    "resolve (no A or AAAA record)", o->helo);
	} else if (o->ip == NULL) {
		mwc_item(r, MWC_PASS, "helo-resolves", NULL, "%s resolves",
		    o->helo);
	} else if (answer_has_ip(a4, o->ip) || answer_has_ip(a6, o->ip)) {
		mwc_item(r, MWC_PASS, "helo-resolves", NULL, "%s resolves to "
		    "%s", o->helo, o->ip);
	} else {
		addresses(a4->status == MW_DNS_OK ? a4 : a6, addrs,
		    sizeof(addrs));
		mwc_item(r, MWC_WARN, "helo-resolves", fix, "%s resolves to "
		    "%s, not to %s", o->helo, addrs, o->ip);
	}
	detail_answer(r, a4);
	detail_answer(r, a6);
	if (o->ip != NULL && sc->n_ptr > 0) {
		for (i = 0; i < sc->n_ptr; i++)
			if (strcasecmp(sc->ptr_names[i], o->helo) == 0)
				same = 1;
		snprintf(fix, sizeof(fix), "use one name for both: set the PTR "
		    "of %s to %s, or say HELO %s (Postfix: smtp_helo_name)",
		    o->ip, o->helo, sc->ptr_names[0]);
		if (same)
			mwc_item(r, MWC_PASS, "helo-ptr", NULL, "%s is the PTR "
			    "name of %s", o->helo, o->ip);
		else
			mwc_item(r, MWC_WARN, "helo-ptr", fix, "%s is not the "
			    "PTR name of %s (%s)", o->helo, o->ip,
			    sc->ptr_names[0]);
	}
	if (generic_reason(o->helo, o->ip, buf, sizeof(buf)) != NULL)
		mwc_item(r, MWC_WARN, "helo-generic", "say HELO with your "
		    "server's own name (mail.your-domain), not a generic one",
		    "%s looks generic: it %s", o->helo, buf);
	else
		mwc_item(r, MWC_PASS, "helo-generic", NULL, "%s does not look "
		    "like a dynamic or generic name", o->helo);
}

/* ---- MX ----------------------------------------------------------------- */

static int
mx_cmp(const void *va, const void *vb)
{
	const struct mw_dns_rr *a = *(const struct mw_dns_rr *const *)va;
	const struct mw_dns_rr *b = *(const struct mw_dns_rr *const *)vb;

	if (a->pref != b->pref)
		return a->pref < b->pref ? -1 : 1;
	return strcasecmp(a->text, b->text);
}

static void
check_mx(struct self *sc)
{
	const struct mwc_opts *o = sc->o;
	struct mwc_report *r = &sc->r;
	const struct mw_dns_answer *a, *c, *h4, *h6;
	const struct mw_dns_rr *rr[MAX_NAMES];
	struct mw_dns_query *qc[MAX_NAMES], *q4[MAX_NAMES], *q6[MAX_NAMES];
	char fix[600], list[1024], addrs[512];
	uint8_t tmp[16];
	int i, n, fam;
	size_t l = 0;

	mwc_section(r, "MX");
	a = mw_dns_lookup(sc->b, o->domain, MW_DNS_MX);
	snprintf(fix, sizeof(fix), "publish one: %s. MX 10 mail.%s.",
	    o->domain, o->domain);
	if (a->status == MW_DNS_NXDOMAIN) {
		mwc_item(r, MWC_FAIL, "mx", "register the domain, or check "
		    "its spelling", "%s does not exist in the DNS", o->domain);
		detail_answer(r, a);
		return;
	}
	if (a->status == MW_DNS_NODATA) {
		mwc_item(r, MWC_FAIL, "mx", fix, "%s has no MX record: "
		    "replies and bounces cannot reach it, and receivers "
		    "distrust such senders", o->domain);
		detail_answer(r, a);
		return;
	}
	if (a->status != MW_DNS_OK) {
		mwc_item(r, MWC_WARN, "mx", "check the domain's DNS servers, "
		    "then run this again", "the MX lookup failed: %s",
		    why_failed(a));
		detail_answer(r, a);
		return;
	}
	/* RFC 7505 null MX: "MX 0 ." */
	if (a->nrr == 1 && (a->rr[0].text[0] == '\0' ||
	    strcmp(a->rr[0].text, ".") == 0)) {
		mwc_item(r, MWC_FAIL, "mx", "if the domain sends mail, replace "
		    "the null MX with a real one", "%s has a null MX (RFC "
		    "7505): it takes no mail, and receivers refuse mail from "
		    "it", o->domain);
		detail_answer(r, a);
		return;
	}
	n = a->nrr < MAX_NAMES ? a->nrr : MAX_NAMES;
	for (i = 0; i < n; i++)
		rr[i] = &a->rr[i];
	qsort(rr, (size_t)n, sizeof(rr[0]), mx_cmp);
	list[0] = '\0';
	for (i = 0; i < n && l < sizeof(list); i++)
		l += (size_t)snprintf(list + l, sizeof(list) - l, "%s%d %s",
		    i ? ", " : "", rr[i]->pref, rr[i]->text);
	mwc_item(r, MWC_PASS, "mx", NULL, "%s has MX: %s", o->domain, list);
	for (i = 0; i < n; i++) {
		qc[i] = mw_dns_submit(sc->b, rr[i]->text, MW_DNS_CNAME);
		q4[i] = mw_dns_submit(sc->b, rr[i]->text, MW_DNS_A);
		q6[i] = mw_dns_submit(sc->b, rr[i]->text, MW_DNS_AAAA);
	}
	for (i = 0; i < n; i++) {
		const char *host = rr[i]->text;

		c = mw_dns_wait(sc->b, qc[i]);
		h4 = mw_dns_wait(sc->b, q4[i]);
		h6 = mw_dns_wait(sc->b, q6[i]);
		if (mw_ip_parse(host, &fam, tmp) == 0) {
			snprintf(fix, sizeof(fix), "point the MX at a host "
			    "name, e.g. mail.%s, with an A record %s",
			    o->domain, host);
			mwc_item(r, MWC_FAIL, "mx-host", fix, "the MX %s is an "
			    "address, not a host name (RFC 5321 section 5.1)",
			    host);
			continue;
		}
		if (c->status == MW_DNS_OK && c->nrr > 0) {
			snprintf(fix, sizeof(fix), "point the MX at the "
			    "canonical name %s", c->rr[0].text);
			mwc_item(r, MWC_FAIL, "mx-host", fix, "the MX %s is an "
			    "alias (CNAME to %s): not allowed (RFC 2181 "
			    "section 10.3)", host, c->rr[0].text);
			detail_answer(r, c);
			continue;
		}
		if (h4->status == MW_DNS_OK || h6->status == MW_DNS_OK) {
			const struct mw_dns_answer *h = h4->status ==
			    MW_DNS_OK ? h4 : h6;

			addresses(h, addrs, sizeof(addrs));
			mwc_item(r, MWC_PASS, "mx-host", NULL, "the MX %s has "
			    "an address: %s", host, addrs);
			if (sc->mx_host[0] == '\0') {
				snprintf(sc->mx_host, sizeof(sc->mx_host), "%s",
				    host);
				snprintf(sc->mx_addr, sizeof(sc->mx_addr), "%s",
				    h->rr[0].text);
			}
		} else if (h4->status == MW_DNS_TEMPFAIL ||
		    h6->status == MW_DNS_TEMPFAIL) {
			mwc_item(r, MWC_WARN, "mx-host", "check the DNS "
			    "servers of the name, then run this again",
			    "looking up the MX %s failed: %s", host,
			    why_failed(h4->status == MW_DNS_TEMPFAIL ? h4 :
			    h6));
		} else {
			snprintf(fix, sizeof(fix), "add an A record for %s",
			    host);
			mwc_item(r, MWC_FAIL, "mx-host", fix, "the MX %s has no "
			    "A or AAAA record", host);
		}
		detail_answer(r, h4);
		detail_answer(r, h6);
	}
}

/* ---- SPF ---------------------------------------------------------------- */

struct spf_walk {
	struct self	*sc;
	int		 type;		/* A or AAAA, by the IP's family */
	int		 lookups;	/* terms that cost a DNS lookup */
	int		 voids;		/* of those, answered "no such data" */
	int		 queries;	/* safety bound */
	int		 ptr;
	int		 macros;
	char		 top_all;	/* qualifier of the policy's "all" */
	struct mw_buf	 tree;		/* one line per lookup */
	struct mw_buf	 problems;
};

/* The SPF records among a TXT answer; *rec the first. */
static int
spf_records(const struct mw_dns_answer *a, const char **rec)
{
	int i, n = 0;

	*rec = NULL;
	if (a->status != MW_DNS_OK)
		return 0;
	for (i = 0; i < a->nrr; i++) {
		const char *t = txt(&a->rr[i]);

		if (strncasecmp(t, "v=spf1", 6) == 0 && (t[6] == '\0' ||
		    t[6] == ' ')) {
			if (n++ == 0)
				*rec = t;
		}
	}
	return n;
}

static void
walk_line(struct spf_walk *w, int depth, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
walk_line(struct spf_walk *w, int depth, const char *fmt, ...)
{
	char line[600];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	mw_buf_printf(&w->tree, "%*s%d. %s\n", depth * 2, "", w->lookups,
	    line);
}

static void
walk_problem(struct spf_walk *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
walk_problem(struct spf_walk *w, const char *fmt, ...)
{
	char line[600];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	mw_buf_printf(&w->problems, "%s\n", line);
}

/* One query of the walk; NULL when over the safety bound. */
static const struct mw_dns_answer *
walk_query(struct spf_walk *w, const char *name, int type)
{
	if (w->queries++ >= SPF_MAX_QUERIES)
		return NULL;
	return mw_dns_lookup(w->sc->b, name, type);
}

static const char *
answer_word(const struct mw_dns_answer *a)
{
	switch (a->status) {
	case MW_DNS_OK: return "found";
	case MW_DNS_NXDOMAIN: return "no such name: a void lookup";
	case MW_DNS_NODATA: return "no record: a void lookup";
	case MW_DNS_TEMPFAIL: return "lookup failed";
	default: return "bad answer";
	}
}

static void walk_record(struct spf_walk *, const char *, const char *, int,
    int);

/* include: or redirect=: fetch the target's record and walk it. */
static void
walk_target(struct spf_walk *w, const char *how, const char *target,
    int depth, int top)
{
	const struct mw_dns_answer *a;
	const char *rec;
	int n;

	w->lookups++;
	if (strchr(target, '%') != NULL) {
		w->macros++;
		walk_line(w, depth, "%s%s (macros: not followed)", how,
		    target);
		return;
	}
	if ((a = walk_query(w, target, MW_DNS_TXT)) == NULL)
		return;
	if (missing(a))
		w->voids++;
	n = spf_records(a, &rec);
	walk_line(w, depth, "%s%s: %s", how, target, n == 1 ? rec :
	    a->status == MW_DNS_OK || missing(a) ? "no SPF record" :
	    answer_word(a));
	if (n == 0 && a->status != MW_DNS_TEMPFAIL)
		walk_problem(w, "%s%s has no SPF record (permerror)", how,
		    target);
	else if (n > 1)
		walk_problem(w, "%s%s has %d SPF records (permerror)", how,
		    target, n);
	else if (n == 1) {
		if (depth >= SPF_MAX_DEPTH)
			walk_problem(w, "nesting deeper than %d: not followed",
			    SPF_MAX_DEPTH);
		else
			walk_record(w, target, rec, depth + 1, top);
	}
}

/* a, mx, exists: the lookup and its void-ness. */
static void
walk_host(struct spf_walk *w, const char *mech, const char *target,
    int type, int depth)
{
	const struct mw_dns_answer *a, *h;
	int i, n;

	w->lookups++;
	if (strchr(target, '%') != NULL) {
		w->macros++;
		walk_line(w, depth, "%s:%s (macros: not followed)", mech,
		    target);
		return;
	}
	if ((a = walk_query(w, target, type)) == NULL)
		return;
	walk_line(w, depth, "%s:%s: %s", mech, target, answer_word(a));
	if (missing(a))
		w->voids++;
	if (type != MW_DNS_MX || a->status != MW_DNS_OK)
		return;
	/* RFC 7208 section 4.6.4: at most 10 MX names get address lookups. */
	n = a->nrr;
	if (n > 10)
		walk_problem(w, "mx:%s has %d MX names; more than 10 is a "
		    "permerror", target, n);
	for (i = 0; i < n && i < 10; i++)
		if ((h = walk_query(w, a->rr[i].text, w->type)) != NULL &&
		    missing(h))
			walk_problem(w, "mx:%s: the MX %s has no address",
			    target, a->rr[i].text);
}

/*
 * Walk one record: count the terms that need DNS (RFC 7208 section
 * 4.6.4), follow include: and redirect=.  `top` is set for the record
 * that decides the policy ("all" counts there).
 */
static void
walk_record(struct spf_walk *w, const char *domain, const char *record,
    int depth, int top)
{
	char copy[2048], *tok, *save, *redirect = NULL;
	int has_all = 0;

	snprintf(copy, sizeof(copy), "%s", record);
	tok = strtok_r(copy, " ", &save);	/* v=spf1 */
	while ((tok = strtok_r(NULL, " ", &save)) != NULL) {
		char q = '+', *name = tok, *arg = NULL, *p;
		size_t nl;

		if (strchr("+-~?", *name) != NULL) {
			q = *name;
			name++;
		}
		nl = strcspn(name, ":/=");
		if (name[nl] == '=') {
			name[nl] = '\0';
			if (strcasecmp(name, "redirect") == 0)
				redirect = name + nl + 1;
			continue;	/* exp= and unknown modifiers */
		}
		if (name[nl] == ':')
			arg = name + nl + 1;
		name[nl] = '\0';
		/* Drop a CIDR length from the target of a and mx. */
		if (arg != NULL && (p = strchr(arg, '/')) != NULL)
			*p = '\0';
		if (strcasecmp(name, "all") == 0) {
			has_all = 1;
			if (top && w->top_all == '\0')
				w->top_all = q;
		} else if (strcasecmp(name, "include") == 0) {
			if (arg == NULL || *arg == '\0')
				walk_problem(w, "include without a domain "
				    "(permerror)");
			else
				walk_target(w, "include:", arg, depth, 0);
		} else if (strcasecmp(name, "a") == 0) {
			walk_host(w, "a", arg && *arg ? arg : domain, w->type,
			    depth);
		} else if (strcasecmp(name, "mx") == 0) {
			walk_host(w, "mx", arg && *arg ? arg : domain,
			    MW_DNS_MX, depth);
		} else if (strcasecmp(name, "exists") == 0) {
			if (arg == NULL || *arg == '\0')
				walk_problem(w, "exists without a domain "
				    "(permerror)");
			else
				walk_host(w, "exists", arg, MW_DNS_A, depth);
		} else if (strcasecmp(name, "ptr") == 0) {
			w->lookups++;
			w->ptr++;
			walk_line(w, depth, "ptr%s%s", arg ? ":" : "",
			    arg ? arg : "");
		} else if (strcasecmp(name, "ip4") != 0 &&
		    strcasecmp(name, "ip6") != 0) {
			walk_problem(w, "unknown mechanism \"%s\" in the record "
			    "of %s (permerror)", name, domain);
		}
	}
	/* redirect= is ignored when the record has an "all". */
	if (redirect != NULL && !has_all)
		walk_target(w, "redirect=", redirect, depth, top);
}

/* The domain's one SPF record into *rec; -1 (reported) if not exactly one. */
static int
spf_fetch(struct self *sc, const char **rec)
{
	const struct mwc_opts *o = sc->o;
	struct mwc_report *r = &sc->r;
	const struct mw_dns_answer *a;
	char fix[600];
	int n;

	a = mw_dns_lookup(sc->b, o->domain, MW_DNS_TXT);
	n = spf_records(a, rec);
	snprintf(fix, sizeof(fix), "publish one: %s. TXT \"v=spf1 %s%s%s"
	    "-all\"", o->domain, o->ip ? (strchr(o->ip, ':') ? "ip6:" :
	    "ip4:") : "mx", o->ip ? o->ip : "", o->ip ? " mx " : " ");
	if (a->status == MW_DNS_TEMPFAIL || a->status == MW_DNS_PERMFAIL) {
		mwc_item(r, MWC_WARN, "spf", "check the domain's DNS servers, "
		    "then run this again", "the TXT lookup failed: %s",
		    why_failed(a));
		detail_answer(r, a);
		return -1;
	}
	if (n == 0) {
		mwc_item(r, MWC_FAIL, "spf", fix, "%s has no SPF record: "
		    "receivers cannot tell your servers from forgers",
		    o->domain);
		detail_answer(r, a);
		return -1;
	}
	if (n > 1) {
		mwc_item(r, MWC_FAIL, "spf", "merge them into one TXT record",
		    "%s has %d SPF records; exactly one is allowed (RFC 7208 "
		    "section 4.5: permerror)", o->domain, n);
		detail_answer(r, a);
		return -1;
	}
	mwc_item(r, MWC_PASS, "spf", NULL, "SPF record: \"%s\"", *rec);
	return 0;
}

/* Does the daemon's SPF check evaluate the record without error? */
static void
spf_valid_item(struct self *sc, const struct rview *rv,
    const struct find_ri *f, int *notes_shown)
{
	const struct mwc_opts *o = sc->o;
	struct mwc_report *r = &sc->r;

	if (!rv->spf_done) {
		if (rv->trusted)
			mwc_item(r, MWC_SKIP, "spf-valid", "run it from "
			    "elsewhere, or with a configuration that does not "
			    "trust the address", "%s is in trusted_networks "
			    "of the configuration: the SPF check is skipped",
			    o->ip);
		else
			mwc_item(r, MWC_WARN, "spf-valid", "enable [spf] in "
			    "the configuration (or give -c with one that "
			    "does)", "mailwarden's SPF check did not run, so "
			    "the record could not be evaluated");
	} else if (rv->spf == MW_AUTH_PERMERROR) {
		mwc_item(r, MWC_FAIL, "spf-valid", "fix the record: see the "
		    "error; includes must exist, at most 10 DNS lookups",
		    "the record is invalid: receivers get spf=permerror%s%s%s",
		    f->found && f->ri.comment[0] ? " (" : "",
		    f->found ? f->ri.comment : "", f->found &&
		    f->ri.comment[0] ? ")" : "");
		if (!(*notes_shown)++)	/* the evidence once */
			detail_notes(r, rv, "spf");
	} else if (rv->spf == MW_AUTH_TEMPERROR) {
		mwc_item(r, MWC_WARN, "spf-valid", "check the DNS servers of "
		    "the domains the record names, then run this again",
		    "evaluating the record failed for now (spf=temperror%s%s)",
		    f->found && f->ri.comment[0] ? ": " : "", f->found ?
		    f->ri.comment : "");
		if (!(*notes_shown)++)	/* the evidence once */
			detail_notes(r, rv, "spf");
	} else
		mwc_item(r, MWC_PASS, "spf-valid", NULL, "the record is valid "
		    "(mailwarden's SPF check evaluates it without error)");
}

/* How the record ends: what mail from other servers gets. */
static void
spf_all_item(struct mwc_report *r, int top_all)
{
	if (top_all == '-')
		mwc_item(r, MWC_PASS, "spf-all", NULL, "it ends in -all: mail "
		    "from other servers fails");
	else if (top_all == '~')
		mwc_item(r, MWC_PASS, "spf-all", NULL, "it ends in ~all: mail "
		    "from other servers soft-fails (-all is stricter)");
	else if (top_all == '?')
		mwc_item(r, MWC_WARN, "spf-all", "end the record with -all (or "
		    "~all)", "it ends in ?all: mail from anywhere is "
		    "\"neutral\", as if there were no record");
	else if (top_all == '+')
		mwc_item(r, MWC_FAIL, "spf-all", "end the record with -all (or "
		    "~all), never +all", "it ends in +all: it authorizes "
		    "every server on the internet");
	else
		mwc_item(r, MWC_WARN, "spf-all", "end the record with -all (or "
		    "~all)", "it has no \"all\" at the end: mail from other "
		    "servers gets \"neutral\"");
}

/* With --ip: does the record authorize that sending address? */
static void
spf_ip_item(struct self *sc, const struct rview *rv, int fam,
    const struct find_ri *f, int *notes_shown)
{
	const struct mwc_opts *o = sc->o;
	struct mwc_report *r = &sc->r;
	char fix[600];

	snprintf(fix, sizeof(fix), "add %s:%s to the record, before the all",
	    fam == AF_INET6 ? "ip6" : "ip4", o->ip);
	switch (rv->spf) {
	case MW_AUTH_PASS:
		mwc_item(r, MWC_PASS, "spf-ip", NULL, "it authorizes %s "
		    "(spf=pass)", o->ip);
		break;
	case MW_AUTH_FAIL:
	case MW_AUTH_SOFTFAIL:
	case MW_AUTH_NEUTRAL:
	case MW_AUTH_NONE:
		mwc_item(r, rv->spf == MW_AUTH_NEUTRAL ? MWC_WARN : MWC_FAIL,
		    "spf-ip", fix, "it does not authorize %s (spf=%s)", o->ip,
		    mw_auth_result_name(rv->spf));
		break;
	default:
		mwc_item(r, MWC_WARN, "spf-ip", "fix the record first",
		    "whether it authorizes %s is unknown (spf=%s)", o->ip,
		    mw_auth_result_name(rv->spf));
		break;
	}
	if (f->found)
		mwc_detail(r, "%s", f->ri.text);
	if (!(*notes_shown)++)	/* the evidence once */
		detail_notes(r, rv, "spf");
}

/* What our own walk of the record counted: lookups, voids, ptr, macros. */
static void
spf_walk_items(struct mwc_report *r, const struct spf_walk *w)
{
	const char *p, *nl;

	if (w->lookups > 10)
		mwc_item(r, MWC_FAIL, "spf-lookups", "flatten includes into "
		    "ip4:/ip6: ranges, drop unused ones", "%d DNS lookups: "
		    "more than 10 is a permerror at every receiver (RFC 7208 "
		    "section 4.6.4)", w->lookups);
	else
		mwc_item(r, MWC_PASS, "spf-lookups", NULL, "%d of at most 10 "
		    "DNS lookups", w->lookups);
	for (p = mw_buf_str(&w->tree); (nl = strchr(p, '\n')) != NULL;
	    p = nl + 1)
		mwc_detail(r, "%.*s", (int)(nl - p), p);
	if (w->voids > 2)
		mwc_item(r, MWC_FAIL, "spf-void", "remove the terms whose names "
		    "do not exist", "%d void lookups (names that do not "
		    "exist): more than 2 is a permerror (RFC 7208 section "
		    "4.6.4)", w->voids);
	else
		mwc_item(r, MWC_PASS, "spf-void", NULL, "%d of at most 2 void "
		    "lookups", w->voids);
	if (w->ptr > 0)
		mwc_item(r, MWC_WARN, "spf-ptr", "replace ptr with ip4:/ip6: "
		    "or a", "it uses the ptr mechanism: slow, and RFC 7208 "
		    "section 5.5 says not to");
	if (w->macros > 0)
		mwc_item(r, MWC_INFO, "spf-macros", NULL, "%d term%s with "
		    "macros: not counted further", w->macros, w->macros == 1 ?
		    "" : "s");
	if (w->problems.len > 0) {
		mwc_item(r, MWC_WARN, "spf-syntax", "fix the terms named below",
		    "problems found walking the record");
		for (p = mw_buf_str(&w->problems); (nl = strchr(p, '\n')) !=
		    NULL; p = nl + 1)
			mwc_detail(r, "%.*s", (int)(nl - p), p);
	}
}

/*
 * The SPF section: the record, our walk of it (lookups, the tree), and
 * the verdict of the daemon's own SPF check as a receiver runs it.
 */
static void
check_spf(struct self *sc)
{
	const struct mwc_opts *o = sc->o;
	const struct rview *rv;
	struct rview nip;
	struct spf_walk w;
	struct find_ri f;
	const char *rec = NULL;
	int fam = AF_INET, notes_shown = 0;
	uint8_t tmp[16];

	mwc_section(&sc->r, "SPF");
	if (spf_fetch(sc, &rec) == -1)
		return;

	/* Our own walk: lookups for the report, never the verdict. */
	memset(&w, 0, sizeof(w));
	w.sc = sc;
	if (o->ip != NULL)
		mw_ip_parse(o->ip, &fam, tmp);
	w.type = fam == AF_INET6 ? MW_DNS_AAAA : MW_DNS_A;
	w.tree.max = w.problems.max = 16 * 1024;
	walk_record(&w, o->domain, rec, 0, 1);

	/* The verdict: the daemon's SPF check, as a receiver runs it. */
	if (o->ip != NULL)
		rv = &sc->rv;
	else {
		/* An address no record names: evaluates the whole record. */
		receiver_view(sc->ctx, "0.0.0.0", o->helo, o->domain, &nip);
		rv = &nip;
	}
	memset(&f, 0, sizeof(f));
	f.method = "spf";
	f.ptype = "smtp";
	f.prop = "mailfrom";
	if (rv->authres != NULL)
		mwc_authres_split(rv->authres, find_cb, &f);
	spf_valid_item(sc, rv, &f, &notes_shown);
	spf_all_item(&sc->r, w.top_all);
	if (o->ip != NULL && rv->spf_done)
		spf_ip_item(sc, rv, fam, &f, &notes_shown);
	spf_walk_items(&sc->r, &w);
	mw_buf_free(&w.tree);
	mw_buf_free(&w.problems);
	if (o->ip == NULL)
		rview_free(&nip);
}

/* ---- DKIM --------------------------------------------------------------- */

struct dkim_tags {
	char	v[32], k[32], h[64], s[64], t[64];
	char	p[4096];
	int	has_p;
	int	too_long;
};

/* Tag=value list (RFC 6376 section 3.2): split and strip white space. */
static void
parse_tags(const char *rec, struct dkim_tags *t)
{
	const char *p = rec;

	memset(t, 0, sizeof(*t));
	while (*p != '\0') {
		const char *end = strchr(p, ';'), *eq;
		char name[16], *dst = NULL;
		size_t dlen = 0, n = 0, o = 0, i;

		if (end == NULL)
			end = p + strlen(p);
		eq = memchr(p, '=', (size_t)(end - p));
		if (eq != NULL) {
			for (i = 0; p + i < eq && n + 1 < sizeof(name); i++)
				if (!isspace((unsigned char)p[i]))
					name[n++] = p[i];
			name[n] = '\0';
			if (strcmp(name, "v") == 0)
				dst = t->v, dlen = sizeof(t->v);
			else if (strcmp(name, "k") == 0)
				dst = t->k, dlen = sizeof(t->k);
			else if (strcmp(name, "h") == 0)
				dst = t->h, dlen = sizeof(t->h);
			else if (strcmp(name, "s") == 0)
				dst = t->s, dlen = sizeof(t->s);
			else if (strcmp(name, "t") == 0)
				dst = t->t, dlen = sizeof(t->t);
			else if (strcmp(name, "p") == 0) {
				dst = t->p, dlen = sizeof(t->p);
				t->has_p = 1;
			}
			for (eq++; dst != NULL && eq < end; eq++) {
				if (isspace((unsigned char)*eq))
					continue;
				if (o + 1 < dlen)
					dst[o++] = *eq;
				else if (dst == t->p)
					t->too_long = 1;
			}
			if (dst != NULL)
				dst[o] = '\0';
		}
		p = *end == ';' ? end + 1 : end;
	}
}

/* Does a colon-separated tag list (h=, s=, t=) hold word? */
static int
tag_has(const char *list, const char *word)
{
	char copy[128], *tok, *save;

	snprintf(copy, sizeof(copy), "%s", list);
	for (tok = strtok_r(copy, ":", &save); tok != NULL;
	    tok = strtok_r(NULL, ":", &save))
		if (strcasecmp(tok, word) == 0)
			return 1;
	return 0;
}

static unsigned char *
b64_decode(const char *in, int *outlen)
{
	size_t n = strlen(in);
	unsigned char *out;
	int len, pad = 0;

	if (n == 0 || n % 4 != 0 || (out = malloc(n)) == NULL)
		return NULL;
	len = EVP_DecodeBlock(out, (const unsigned char *)in, (int)n);
	if (len < 0) {
		free(out);
		return NULL;
	}
	while (n > 0 && in[n - 1] == '=') {
		pad++;
		n--;
	}
	*outlen = len - pad;
	return out;
}

/* The p= value of a key: SubjectPublicKeyInfo for RSA, raw for Ed25519. */
static char *
p_value(EVP_PKEY *pk)
{
	unsigned char *der = NULL, raw[64];
	char *out;
	size_t rawlen = sizeof(raw);
	int len;

	if (EVP_PKEY_get_base_id(pk) == EVP_PKEY_ED25519) {
		if (EVP_PKEY_get_raw_public_key(pk, raw, &rawlen) != 1)
			return NULL;
		der = OPENSSL_memdup(raw, rawlen);
		len = (int)rawlen;
	} else if ((len = i2d_PUBKEY(pk, &der)) <= 0)
		return NULL;
	if (der == NULL || (out = malloc((size_t)len * 2 + 8)) == NULL) {
		OPENSSL_free(der);
		return NULL;
	}
	EVP_EncodeBlock((unsigned char *)out, der, len);
	OPENSSL_free(der);
	return out;
}

static int
no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1;
}

static EVP_PKEY *
load_private_key(const char *path, char *err, size_t errlen)
{
	EVP_PKEY *pk = NULL;
	BIO *bio;

	ERR_clear_error();
	if ((bio = BIO_new_file(path, "r")) == NULL) {
		snprintf(err, errlen, "cannot open it");
		return NULL;
	}
	pk = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
	if (pk == NULL) {
		(void)BIO_reset(bio);
		pk = d2i_PrivateKey_bio(bio, NULL);
	}
	BIO_free(bio);
	if (pk == NULL)
		snprintf(err, errlen, "not a private key OpenSSL can read "
		    "(PEM or DER, without a passphrase)");
	ERR_clear_error();
	return pk;
}

static void
check_dkim_selector(struct self *sc, const char *sel, EVP_PKEY *priv)
{
	const struct mwc_opts *o = sc->o;
	struct mwc_report *r = &sc->r;
	const struct mw_dns_answer *a;
	struct dkim_tags t;
	EVP_PKEY *pub = NULL;
	unsigned char *der = NULL;
	const unsigned char *q;
	char name[512], fix[800], *pv;
	int len = 0, bits, i, nkeys = 0, ki = -1;

	snprintf(name, sizeof(name), "%s._domainkey.%s", sel, o->domain);
	a = mw_dns_lookup(sc->b, name, MW_DNS_TXT);
	snprintf(fix, sizeof(fix), "publish the public key: %s TXT "
	    "\"v=DKIM1; k=rsa; p=...\"", name);
	if (a->status == MW_DNS_TEMPFAIL || a->status == MW_DNS_PERMFAIL) {
		mwc_item(r, MWC_WARN, "dkim-key", "check the domain's DNS "
		    "servers, then run this again", "looking up %s failed: %s",
		    name, why_failed(a));
		detail_answer(r, a);
		return;
	}
	for (i = 0; a->status == MW_DNS_OK && i < a->nrr; i++)
		if (strstr(txt(&a->rr[i]), "p=") != NULL ||
		    strncmp(txt(&a->rr[i]), "v=DKIM1", 7) == 0) {
			nkeys++;
			if (ki < 0)
				ki = i;
		}
	if (nkeys == 0) {
		mwc_item(r, MWC_FAIL, "dkim-key", fix, "no DKIM key at %s: "
		    "signatures with s=%s cannot be verified", name, sel);
		detail_answer(r, a);
		return;
	}
	if (nkeys > 1) {
		mwc_item(r, MWC_FAIL, "dkim-key", "keep one TXT record at the "
		    "name", "%s has %d key records: verifiers may pick either "
		    "(RFC 6376 section 3.6.2.2: undefined)", name, nkeys);
		detail_answer(r, a);
		return;
	}
	parse_tags(txt(&a->rr[ki]), &t);
	if (t.v[0] != '\0' && strcmp(t.v, "DKIM1") != 0) {
		mwc_item(r, MWC_FAIL, "dkim-key", fix, "the record at %s is "
		    "not a DKIM key (v=%s)", name, t.v);
		detail_answer(r, a);
		return;
	}
	if (!t.has_p) {
		mwc_item(r, MWC_FAIL, "dkim-key", fix, "the record at %s has no "
		    "p= tag", name);
		detail_answer(r, a);
		return;
	}
	if (t.p[0] == '\0') {
		mwc_item(r, MWC_FAIL, "dkim-key", "sign with a current key and "
		    "publish it (or another selector)", "the key at %s is "
		    "revoked (empty p=): every signature with it fails", name);
		detail_answer(r, a);
		return;
	}
	if (t.k[0] == '\0' || strcasecmp(t.k, "rsa") == 0) {
		if (!t.too_long && (der = b64_decode(t.p, &len)) != NULL) {
			q = der;
			pub = d2i_PUBKEY(NULL, &q, len);
			if (pub == NULL) {
				/* A bare RSAPublicKey: some tools publish it. */
				q = der;
				pub = d2i_PublicKey(EVP_PKEY_RSA, NULL, &q, len);
			}
		}
		if (pub == NULL || EVP_PKEY_get_base_id(pub) != EVP_PKEY_RSA) {
			mwc_item(r, MWC_FAIL, "dkim-key", fix, "the p= of %s is "
			    "not an RSA public key", name);
			detail_answer(r, a);
			goto out;
		}
		bits = EVP_PKEY_get_bits(pub);
		if (bits < 1024)
			mwc_item(r, MWC_FAIL, "dkim-key", "make a 2048-bit key: "
			    "openssl genpkey -algorithm RSA -pkeyopt "
			    "rsa_keygen_bits:2048", "RSA key of %d bits at %s: "
			    "verifiers ignore keys under 1024 bits (RFC 8301)",
			    bits, name);
		else if (bits < 2048)
			mwc_item(r, MWC_WARN, "dkim-key", "make a 2048-bit key: "
			    "openssl genpkey -algorithm RSA -pkeyopt "
			    "rsa_keygen_bits:2048", "RSA key of %d bits at %s: "
			    "weak; use 2048 bits", bits, name);
		else
			mwc_item(r, MWC_PASS, "dkim-key", NULL, "RSA key of %d "
			    "bits at %s", bits, name);
	} else if (strcasecmp(t.k, "ed25519") == 0) {
		if (!t.too_long && (der = b64_decode(t.p, &len)) != NULL &&
		    len == 32)
			pub = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519,
			    NULL, der, 32);
		if (pub == NULL) {
			mwc_item(r, MWC_FAIL, "dkim-key", fix, "the p= of %s is "
			    "not an Ed25519 public key (32 bytes)", name);
			detail_answer(r, a);
			goto out;
		}
		mwc_item(r, MWC_PASS, "dkim-key", NULL, "Ed25519 key at %s "
		    "(RFC 8463)", name);
		detail_answer(r, a);
		mwc_detail(r, "not every receiver verifies Ed25519 yet: sign "
		    "with an RSA key as well");
		goto options;
	} else {
		mwc_item(r, MWC_FAIL, "dkim-key", fix, "the key at %s has the "
		    "unknown type k=%s", name, t.k);
		detail_answer(r, a);
		goto out;
	}
	detail_answer(r, a);
options:
	if (t.h[0] != '\0' && !tag_has(t.h, "sha256"))
		mwc_item(r, MWC_FAIL, "dkim-hash", "drop h= from the record, or "
		    "put sha256 in it", "h=%s: the key may not be used with "
		    "sha256, the only hash receivers accept (RFC 8301)", t.h);
	if (t.s[0] != '\0' && !tag_has(t.s, "email") && !tag_has(t.s, "*"))
		mwc_item(r, MWC_FAIL, "dkim-service", "drop s= from the record",
		    "s=%s: the key is not for email", t.s);
	if (tag_has(t.t, "y"))
		mwc_item(r, MWC_WARN, "dkim-testing", "remove t=y once your "
		    "signatures verify", "t=y: the key is in testing mode; "
		    "receivers may treat signed mail as unsigned");
	if (priv != NULL) {
		if (EVP_PKEY_eq(pub, priv) == 1)
			mwc_item(r, MWC_PASS, "dkim-private", NULL, "the private "
			    "key %s matches the key at %s", o->key, name);
		else {
			mwc_item(r, MWC_FAIL, "dkim-private", "publish the "
			    "public half of the signing key (below), or sign "
			    "with the key that matches", "the private key %s "
			    "does not match the key at %s: signatures will "
			    "fail", o->key, name);
			if ((pv = p_value(priv)) != NULL) {
				mwc_detail(r, "publish: %s TXT \"v=DKIM1; k=%s; "
				    "p=%s\"", name, EVP_PKEY_get_base_id(priv) ==
				    EVP_PKEY_ED25519 ? "ed25519" : "rsa", pv);
				free(pv);
			}
		}
	}
out:
	EVP_PKEY_free(pub);
	free(der);
}

static void
check_dkim(struct self *sc)
{
	const struct mwc_opts *o = sc->o;
	struct mwc_report *r = &sc->r;
	EVP_PKEY *priv = NULL;
	char err[256];
	int i;

	mwc_section(r, "DKIM");
	if (o->n_selectors == 0) {
		mwc_item(r, MWC_SKIP, "dkim-key", "run again with --selector "
		    "and the s= of your DKIM-Signature header", "no --selector "
		    "given");
		return;
	}
	if (o->key != NULL && (priv = load_private_key(o->key, err,
	    sizeof(err))) == NULL)
		mwc_item(r, MWC_FAIL, "dkim-private", "give the signing key "
		    "file, PEM without a passphrase", "%s: %s", o->key, err);
	for (i = 0; i < o->n_selectors; i++)
		check_dkim_selector(sc, o->selectors[i], priv);
	EVP_PKEY_free(priv);
}

/* ---- DMARC -------------------------------------------------------------- */

static int
dmarc_records(const struct mw_dns_answer *a, const char **rec)
{
	int i, n = 0;

	*rec = NULL;
	if (a->status != MW_DNS_OK)
		return 0;
	for (i = 0; i < a->nrr; i++) {
		const char *t = txt(&a->rr[i]);

		while (*t == ' ' || *t == '\t')
			t++;
		if (strncmp(t, "v=DMARC1", 8) == 0 && (t[8] == '\0' ||
		    t[8] == ';' || t[8] == ' ' || t[8] == '\t')) {
			if (n++ == 0)
				*rec = t;
		}
	}
	return n;
}

static const char *
policy_name(int p)
{
	switch (p) {
	case DMARC_RECORD_P_NONE: return "none";
	case DMARC_RECORD_P_QUARANTINE: return "quarantine";
	case DMARC_RECORD_P_REJECT: return "reject";
	}
	return "unspecified";
}

/* Is d the domain itself or one of its subdomains? */
static int
same_or_sub(const char *d, const char *domain)
{
	size_t n = strlen(d), m = strlen(domain);

	if (strcasecmp(d, domain) == 0)
		return 1;
	return n > m && d[n - m - 1] == '.' && strcasecmp(d + n - m,
	    domain) == 0;
}

/*
 * The organizational domain (the registrable domain) from the Public
 * Suffix List (libpsl: the newest of Debian's publicsuffix file and its
 * built-in copy, loaded once and kept).  1 if found, else 0: no list, or
 * a domain under a suffix the list does not know (".test").
 */
static int
org_domain(const char *domain, char *out, size_t outlen)
{
	static psl_ctx_t *psl;
	const char *r, *tld;

	out[0] = '\0';
	if (psl == NULL && (psl = psl_latest(NULL)) == NULL)
		return 0;
	tld = strrchr(domain, '.');
	if (tld == NULL || !psl_is_public_suffix2(psl, tld + 1,
	    PSL_TYPE_ANY | PSL_TYPE_NO_STAR_RULE))
		return 0;
	if ((r = psl_registrable_domain(psl, domain)) == NULL)
		return 0;
	snprintf(out, outlen, "%s", r);
	return strchr(out, '.') != NULL && same_or_sub(domain, out);
}

static void
check_rua(struct self *sc, const char *dmarc_domain, u_char **list)
{
	const struct mwc_opts *o = sc->o;
	struct mwc_report *r = &sc->r;
	const struct mw_dns_answer *a;
	const char *rec;
	char name[600], fix[1400], org[256] = "", rorg[256];
	int i;

	if (list == NULL || list[0] == NULL) {
		snprintf(fix, sizeof(fix), "add rua=mailto:dmarc-reports@%s to "
		    "the record", dmarc_domain);
		mwc_item(r, MWC_WARN, "dmarc-rua", fix, "no aggregate reports "
		    "(rua=): you will not see who sends mail as %s", o->domain);
		return;
	}
	for (i = 0; list[i] != NULL && i < 8; i++) {
		const char *uri = (const char *)list[i], *at, *dom;
		char rdom[256];
		size_t k;

		mwc_item(r, MWC_PASS, "dmarc-rua", NULL, "aggregate reports go "
		    "to %s", uri);
		if (strncasecmp(uri, "mailto:", 7) != 0 ||
		    (at = strrchr(uri, '@')) == NULL)
			continue;
		dom = at + 1;
		for (k = 0; dom[k] != '\0' && dom[k] != '!' && k + 1 <
		    sizeof(rdom); k++)
			rdom[k] = (char)tolower((unsigned char)dom[k]);
		rdom[k] = '\0';
		/*
		 * Reports to another organization need its consent (RFC 7489
		 * section 7.1): DOMAIN._report._dmarc.THEIRS.
		 */
		if (org[0] == '\0' && !org_domain(dmarc_domain, org,
		    sizeof(org)))
			snprintf(org, sizeof(org), "%s", dmarc_domain);
		if (!org_domain(rdom, rorg, sizeof(rorg)))
			snprintf(rorg, sizeof(rorg), "%s", rdom);
		if (same_or_sub(rdom, dmarc_domain) || strcasecmp(org, rorg) ==
		    0)
			continue;
		snprintf(name, sizeof(name), "%s._report._dmarc.%s",
		    dmarc_domain, rdom);
		a = mw_dns_lookup(sc->b, name, MW_DNS_TXT);
		if (dmarc_records(a, &rec) > 0)
			mwc_detail(r, "%s accepts reports for %s (%s)", rdom,
			    dmarc_domain, name);
		else if (a->status == MW_DNS_TEMPFAIL)
			mwc_item(r, MWC_WARN, "dmarc-rua-auth", "run this "
			    "again", "could not check that %s accepts reports "
			    "for %s: %s", rdom, dmarc_domain, why_failed(a));
		else {
			snprintf(fix, sizeof(fix), "ask %s to publish %s TXT "
			    "\"v=DMARC1\", or send reports to an address in "
			    "%s", rdom, name, dmarc_domain);
			mwc_item(r, MWC_WARN, "dmarc-rua-auth", fix, "%s does "
			    "not say it accepts reports for %s: receivers "
			    "send none there (RFC 7489 section 7.1)", rdom,
			    dmarc_domain);
			detail_answer(r, a);
		}
	}
}

static void
check_dmarc(struct self *sc)
{
	const struct mwc_opts *o = sc->o;
	struct mwc_report *r = &sc->r;
	const struct mw_dns_answer *a;
	DMARC_POLICY_T *pctx;
	OPENDMARC_STATUS_T st;
	const char *rec, *used = o->domain;
	char name[300], org[256], fix[600], copy[2048];
	int n, p = 0, sp = 0, pct = 0;
	u_char **ruf;

	mwc_section(r, "DMARC");
	snprintf(name, sizeof(name), "_dmarc.%s", o->domain);
	a = mw_dns_lookup(sc->b, name, MW_DNS_TXT);
	n = dmarc_records(a, &rec);
	if (n == 0 && missing(a) && org_domain(o->domain, org, sizeof(org)) &&
	    strcasecmp(org, o->domain) != 0) {
		/* A subdomain: the organizational domain's record applies. */
		snprintf(name, sizeof(name), "_dmarc.%s", org);
		a = mw_dns_lookup(sc->b, name, MW_DNS_TXT);
		n = dmarc_records(a, &rec);
		used = org;
	}
	snprintf(fix, sizeof(fix), "publish one: _dmarc.%s. TXT "
	    "\"v=DMARC1; p=none; rua=mailto:dmarc-reports@%s\"", o->domain,
	    o->domain);
	if (a->status == MW_DNS_TEMPFAIL || a->status == MW_DNS_PERMFAIL) {
		mwc_item(r, MWC_WARN, "dmarc", "check the domain's DNS "
		    "servers, then run this again", "looking up %s failed: %s",
		    name, why_failed(a));
		detail_answer(r, a);
		return;
	}
	if (n == 0) {
		mwc_item(r, MWC_FAIL, "dmarc", fix, "no DMARC record at "
		    "_dmarc.%s: Gmail and Yahoo require one from bulk senders",
		    o->domain);
		detail_answer(r, a);
		return;
	}
	if (n > 1) {
		mwc_item(r, MWC_FAIL, "dmarc", "keep one record", "%s has %d "
		    "DMARC records: receivers ignore them all (RFC 7489 "
		    "section 6.6.3)", name, n);
		detail_answer(r, a);
		return;
	}
	if ((pctx = opendmarc_policy_connect_init((u_char *)"0.0.0.0", 0)) ==
	    NULL) {
		mwc_item(r, MWC_WARN, "dmarc", NULL, "out of memory");
		return;
	}
	snprintf(copy, sizeof(copy), "%s", rec);
	st = opendmarc_policy_parse_dmarc(pctx, (u_char *)used,
	    (u_char *)copy);
	if (st != DMARC_PARSE_OKAY) {
		mwc_item(r, MWC_FAIL, "dmarc", "fix the record: v=DMARC1 first, "
		    "then p=none, quarantine or reject", "the DMARC record at "
		    "%s does not parse: %s; receivers ignore it", name,
		    opendmarc_policy_status_to_str(st));
		detail_answer(r, a);
		opendmarc_policy_connect_shutdown(pctx);
		return;
	}
	mwc_item(r, MWC_PASS, "dmarc", NULL, "DMARC record at %s: \"%s\"",
	    name, rec);
	if (used != o->domain)
		mwc_detail(r, "the record of the organizational domain %s "
		    "applies to %s", used, o->domain);
	opendmarc_policy_fetch_p(pctx, &p);
	opendmarc_policy_fetch_sp(pctx, &sp);
	opendmarc_policy_fetch_pct(pctx, &pct);
	if (pct < 0)
		pct = 100;
	if (used != o->domain && sp != DMARC_RECORD_P_UNSPECIFIED)
		p = sp;
	mwc_item(r, MWC_INFO, "dmarc-policy", NULL, "policy %s%s%s%s, "
	    "applied to %d%% of failing mail%s", policy_name(p),
	    sp != DMARC_RECORD_P_UNSPECIFIED ? " (subdomains: " : "",
	    sp != DMARC_RECORD_P_UNSPECIFIED ? policy_name(sp) : "",
	    sp != DMARC_RECORD_P_UNSPECIFIED ? ")" : "", pct,
	    p == DMARC_RECORD_P_NONE ? "; none only monitors: quarantine or "
	    "reject protects the domain from forgers" : "");
	/* constant=1, no buffer: no DNS from the library's resolver. */
	check_rua(sc, used, opendmarc_policy_fetch_rua(pctx, NULL, 0, 1));
	ruf = opendmarc_policy_fetch_ruf(pctx, NULL, 0, 1);
	if (ruf != NULL && ruf[0] != NULL)
		mwc_item(r, MWC_INFO, "dmarc-ruf", NULL, "failure reports go "
		    "to %s%s", (const char *)ruf[0], ruf[1] ? " (and more)" :
		    "");
	opendmarc_policy_connect_shutdown(pctx);
}

/* ---- DNSBL -------------------------------------------------------------- */

struct bl {
	struct self	*sc;
	int		 asked;
};

static void
bl_cb(void *arg, const struct mwc_resinfo *ri)
{
	struct bl *bl = arg;
	struct self *sc = bl->sc;
	struct mwc_report *r = &sc->r;
	const char *zone = mwc_resinfo_prop(ri, "dns", "zone");
	const char *code = mwc_resinfo_prop(ri, "policy", "ip");
	const char *why = mwc_resinfo_prop(ri, "policy", "txt");
	char fix[600];

	if (strcmp(ri->method, "x-dnsbl") == 0) {
		bl->asked = 1;
		if (strcmp(ri->result, "pass") == 0)
			mwc_item(r, MWC_PASS, "dnsbl", NULL, "%s is not listed "
			    "on the configured blocklists", sc->o->ip);
		else if (strcmp(ri->result, "fail") == 0) {
			snprintf(fix, sizeof(fix), "find out why (a hacked "
			    "account or machine sending spam?), fix it, then "
			    "ask %s to delist %s", zone ? zone : "the list",
			    sc->o->ip);
			mwc_item(r, MWC_FAIL, "dnsbl", fix, "%s is listed on "
			    "%s (%s)%s%s", sc->o->ip, zone ? zone : "?",
			    code ? code : "?", why ? ": " : "", why ? why : "");
		} else if (strstr(ri->comment, "127.255.255.") != NULL)
			mwc_item(r, MWC_WARN, "dnsbl", "ask the list through "
			    "your own resolver (unbound on the mail server), "
			    "not a public one, and check the list's terms",
			    "%s refused to answer our resolver (%s): whether "
			    "%s is listed is unknown", zone ? zone : "?",
			    ri->comment, sc->o->ip);
		else
			mwc_item(r, MWC_WARN, "dnsbl", "check [dns] nameservers "
			    "and the zone name, then run this again",
			    "asking %s failed (%s): whether %s is listed is "
			    "unknown", zone ? zone : "?", ri->comment,
			    sc->o->ip);
	} else if (strcmp(ri->method, "dnswl") == 0) {
		bl->asked = 1;
		if (strcmp(ri->result, "pass") == 0)
			mwc_item(r, MWC_INFO, "dnswl", NULL, "%s is on the "
			    "allowlist %s (%s)", sc->o->ip, zone ? zone : "?",
			    code ? code : "?");
		else if (strcmp(ri->result, "temperror") == 0)
			mwc_item(r, MWC_INFO, "dnswl", NULL, "asking the "
			    "allowlist %s failed (%s)", zone ? zone : "?",
			    ri->comment);
	}
}

static void
check_dnsbl(struct self *sc)
{
	struct mwc_report *r = &sc->r;
	struct bl bl = { sc, 0 };

	mwc_section(r, "DNS blocklists");
	if (sc->o->ip == NULL) {
		mwc_item(r, MWC_SKIP, "dnsbl", "run again with --ip", "no --ip "
		    "given");
		return;
	}
	if (sc->rv.trusted) {
		mwc_item(r, MWC_SKIP, "dnsbl", "run it from elsewhere, or with "
		    "a configuration that does not trust the address", "%s is "
		    "in trusted_networks of the configuration: not looked up",
		    sc->o->ip);
		return;
	}
	if (sc->rv.authres != NULL)
		mwc_authres_split(sc->rv.authres, bl_cb, &bl);
	if (!bl.asked)
		mwc_item(r, MWC_SKIP, "dnsbl", "add [dnsbl] zone = lines to the "
		    "configuration (the lists receivers use: Spamhaus ZEN, "
		    "...)", "no DNSBL zones in the configuration (%s)",
		    sc->o->config);
	else
		detail_notes(r, &sc->rv, "dnsbl");
}

/* ---- output ------------------------------------------------------------- */

static void
count(const struct mwc_report *r, int n[5])
{
	int i, j;

	memset(n, 0, 5 * sizeof(int));
	for (i = 0; i < r->nsec; i++)
		for (j = 0; j < r->sec[i]->n; j++)
			n[r->sec[i]->items[j].st]++;
}

static int
exit_code(const int n[5])
{
	return n[MWC_FAIL] > 0 ? MWC_EXIT_FAIL : n[MWC_WARN] > 0 ?
	    MWC_EXIT_WARN : 0;
}

static void
print_text(struct self *sc)
{
	const struct mwc_opts *o = sc->o;
	const struct mwc_report *r = &sc->r;
	FILE *fp = stdout;
	int i, j, k, n[5], rc;
	char up[8];

	fprintf(fp, "%smailwarden-check%s: self-check of %s", mwc_c_bold(o),
	    mwc_c_off(o), o->domain);
	if (o->ip != NULL)
		fprintf(fp, ", sending from %s", o->ip);
	fprintf(fp, " (config %s)\n", o->config);
	for (i = 0; i < r->nsec; i++) {
		const struct section *s = r->sec[i];

		fprintf(fp, "\n%s", mwc_c_bold(o));
		mwc_print_safe(fp, s->title);
		fprintf(fp, "%s\n", mwc_c_off(o));
		for (j = 0; j < s->n; j++) {
			const struct item *it = &s->items[j];

			for (k = 0; k < 4; k++)
				up[k] = (char)toupper((unsigned char)
				    mwc_status_name(it->st)[k]);
			up[4] = '\0';
			fprintf(fp, "  %s%s%s  ", mwc_c_status(o, it->st), up,
			    mwc_c_off(o));
			mwc_print_safe(fp, it->text);
			fputc('\n', fp);
			for (k = 0; k < it->nd; k++) {
				fprintf(fp, "        %s", mwc_c_dim(o));
				mwc_print_safe(fp, it->details[k]);
				fprintf(fp, "%s\n", mwc_c_off(o));
			}
			if (it->more > 0)
				fprintf(fp, "        (%d more)\n", it->more);
			if (it->fix != NULL && it->st != MWC_PASS &&
			    it->st != MWC_INFO) {
				fprintf(fp, "        %sfix:%s ",
				    mwc_c_status(o, it->st), mwc_c_off(o));
				mwc_print_safe(fp, it->fix);
				fputc('\n', fp);
			}
		}
	}
	count(r, n);
	rc = exit_code(n);
	fprintf(fp, "\nSummary: %d pass, %d warn, %d fail, %d info, %d "
	    "skipped\n", n[MWC_PASS], n[MWC_WARN], n[MWC_FAIL], n[MWC_INFO],
	    n[MWC_SKIP]);
	fprintf(fp, "Result: %s%s%s (exit %d)\n", mwc_c_status(o, rc == 2 ?
	    MWC_FAIL : rc == 1 ? MWC_WARN : MWC_PASS), rc == 2 ? "fail" :
	    rc == 1 ? "warnings" : "pass", mwc_c_off(o), rc);
}

static void
print_json(struct self *sc)
{
	const struct mwc_opts *o = sc->o;
	const struct mwc_report *r = &sc->r;
	struct mwc_json j;
	int i, k, it, n[5];

	mwc_json_init(&j, stdout);
	mwc_json_obj(&j, NULL);
	mwc_json_str(&j, "mode", "self");
	mwc_json_str(&j, "config", o->config);
	mwc_json_str(&j, "domain", o->domain);
	mwc_json_str(&j, "ip", o->ip);
	mwc_json_str(&j, "helo", o->helo);
	mwc_json_arr(&j, "sections");
	for (i = 0; i < r->nsec; i++) {
		const struct section *s = r->sec[i];

		mwc_json_obj(&j, NULL);
		mwc_json_str(&j, "title", s->title);
		mwc_json_arr(&j, "items");
		for (it = 0; it < s->n; it++) {
			const struct item *x = &s->items[it];

			mwc_json_obj(&j, NULL);
			mwc_json_str(&j, "check", x->id);
			mwc_json_str(&j, "status", mwc_status_name(x->st));
			mwc_json_str(&j, "text", x->text);
			mwc_json_str(&j, "fix", x->st == MWC_PASS ||
			    x->st == MWC_INFO ? NULL : x->fix);
			mwc_json_arr(&j, "details");
			for (k = 0; k < x->nd; k++)
				mwc_json_str(&j, NULL, x->details[k]);
			mwc_json_end_arr(&j);
			mwc_json_end_obj(&j);
		}
		mwc_json_end_arr(&j);
		mwc_json_end_obj(&j);
	}
	mwc_json_end_arr(&j);
	count(r, n);
	mwc_json_obj(&j, "summary");
	mwc_json_int(&j, "pass", n[MWC_PASS]);
	mwc_json_int(&j, "warn", n[MWC_WARN]);
	mwc_json_int(&j, "fail", n[MWC_FAIL]);
	mwc_json_int(&j, "info", n[MWC_INFO]);
	mwc_json_int(&j, "skipped", n[MWC_SKIP]);
	mwc_json_end_obj(&j);
	mwc_json_int(&j, "exit", exit_code(n));
	mwc_json_end_obj(&j);
	mwc_json_done(&j);
}

int
mwc_self(struct mw_ctx *ctx, const struct mwc_opts *o)
{
	struct self *sc;
	int n[5], rc;

	if ((sc = calloc(1, sizeof(*sc))) == NULL) {
		fprintf(stderr, "mailwarden-check: out of memory\n");
		return MWC_EXIT_SOFTWARE;
	}
	sc->o = o;
	sc->ctx = ctx;
	sc->cfg = mw_ctx_config(ctx);
	if ((sc->b = mw_dns_batch_new(mw_ctx_dns(ctx))) == NULL) {
		fprintf(stderr, "mailwarden-check: out of memory\n");
		free(sc);
		return MWC_EXIT_SOFTWARE;
	}
	check_ptr(sc);
	check_helo(sc);
	/* The daemon's own checks, as a receiver with this config runs them. */
	if (o->ip != NULL)
		receiver_view(ctx, o->ip, o->helo != NULL ? o->helo :
		    sc->n_ptr > 0 ? sc->ptr_names[0] : o->domain, o->domain,
		    &sc->rv);
	check_mx(sc);
	check_spf(sc);
	check_dkim(sc);
	check_dmarc(sc);
	check_dnsbl(sc);
	if (o->smtp) {
		mwc_section(&sc->r, "SMTP");
		if (sc->mx_host[0] == '\0')
			mwc_item(&sc->r, MWC_SKIP, "smtp", "publish an MX with "
			    "an address first", "no MX host with an address "
			    "to connect to");
		else
			mwc_smtp_probe(&sc->r, ctx, o, sc->mx_host,
			    sc->mx_addr);
	}
	if (o->json)
		print_json(sc);
	else
		print_text(sc);
	count(&sc->r, n);
	rc = exit_code(n);
	fflush(stdout);
	report_free(&sc->r);
	rview_free(&sc->rv);
	mw_dns_batch_free(sc->b);
	free(sc);
	return rc;
}
