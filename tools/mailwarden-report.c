/*
 * mailwarden-report -- send the DMARC aggregate reports (RFC 9990) that
 * the [dmarc] module's history asks for.
 *
 *	mailwarden-report [-c mailwarden.ini] [--history FILE]...
 *	    [--end now|UNIX-TIME] [--out DIR] [--no-send] [-v]
 *
 * Run daily (etc/mailwarden-report.timer, or the cron line in
 * etc/mailwarden-report.cron).  One run:
 *
 *  1. reads the history ([dmarc] history_file, or every --history file:
 *     the files of several MX hosts are merged), one JSON object per line
 *     (format at history_record() in lib/mw_dmarc.c).  A line that is not
 *     a valid record is skipped and counted, never the end of the run;
 *  2. aggregates per DMARC Policy Domain and reporting period -- periods
 *     are [dmarc] report_interval long (a day by default) or, for a domain
 *     asking a larger ri=, that rounded up to whole intervals, aligned on
 *     multiples of their length since the epoch (UTC midnight for days) --
 *     into one <record> per (source IP, disposition, DMARC alignment
 *     results, override reasons, identifiers, SPF and DKIM results) with
 *     a count.  A period is reported when it is over; --end closes the
 *     current one early (--end now: a host being retired, or a test);
 *  3. writes each report as an RFC 9990 XML document, gzipped, named
 *     receiver!policy-domain!begin!end.xml.gz, into --out DIR (and stops
 *     there), or queues it under [dmarc] report_state_dir/queue, once per
 *     rua= mailto: address, and records in report_state_dir/state up to
 *     when each domain was reported: a second run sends nothing twice;
 *  4. delivers the queue: an address outside the Organizational Domain
 *     of the policy domain needs the RFC 9990 section 4 confirmation
 *     (TXT <domain>._report._dmarc.<host> starting with v=DMARC1; its
 *     rua= may redirect to the same host), else it is skipped and logged;
 *     the message (multipart/mixed, the report as application/gzip, the
 *     Subject of RFC 9990 3.1.3) goes through [dmarc] report_sendmail or
 *     to the SMTP relay report_smtp.  A temporary failure (sendmail exit
 *     75, SMTP 4xx, a DNS error of the confirmation) leaves it queued for
 *     the next run, for report_retry_for at most.  A report message larger
 *     than report_max_size is not sent (logged).
 *
 * Exit status 0 (even with skipped lines or undeliverable reports: the
 * summary on stdout and the log say so), 1 on a setup error.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>

#include <hiredis/hiredis.h>
#include <jansson.h>
#include <zlib.h>

#include "mw_buf.h"
#include "mw_config.h"
#include "mw_dmarc.h"
#include "mw_dns.h"
#include "mw_log.h"
#include "mw_redis.h"
#include "mw_text.h"

#define LINE_MAX_BYTES	(64 * 1024)	/* a longer history line is corrupt */
#define MAX_DKIM	100		/* signatures per row (RFC 9990 3.1.2) */
#define MAX_REASONS	8
#define SMTP_TIMEOUT_MS	30000
#define FS		'\x1f'		/* field separator of row keys */
#define SUB		'\x1e'		/* inside a field */
#define ITEM		'\x1d'		/* between items of a field */

/* ------------------------------------------------------------------ */
/* A string-keyed hash table (open addressing, FNV-1a). */

struct hent {
	char			*key;
	unsigned long long	 n;	/* a count */
	void			*p;	/* or a value */
};

struct hmap {
	struct hent	*e;
	size_t		 cap, n;
};

static uint64_t
hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

static void *
xmalloc(size_t n)
{
	void *p = malloc(n);

	if (p == NULL) {
		fprintf(stderr, "mailwarden-report: out of memory\n");
		exit(1);
	}
	return p;
}

static char *
xstrdup(const char *s)
{
	size_t n = strlen(s) + 1;

	return memcpy(xmalloc(n), s, n);
}

static void
hmap_grow(struct hmap *m)
{
	struct hent *old = m->e;
	size_t i, j, ocap = m->cap;

	m->cap = ocap ? ocap * 2 : 64;
	m->e = calloc(m->cap, sizeof(*m->e));
	if (m->e == NULL) {
		fprintf(stderr, "mailwarden-report: out of memory\n");
		exit(1);
	}
	for (i = 0; i < ocap; i++) {
		if (old[i].key == NULL)
			continue;
		j = hash_str(old[i].key) & (m->cap - 1);
		while (m->e[j].key != NULL)
			j = (j + 1) & (m->cap - 1);
		m->e[j] = old[i];
	}
	free(old);
}

/* The entry for key, made (zeroed) if new; *isnew says which. */
static struct hent *
hmap_get(struct hmap *m, const char *key, int *isnew)
{
	size_t j;

	if ((m->n + 1) * 2 > m->cap)
		hmap_grow(m);
	j = hash_str(key) & (m->cap - 1);
	while (m->e[j].key != NULL) {
		if (strcmp(m->e[j].key, key) == 0) {
			*isnew = 0;
			return &m->e[j];
		}
		j = (j + 1) & (m->cap - 1);
	}
	m->e[j].key = xstrdup(key);
	m->n++;
	*isnew = 1;
	return &m->e[j];
}

static struct hent *
hmap_find(const struct hmap *m, const char *key)
{
	size_t j;

	if (m->cap == 0)
		return NULL;
	j = hash_str(key) & (m->cap - 1);
	while (m->e[j].key != NULL) {
		if (strcmp(m->e[j].key, key) == 0)
			return &m->e[j];
		j = (j + 1) & (m->cap - 1);
	}
	return NULL;
}

static int
cmp_hent(const void *a, const void *b)
{
	return strcmp(((const struct hent *)a)->key,
	    ((const struct hent *)b)->key);
}

/* The entries in key order (an array of copies; keys are shared). */
static struct hent *
hmap_sorted(const struct hmap *m)
{
	struct hent *v = xmalloc((m->n + 1) * sizeof(*v));
	size_t i, k = 0;

	for (i = 0; i < m->cap; i++)
		if (m->e[i].key != NULL)
			v[k++] = m->e[i];
	qsort(v, k, sizeof(*v), cmp_hent);
	return v;
}

static void
hmap_free(struct hmap *m, void (*freep)(void *))
{
	size_t i;

	for (i = 0; i < m->cap; i++)
		if (m->e[i].key != NULL) {
			free(m->e[i].key);
			if (freep != NULL)
				freep(m->e[i].p);
		}
	free(m->e);
	m->e = NULL;
	m->cap = m->n = 0;
}

/* ------------------------------------------------------------------ */
/* Reading the history. */

/* The policy as published, from the latest record of a group. */
struct pub {
	long long	 time;
	char		*p, *sp, *np, *adkim, *aspf, *fo, *testing, *disc;
	char		*rua, *org;
};

/* One report: a policy domain and a period. */
struct group {
	char		*domain;
	long long	 begin, end;	/* the whole period */
	struct pub	 pub;
	struct hmap	 rows;		/* row key -> count */
	unsigned long long messages;
};

struct run {
	const struct mw_dmarc_report_cfg *rc;
	const struct mw_config	*cfg;
	long long	 end;		/* records before this are reported */
	int		 closed_early;	/* --end given */
	struct hmap	 groups;	/* "domain FS begin FS end" -> group */
	struct hmap	 state;		/* domain -> reported until (n) */
	unsigned long long lines, records, skipped, already, later;
	const char	*submitter;	/* receiver domain */
	const char	*org_name;
	int		 verbose;
};

static const char *const pol_values[] = { "none", "quarantine", "reject",
    NULL };
static const char *const dkim_values[] = { "none", "pass", "fail",
    "policy", "neutral", "temperror", "permerror", NULL };
static const char *const spf_values[] = { "none", "pass", "fail",
    "softfail", "policy", "neutral", "temperror", "permerror", NULL };
static const char *const override_types[] = { "local_policy",
    "mailing_list", "other", "policy_test_mode", "trusted_forwarder", NULL };

static int
one_of(const char *v, const char *const *set)
{
	for (; *set != NULL; set++)
		if (strcmp(v, *set) == 0)
			return 1;
	return 0;
}

/* A string member, or NULL if absent or not a string. */
static const char *
jstr(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);

	return json_is_string(v) ? json_string_value(v) : NULL;
}

/*
 * Free text for the XML (comments): printable, no separators, at most
 * 200 bytes; UTF-8 (jansson's strings are valid UTF-8) is kept.
 */
static void
put_text(struct mw_buf *b, const char *s)
{
	size_t n = 0;

	for (; *s != '\0' && n < 200; s++, n++) {
		unsigned char c = (unsigned char)*s;

		if (c < 0x20 || c == 0x7f)
			mw_buf_append(b, "?", 1);
		else
			mw_buf_append(b, s, 1);
	}
}

/* A field that must be a domain (or ""), lower-cased into b. */
static int
put_domain(struct mw_buf *b, const char *s, int empty_ok)
{
	size_t n;

	if (s == NULL)
		return -1;
	if (*s == '\0')
		return empty_ok ? 0 : -1;
	n = strlen(s);
	if (n > MW_DOMAIN_MAX + 1 || !mw_domain_ok(s, MW_DOMAIN_LDH))
		return -1;
	for (; *s != '\0'; s++)
		mw_buf_printf(b, "%c", tolower((unsigned char)*s));
	return 0;
}

/*
 * The reasons of a record: the "override" object (ARC, issue 20:
 * {"type": ..., "comment": ...}) and our own notes in "reason"
 * ("local override: D" -> mailing_list, "t=y: ..." -> policy_test_mode,
 * "exempt recipient" and "dry run" -> local_policy, anything else
 * other), as type SUB comment, ITEM-separated.
 */
static int
put_reasons(struct mw_buf *b, json_t *o)
{
	json_t *ov = json_object_get(o, "override");
	const char *r = jstr(o, "reason"), *e;
	int n = 0;

	if (ov != NULL && !json_is_null(ov)) {
		const char *t = jstr(ov, "type"), *c = jstr(ov, "comment");

		if (t == NULL || !one_of(t, override_types))
			return -1;
		mw_buf_printf(b, "%s%c", t, SUB);
		if (c != NULL)
			put_text(b, c);
		n++;
	}
	if (r == NULL)
		return 0;
	while (*r != '\0' && n < MAX_REASONS) {
		size_t len;
		const char *type;
		char note[256];

		e = strstr(r, "; ");
		len = e != NULL ? (size_t)(e - r) : strlen(r);
		snprintf(note, sizeof(note), "%.*s", (int)(len > 255 ? 255 :
		    len), r);
		if (strncmp(note, "local override", 14) == 0)
			type = "mailing_list";
		else if (strncmp(note, "t=y", 3) == 0)
			type = "policy_test_mode";
		else if (strcmp(note, "exempt recipient") == 0 ||
		    strcmp(note, "dry run") == 0)
			type = "local_policy";
		else
			type = "other";
		if (note[0] != '\0') {
			mw_buf_printf(b, "%s%s%c", n ? "\x1d" : "", type, SUB);
			put_text(b, note);
			n++;
		}
		r = e != NULL ? e + 2 : r + len;
	}
	return 0;
}

static void
pub_set(char **dst, const char *v)
{
	free(*dst);
	*dst = v != NULL ? xstrdup(v) : NULL;
}

static void
group_free(void *vg)
{
	struct group *g = vg;

	if (g == NULL)
		return;
	free(g->domain);
	free(g->pub.p);
	free(g->pub.sp);
	free(g->pub.np);
	free(g->pub.adkim);
	free(g->pub.aspf);
	free(g->pub.fo);
	free(g->pub.testing);
	free(g->pub.disc);
	free(g->pub.rua);
	free(g->pub.org);
	hmap_free(&g->rows, NULL);
	free(g);
}

/* One history line into the aggregate; -1: not a valid record. */
static int
add_record(struct run *r, const char *line, size_t len)
{
	json_t *o, *v, *a;
	json_error_t jerr;
	struct mw_buf key = MW_BUF_INIT(LINE_MAX_BYTES);
	struct mw_buf gkey = MW_BUF_INIT(1024);
	const char *ip, *dom, *s, *disp, *dmarc, *policy, *p;
	unsigned char addr[16];
	long long t, ri, len_p, begin, until;
	struct hent *he;
	struct group *g;
	size_t i;
	int isnew, rc = -1;

	o = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
	if (o == NULL || !json_is_object(o))
		goto out;
	v = json_object_get(o, "v");
	if (!json_is_integer(v) || json_integer_value(v) != 2)
		goto out;
	v = json_object_get(o, "time");
	if (!json_is_integer(v) || (t = json_integer_value(v)) < 0)
		goto out;
	v = json_object_get(o, "ri");
	ri = json_is_integer(v) ? json_integer_value(v) : 86400;
	if (ri < 1 || ri > 31LL * 86400)
		ri = 86400;
	/* A period: report_interval, or ri rounded up to whole intervals. */
	len_p = r->rc->interval;
	if (ri > len_p)
		len_p = (ri + len_p - 1) / len_p * len_p;
	dom = jstr(o, "policy_domain");
	if (put_domain(&gkey, dom, 0) == -1)
		goto out;
	he = hmap_find(&r->state, mw_buf_str(&gkey));
	until = he != NULL ? (long long)he->n : 0;
	if (t < until) {
		r->already++;
		rc = 0;
		goto out;
	}
	if (t >= r->end) {
		r->later++;
		rc = 0;
		goto out;
	}
	begin = t / len_p * len_p;
	/* Fields of the row key, in output order. */
	ip = jstr(o, "source_ip");
	if (ip == NULL || (inet_pton(AF_INET, ip, addr) != 1 &&
	    inet_pton(AF_INET6, ip, addr) != 1))
		goto out;
	mw_buf_printf(&key, "%s%c", ip, FS);
	dmarc = jstr(o, "dmarc");
	policy = jstr(o, "policy");
	disp = jstr(o, "disposition");
	if (dmarc == NULL || policy == NULL || disp == NULL ||
	    (strcmp(dmarc, "pass") != 0 && strcmp(dmarc, "fail") != 0) ||
	    !one_of(policy, pol_values))
		goto out;
	/* ActionDispositionType: "pass" is a pass under an enforcing policy. */
	if (strcmp(disp, "none") == 0)
		disp = strcmp(dmarc, "pass") == 0 && strcmp(policy, "none") !=
		    0 ? "pass" : "none";
	else if (strcmp(disp, "tempfail") == 0)
		disp = "reject";	/* refused for now: not accepted */
	else if (!one_of(disp, pol_values))
		goto out;
	mw_buf_printf(&key, "%s%c", disp, FS);
	for (i = 0; i < 2; i++) {
		s = jstr(o, i == 0 ? "dkim_aligned" : "spf_aligned");
		if (s == NULL || (strcmp(s, "pass") != 0 &&
		    strcmp(s, "fail") != 0))
			goto out;
		mw_buf_printf(&key, "%s%c", s, FS);
	}
	if (put_reasons(&key, o) == -1)
		goto out;
	mw_buf_printf(&key, "%c", FS);
	if (put_domain(&key, jstr(o, "header_from"), 0) == -1)
		goto out;
	mw_buf_printf(&key, "%c", FS);
	if (put_domain(&key, jstr(o, "envelope_from_domain"), 1) == -1)
		goto out;
	mw_buf_printf(&key, "%c", FS);
	/* envelope_to: the first recipient domain */
	a = json_object_get(o, "envelope_to");
	if (json_is_array(a) && json_array_size(a) > 0) {
		v = json_array_get(a, 0);
		if (!json_is_string(v) || put_domain(&key,
		    json_string_value(v), 1) == -1)
			goto out;
	}
	mw_buf_printf(&key, "%c", FS);
	v = json_object_get(o, "spf");
	if (json_is_object(v)) {
		s = jstr(v, "result");
		if (s == NULL || !one_of(s, spf_values))
			goto out;
		if (put_domain(&key, jstr(v, "domain"), 1) == -1)
			goto out;
		p = jstr(v, "scope");
		mw_buf_printf(&key, "%c%s%c%s", SUB, p != NULL &&
		    strcmp(p, "mfrom") == 0 ? "mfrom" : "", SUB, s);
	}
	mw_buf_printf(&key, "%c", FS);
	a = json_object_get(o, "dkim");
	if (a != NULL && !json_is_array(a))
		goto out;
	for (i = 0; i < json_array_size(a) && i < MAX_DKIM; i++) {
		v = json_array_get(a, i);
		s = jstr(v, "result");
		p = jstr(v, "selector");
		if (s == NULL || p == NULL)
			goto out;
		if (strcmp(s, "softfail") == 0)
			s = "fail";
		if (!one_of(s, dkim_values))
			goto out;
		if (i > 0)
			mw_buf_printf(&key, "%c", ITEM);
		if (put_domain(&key, jstr(v, "domain"), 0) == -1)
			goto out;
		mw_buf_printf(&key, "%c", SUB);
		if (put_domain(&key, p, 0) == -1)
			goto out;
		mw_buf_printf(&key, "%c%s", SUB, s);
	}
	if (key.truncated)
		goto out;
	/* The published policy (validated: it goes into the XML). */
	{
		const char *pp = jstr(o, "p"), *sp = jstr(o, "sp"),
		    *np = jstr(o, "np"), *ad = jstr(o, "adkim"),
		    *as = jstr(o, "aspf"), *te = jstr(o, "testing"),
		    *di = jstr(o, "discovery_method");

		if (pp == NULL || !one_of(pp, pol_values) || (sp != NULL &&
		    !one_of(sp, pol_values)) || (np != NULL &&
		    !one_of(np, pol_values)) || (ad != NULL &&
		    strcmp(ad, "r") != 0 && strcmp(ad, "s") != 0) ||
		    (as != NULL && strcmp(as, "r") != 0 &&
		    strcmp(as, "s") != 0) || (te != NULL &&
		    strcmp(te, "y") != 0 && strcmp(te, "n") != 0) ||
		    (di != NULL && strcmp(di, "psl") != 0 &&
		    strcmp(di, "treewalk") != 0))
			goto out;
		mw_buf_printf(&gkey, "%c%lld%c%lld", FS, begin, FS, len_p);
		he = hmap_get(&r->groups, mw_buf_str(&gkey), &isnew);
		if (isnew) {
			g = he->p = xmalloc(sizeof(*g));
			memset(g, 0, sizeof(*g));
			g->domain = xstrdup(mw_buf_str(&gkey));
			*strchr(g->domain, FS) = '\0';
			g->begin = begin;
			g->end = begin + len_p;
			g->pub.time = -1;
		}
		g = he->p;
		if (t >= g->pub.time) {
			g->pub.time = t;
			pub_set(&g->pub.p, pp);
			pub_set(&g->pub.sp, sp);
			pub_set(&g->pub.np, np);
			pub_set(&g->pub.adkim, ad);
			pub_set(&g->pub.aspf, as);
			pub_set(&g->pub.testing, te);
			pub_set(&g->pub.disc, di);
			pub_set(&g->pub.fo, jstr(o, "fo"));
			pub_set(&g->pub.rua, jstr(o, "rua"));
			pub_set(&g->pub.org, jstr(o, "org_domain"));
		}
	}
	he = hmap_get(&g->rows, mw_buf_str(&key), &isnew);
	he->n++;
	g->messages++;
	r->records++;
	rc = 0;
out:
	if (o != NULL)
		json_decref(o);
	mw_buf_free(&key);
	mw_buf_free(&gkey);
	return rc;
}

static int
read_history(struct run *r, const char *path)
{
	FILE *fp;
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;

	if ((fp = fopen(path, "re")) == NULL) {
		if (errno == ENOENT) {
			mw_log(LOG_INFO, "history %s: not there yet", path);
			return 0;
		}
		mw_log(LOG_ERR, "history %s: %s", path, strerror(errno));
		return -1;
	}
	while ((n = getline(&line, &cap, fp)) > 0) {
		r->lines++;
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			n--;
		if (n == 0)
			continue;
		if (n > LINE_MAX_BYTES || add_record(r, line, (size_t)n) ==
		    -1) {
			r->skipped++;
			if (r->verbose)
				mw_log(LOG_WARNING, "history %s line %llu: "
				    "not a valid record, skipped", path,
				    r->lines);
		}
	}
	free(line);
	fclose(fp);
	return 0;
}

/*
 * The Redis store (history_redis = yes): the day lists
 * "<history_redis_key>:<day start>" from history_redis_keep before the
 * end up to the end, read 10,000 elements at a time.  An element that
 * is not a valid record is skipped and counted like a bad line.
 */
static int
read_redis(struct run *r, struct mw_redis *redis)
{
	long long day, first, last;
	char key[160], lo[32], hi[32], err[256];
	const char *argv[4];
	struct mw_redis_cmd cmd;
	struct redisReply *rep;
	long long off;
	size_t i;

	last = r->end / 86400 * 86400;
	first = (r->end - r->rc->redis_keep - 86400) / 86400 * 86400;
	if (first < 0)
		first = 0;
	for (day = first; day <= last; day += 86400) {
		snprintf(key, sizeof(key), "%s:%lld", r->rc->redis_key, day);
		for (off = 0;; off += 10000) {
			snprintf(lo, sizeof(lo), "%lld", off);
			snprintf(hi, sizeof(hi), "%lld", off + 9999);
			argv[0] = "LRANGE";
			argv[1] = key;
			argv[2] = lo;
			argv[3] = hi;
			cmd.argc = 4;
			cmd.argv = argv;
			cmd.argvlen = NULL;
			if (mw_redis_run(redis, &cmd, 1, &rep, err,
			    sizeof(err)) != MW_REDIS_OK) {
				mw_log(LOG_ERR, "redis %s: %s",
				    mw_redis_target(redis), err);
				return -1;
			}
			if (rep->type != REDIS_REPLY_ARRAY) {
				mw_redis_free_replies(&rep, 1);
				mw_log(LOG_ERR, "redis %s: %s is not a list",
				    mw_redis_target(redis), key);
				return -1;
			}
			for (i = 0; i < rep->elements; i++) {
				struct redisReply *el = rep->element[i];

				r->lines++;
				if (el->type != REDIS_REPLY_STRING ||
				    el->len > LINE_MAX_BYTES ||
				    add_record(r, el->str, el->len) == -1) {
					r->skipped++;
					if (r->verbose)
						mw_log(LOG_WARNING, "redis %s "
						    "element %lld: not a valid "
						    "record, skipped", key,
						    off + (long long)i);
				}
			}
			i = rep->elements;
			mw_redis_free_replies(&rep, 1);
			if (i < 10000)
				break;
		}
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* The XML document (RFC 9990 section 3 and its schema). */

static void
xml_text(struct mw_buf *b, const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n && s[i] != '\0'; i++) {
		switch (s[i]) {
		case '<': mw_buf_puts(b, "&lt;"); break;
		case '>': mw_buf_puts(b, "&gt;"); break;
		case '&': mw_buf_puts(b, "&amp;"); break;
		case '"': mw_buf_puts(b, "&quot;"); break;
		default:
			if ((unsigned char)s[i] < 0x20)
				mw_buf_puts(b, "?");
			else
				mw_buf_append(b, s + i, 1);
		}
	}
}

/* <name>text</name> on its own line, indented. */
static void
xml_el(struct mw_buf *b, int indent, const char *name, const char *s,
    size_t n)
{
	mw_buf_printf(b, "%*s<%s>", indent, "", name);
	xml_text(b, s, n);
	mw_buf_printf(b, "</%s>\n", name);
}

static void
xml_els(struct mw_buf *b, int indent, const char *name, const char *s)
{
	xml_el(b, indent, name, s, strlen(s));
}

/* The n-th FS field of a row key: pointer and length. */
static const char *
field(const char *key, int n, size_t *len)
{
	const char *e;

	while (n-- > 0)
		key = strchr(key, FS) + 1;
	e = strchr(key, FS);
	*len = e != NULL ? (size_t)(e - key) : strlen(key);
	return key;
}

/* The sub-fields (SUB) of one item of a field: up to 3. */
static int
subfields(const char *s, size_t n, const char **f, size_t *fl, int max)
{
	int k = 0;
	const char *e = s + n, *q;

	while (k < max) {
		for (q = s; q < e && *q != SUB; q++)
			;
		f[k] = s;
		fl[k++] = (size_t)(q - s);
		if (q >= e)
			break;
		s = q + 1;
	}
	return k;
}

/* Report-ID (RFC 9990 3.1.1 ridfmt): begin.end.domain@submitter */
static void
report_id(const struct run *r, const struct group *g, long long begin,
    long long end, char *out, size_t len)
{
	snprintf(out, len, "%lld.%lld.%s@%s", begin, end, g->domain,
	    r->submitter);
}

static void
build_xml(const struct run *r, const struct group *g, long long begin,
    long long end, struct mw_buf *b)
{
	struct hent *rows = hmap_sorted(&g->rows);
	char rid[600], num[32];
	const char *f[3], *fv, *it, *ie;
	size_t fl[3], n, i;
	int k;

	report_id(r, g, begin, end, rid, sizeof(rid));
	mw_buf_puts(b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	    "<feedback xmlns=\"urn:ietf:params:xml:ns:dmarc-2.0\">\n"
	    "  <version>1.0</version>\n  <report_metadata>\n");
	xml_els(b, 4, "org_name", r->org_name);
	xml_els(b, 4, "email", r->rc->from[0] ? r->rc->from : "");
	if (r->rc->extra_contact[0] != '\0')
		xml_els(b, 4, "extra_contact_info", r->rc->extra_contact);
	xml_els(b, 4, "report_id", rid);
	mw_buf_printf(b, "    <date_range>\n      <begin>%lld</begin>\n"
	    "      <end>%lld</end>\n    </date_range>\n", begin, end);
	xml_els(b, 4, "generator", "mailwarden-report " PACKAGE_VERSION);
	mw_buf_puts(b, "  </report_metadata>\n  <policy_published>\n");
	xml_els(b, 4, "domain", g->domain);
	if (g->pub.disc != NULL)
		xml_els(b, 4, "discovery_method", g->pub.disc);
	xml_els(b, 4, "p", g->pub.p);
	if (g->pub.sp != NULL)
		xml_els(b, 4, "sp", g->pub.sp);
	if (g->pub.np != NULL)
		xml_els(b, 4, "np", g->pub.np);
	if (g->pub.fo != NULL)
		xml_els(b, 4, "fo", g->pub.fo);
	if (g->pub.adkim != NULL)
		xml_els(b, 4, "adkim", g->pub.adkim);
	if (g->pub.aspf != NULL)
		xml_els(b, 4, "aspf", g->pub.aspf);
	if (g->pub.testing != NULL)
		xml_els(b, 4, "testing", g->pub.testing);
	mw_buf_puts(b, "  </policy_published>\n");
	for (i = 0; i < g->rows.n; i++) {
		const char *key = rows[i].key;

		mw_buf_puts(b, "  <record>\n    <row>\n");
		fv = field(key, 0, &n);
		xml_el(b, 6, "source_ip", fv, n);
		snprintf(num, sizeof(num), "%llu", rows[i].n);
		xml_els(b, 6, "count", num);
		mw_buf_puts(b, "      <policy_evaluated>\n");
		fv = field(key, 1, &n);
		xml_el(b, 8, "disposition", fv, n);
		fv = field(key, 2, &n);
		xml_el(b, 8, "dkim", fv, n);
		fv = field(key, 3, &n);
		xml_el(b, 8, "spf", fv, n);
		fv = field(key, 4, &n);
		for (it = fv; n > 0 && it < fv + n; it = ie + 1) {
			for (ie = it; ie < fv + n && *ie != ITEM; ie++)
				;
			k = subfields(it, (size_t)(ie - it), f, fl, 2);
			mw_buf_puts(b, "        <reason>\n");
			xml_el(b, 10, "type", f[0], fl[0]);
			if (k > 1 && fl[1] > 0)
				xml_el(b, 10, "comment", f[1], fl[1]);
			mw_buf_puts(b, "        </reason>\n");
		}
		mw_buf_puts(b, "      </policy_evaluated>\n    </row>\n"
		    "    <identifiers>\n");
		fv = field(key, 5, &n);
		xml_el(b, 6, "header_from", fv, n);
		fv = field(key, 6, &n);
		xml_el(b, 6, "envelope_from", fv, n);
		fv = field(key, 7, &n);
		if (n > 0)
			xml_el(b, 6, "envelope_to", fv, n);
		mw_buf_puts(b, "    </identifiers>\n    <auth_results>\n");
		fv = field(key, 9, &n);
		for (it = fv; n > 0 && it < fv + n; it = ie + 1) {
			for (ie = it; ie < fv + n && *ie != ITEM; ie++)
				;
			k = subfields(it, (size_t)(ie - it), f, fl, 3);
			if (k < 3)
				continue;
			mw_buf_puts(b, "      <dkim>\n");
			xml_el(b, 8, "domain", f[0], fl[0]);
			xml_el(b, 8, "selector", f[1], fl[1]);
			xml_el(b, 8, "result", f[2], fl[2]);
			mw_buf_puts(b, "      </dkim>\n");
		}
		fv = field(key, 8, &n);
		if (n > 0 && subfields(fv, n, f, fl, 3) == 3) {
			mw_buf_puts(b, "      <spf>\n");
			xml_el(b, 8, "domain", f[0], fl[0]);
			if (fl[1] > 0)
				xml_el(b, 8, "scope", f[1], fl[1]);
			xml_el(b, 8, "result", f[2], fl[2]);
			mw_buf_puts(b, "      </spf>\n");
		}
		mw_buf_puts(b, "    </auth_results>\n  </record>\n");
	}
	mw_buf_puts(b, "</feedback>\n");
	free(rows);
}

/* gzip (RFC 1952) of in into out; -1 on a zlib error. */
static int
gzip_buf(const char *in, size_t n, struct mw_buf *out)
{
	z_stream z;
	unsigned char chunk[16384];
	int zr;

	memset(&z, 0, sizeof(z));
	/* 15 + 16: a gzip header; no file name, time 0: reproducible. */
	if (deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 8,
	    Z_DEFAULT_STRATEGY) != Z_OK)
		return -1;
	z.next_in = (unsigned char *)(uintptr_t)in;
	z.avail_in = (uInt)n;
	do {
		z.next_out = chunk;
		z.avail_out = sizeof(chunk);
		zr = deflate(&z, Z_FINISH);
		if (zr == Z_STREAM_ERROR) {
			deflateEnd(&z);
			return -1;
		}
		mw_buf_append(out, (const char *)chunk,
		    sizeof(chunk) - z.avail_out);
	} while (zr != Z_STREAM_END);
	deflateEnd(&z);
	return out->truncated ? -1 : 0;
}

/* ------------------------------------------------------------------ */
/* Files: the state, the queue, --out. */

static int
write_file(const char *path, const char *s, size_t n, int mode)
{
	char tmp[PATH_MAX];
	int fd;
	ssize_t w;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    mode)) == -1)
		return -1;
	w = write(fd, s, n);
	if (w != (ssize_t)n || fsync(fd) == -1) {
		close(fd);
		unlink(tmp);
		if (w >= 0)
			errno = EIO;
		return -1;
	}
	close(fd);
	return rename(tmp, path);
}

/* state: "domain reported-until" lines. */
static void
state_load(struct run *r, const char *path)
{
	FILE *fp = fopen(path, "re");
	char dom[300];
	long long until;
	struct hent *he;
	int isnew;

	if (fp == NULL)
		return;
	while (fscanf(fp, "%299s %lld", dom, &until) == 2) {
		he = hmap_get(&r->state, dom, &isnew);
		he->n = (unsigned long long)until;
	}
	fclose(fp);
}

static int
state_save(struct run *r, const char *path)
{
	struct mw_buf b = MW_BUF_INIT(SIZE_MAX / 2);
	struct hent *v = hmap_sorted(&r->state);
	size_t i;
	int rc;

	for (i = 0; i < r->state.n; i++)
		mw_buf_printf(&b, "%s %llu\n", v[i].key, v[i].n);
	free(v);
	rc = write_file(path, mw_buf_str(&b), b.len, 0640);
	mw_buf_free(&b);
	return rc;
}

/*
 * The mailto: addresses of a rua= list (RFC 9989 URIs, comma-separated;
 * an RFC 7489 "!size" suffix is dropped; other schemes ignored),
 * percent-decoding %XX.  At most max, each checked to be local@domain.
 */
static size_t
rua_addresses(const char *rua, char out[][320], size_t max)
{
	size_t n = 0, k;
	const char *p = rua, *e;

	while (p != NULL && *p != '\0' && n < max) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		e = strchr(p, ',');
		if (e == NULL)
			e = p + strlen(p);
		if (strncasecmp(p, "mailto:", 7) == 0) {
			const char *q = p + 7, *at = NULL;

			k = 0;
			for (; q < e && *q != '!' && *q != '?' && *q != ' ' &&
			    k < 319; q++) {
				unsigned int hx;

				if (*q == '%' && e - q >= 3 && sscanf(q + 1,
				    "%2x", &hx) == 1) {
					out[n][k++] = (char)hx;
					q += 2;
				} else
					out[n][k++] = *q;
			}
			out[n][k] = '\0';
			at = strrchr(out[n], '@');
			if (at != NULL && at != out[n] && strpbrk(out[n],
			    " \t<>\"\r\n()\\,;:") == NULL &&
			    mw_domain_ok(at + 1, MW_DOMAIN_LDH | MW_DOMAIN_HOST))
				n++;
		}
		p = *e != '\0' ? e + 1 : e;
	}
	return n;
}

/* Is host in org (the same or a subdomain)?  Case-insensitive. */
static int
in_org(const char *host, const char *org)
{
	size_t h = strlen(host), o = strlen(org);

	if (o == 0 || h < o)
		return 0;
	if (strcasecmp(host + h - o, org) != 0)
		return 0;
	return h == o || host[h - o - 1] == '.';
}

static void
sanitize_name(char *s)
{
	for (; *s != '\0'; s++)
		if (!isalnum((unsigned char)*s) && *s != '.' && *s != '-' &&
		    *s != '_' && *s != '!')
			*s = '_';
}

/*
 * Queue one report for one rua address: report_state_dir/queue/NAME with
 * the metadata lines, an empty line, then the gzipped report.
 */
static int
queue_report(const struct run *r, const char *qdir, const char *fname,
    int idx, const struct group *g, const char *rcpt, const char *rid,
    const struct mw_buf *gz)
{
	struct mw_buf b = MW_BUF_INIT(SIZE_MAX / 2);
	char path[PATH_MAX + 1024], name[1000];
	int rc;

	snprintf(name, sizeof(name), "%s.%d", fname, idx);
	sanitize_name(name);
	snprintf(path, sizeof(path), "%s/%s", qdir, name);
	mw_buf_printf(&b, "rcpt %s\ndomain %s\norg %s\nfile %s\nid %s\n"
	    "queued %lld\n\n", rcpt, g->domain, g->pub.org != NULL ?
	    g->pub.org : "", fname, rid, (long long)time(NULL));
	mw_buf_append(&b, gz->s, gz->len);
	rc = write_file(path, b.s, b.len, 0640);
	if (rc == -1)
		mw_log(LOG_ERR, "queue %s: %s", path, strerror(errno));
	else if (r->verbose)
		mw_log(LOG_INFO, "queued %s for %s", fname, rcpt);
	mw_buf_free(&b);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Delivery. */

enum dres { D_SENT, D_TEMP, D_PERM };

struct qentry {
	char	rcpt[320], domain[300], org[300], file[600], id[700];
	long long queued;
	const char *gz;
	size_t	gzlen;
};

static int
qentry_parse(struct qentry *q, const char *s, size_t n)
{
	const char *e = memmem(s, n, "\n\n", 2), *p = s, *nl;
	char k[16], v[700];

	memset(q, 0, sizeof(*q));
	if (e == NULL)
		return -1;
	while (p < e) {
		nl = memchr(p, '\n', (size_t)(e - p) + 1);
		if (nl == NULL || sscanf(p, "%15s %699[^\n]", k, v) < 1)
			return -1;
		if (nl - p > 690)
			return -1;
		if (sscanf(p, "%15s %699[^\n]", k, v) == 1)
			v[0] = '\0';
		if (strcmp(k, "rcpt") == 0)
			snprintf(q->rcpt, sizeof(q->rcpt), "%s", v);
		else if (strcmp(k, "domain") == 0)
			snprintf(q->domain, sizeof(q->domain), "%s", v);
		else if (strcmp(k, "org") == 0)
			snprintf(q->org, sizeof(q->org), "%s", v);
		else if (strcmp(k, "file") == 0)
			snprintf(q->file, sizeof(q->file), "%s", v);
		else if (strcmp(k, "id") == 0)
			snprintf(q->id, sizeof(q->id), "%s", v);
		else if (strcmp(k, "queued") == 0)
			q->queued = atoll(v);
		p = nl + 1;
	}
	q->gz = e + 2;
	q->gzlen = n - (size_t)(e + 2 - s);
	return q->rcpt[0] && q->domain[0] && q->file[0] && q->id[0] ? 0 : -1;
}

static void
base64_lines(struct mw_buf *b, const unsigned char *s, size_t n)
{
	static const char t[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char out[4];
	size_t i, col = 0;

	for (i = 0; i < n; i += 3) {
		unsigned long v = (unsigned long)s[i] << 16;

		if (i + 1 < n)
			v |= (unsigned long)s[i + 1] << 8;
		if (i + 2 < n)
			v |= s[i + 2];
		out[0] = t[(v >> 18) & 63];
		out[1] = t[(v >> 12) & 63];
		out[2] = i + 1 < n ? t[(v >> 6) & 63] : '=';
		out[3] = i + 2 < n ? t[v & 63] : '=';
		mw_buf_append(b, out, 4);
		if ((col += 4) >= 76) {
			mw_buf_puts(b, "\r\n");
			col = 0;
		}
	}
	if (col > 0)
		mw_buf_puts(b, "\r\n");
}

/* The report message (RFC 9990 3.1.3), CRLF line ends. */
static void
build_message(const struct run *r, const struct qentry *q, const char *to,
    struct mw_buf *m)
{
	char date[64], boundary[64];
	time_t now = time(NULL);
	struct tm tm;

	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	snprintf(boundary, sizeof(boundary), "=_mailwarden_report_%08lx",
	    (unsigned long)(hash_str(q->id) & 0xffffffffUL));
	mw_buf_printf(m, "From: %s\r\nTo: <%s>\r\nDate: %s\r\n"
	    "Subject: Report Domain: %s Submitter: %s\r\n"
	    " Report-ID: <%s>\r\nMessage-ID: <%s>\r\nMIME-Version: 1.0\r\n"
	    "Auto-Submitted: auto-generated\r\n"
	    "Content-Type: multipart/mixed; boundary=\"%s\"\r\n\r\n"
	    "This is a DMARC aggregate report (RFC 9990).\r\n\r\n"
	    "--%s\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
	    "DMARC aggregate report for %s from %s.\r\n"
	    "Report-ID: <%s>\r\n\r\n"
	    "--%s\r\nContent-Type: application/gzip; name=\"%s\"\r\n"
	    "Content-Transfer-Encoding: base64\r\n"
	    "Content-Disposition: attachment; filename=\"%s\"\r\n\r\n",
	    r->rc->from, to, date, q->domain, r->submitter, q->id, q->id,
	    boundary, boundary, q->domain, r->submitter, q->id, boundary,
	    q->file, q->file);
	base64_lines(m, (const unsigned char *)q->gz, q->gzlen);
	mw_buf_printf(m, "\r\n--%s--\r\n", boundary);
}

static enum dres
send_sendmail(const struct run *r, const char *rcpt, const struct mw_buf *m)
{
	int pfd[2], st;
	pid_t pid;
	size_t off = 0;
	ssize_t w;

	if (pipe(pfd) == -1)
		return D_TEMP;
	if ((pid = fork()) == -1) {
		close(pfd[0]);
		close(pfd[1]);
		return D_TEMP;
	}
	if (pid == 0) {
		dup2(pfd[0], 0);
		close(pfd[0]);
		close(pfd[1]);
		execl(r->rc->sendmail, r->rc->sendmail, "-i", "-f",
		    r->rc->from, "--", rcpt, (char *)NULL);
		_exit(75);
	}
	close(pfd[0]);
	signal(SIGPIPE, SIG_IGN);
	while (off < m->len) {
		w = write(pfd[1], m->s + off, m->len - off);
		if (w == -1 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		off += (size_t)w;
	}
	close(pfd[1]);
	while (waitpid(pid, &st, 0) == -1 && errno == EINTR)
		;
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0 && off == m->len)
		return D_SENT;
	mw_log(LOG_WARNING, "%s: sendmail for %s: %s %d", r->rc->sendmail,
	    rcpt, WIFEXITED(st) ? "exit" : "signal", WIFEXITED(st) ?
	    WEXITSTATUS(st) : WTERMSIG(st));
	/* EX_TEMPFAIL (75) or a signal: try again later. */
	return WIFEXITED(st) && WEXITSTATUS(st) != 75 ? D_PERM : D_TEMP;
}

/* SMTP to the relay: one reply's code, -1 on a timeout or junk. */
static int
smtp_reply(int fd, char *last, size_t lastlen)
{
	char buf[1024];
	size_t len = 0;
	struct pollfd p;
	ssize_t n;
	char *nl;

	for (;;) {
		while ((nl = memchr(buf, '\n', len)) != NULL) {
			size_t l = (size_t)(nl - buf) + 1;
			int more = l > 4 && buf[3] == '-';

			snprintf(last, lastlen, "%.*s", (int)(l > 2 ? l - 2 :
			    0), buf);
			mw_printable_inplace(last);
			if (!more) {
				if (l < 4 || !isdigit((unsigned char)buf[0]))
					return -1;
				return atoi(buf);
			}
			memmove(buf, buf + l, len - l);
			len -= l;
		}
		if (len == sizeof(buf))
			len = 0;	/* an overlong line: drop it */
		p.fd = fd;
		p.events = POLLIN;
		if (poll(&p, 1, SMTP_TIMEOUT_MS) <= 0)
			return -1;
		n = read(fd, buf + len, sizeof(buf) - len);
		if (n <= 0)
			return -1;
		len += (size_t)n;
	}
}

static int
smtp_send(int fd, const char *s, size_t n)
{
	ssize_t w;

	while (n > 0) {
		w = write(fd, s, n);
		if (w == -1 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		s += w;
		n -= (size_t)w;
	}
	return 0;
}

static enum dres
send_smtp(const struct run *r, const char *rcpt, const struct mw_buf *m)
{
	int family, port, fd, code, i;
	unsigned char addr[16];
	char err[200], last[600], cmd[800];
	struct sockaddr_storage ss;
	socklen_t sl;
	struct mw_buf d = MW_BUF_INIT(SIZE_MAX / 2);
	const char *p, *e;
	enum dres res = D_TEMP;

	if (mw_parse_hostport(r->rc->smtp, &family, addr, &port, err,
	    sizeof(err)) == -1)
		return D_TEMP;
	memset(&ss, 0, sizeof(ss));
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		memcpy(&sin->sin_addr, addr, 4);
		sl = sizeof(*sin);
	} else {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		memcpy(&s6->sin6_addr, addr, 16);
		sl = sizeof(*s6);
	}
	if ((fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return D_TEMP;
	signal(SIGPIPE, SIG_IGN);
	if (connect(fd, (struct sockaddr *)&ss, sl) == -1) {
		mw_log(LOG_WARNING, "smtp %s: %s", r->rc->smtp,
		    strerror(errno));
		close(fd);
		return D_TEMP;
	}
	last[0] = '\0';
	/* Dot-stuffed message (it has CRLF line ends). */
	for (p = m->s; p < m->s + m->len; p = e) {
		e = memchr(p, '\n', (size_t)(m->s + m->len - p));
		e = e != NULL ? e + 1 : m->s + m->len;
		if (*p == '.')
			mw_buf_puts(&d, ".");
		mw_buf_append(&d, p, (size_t)(e - p));
	}
	mw_buf_puts(&d, ".\r\n");
	for (i = 0; i < 6; i++) {
		int want = 250;

		switch (i) {
		case 0:
			code = smtp_reply(fd, last, sizeof(last));
			want = 220;
			goto check;
		case 1:
			snprintf(cmd, sizeof(cmd), "EHLO %s\r\n",
			    r->submitter);
			break;
		case 2:
			snprintf(cmd, sizeof(cmd), "MAIL FROM:<%s>\r\n",
			    r->rc->from);
			break;
		case 3:
			snprintf(cmd, sizeof(cmd), "RCPT TO:<%s>\r\n", rcpt);
			break;
		case 4:
			snprintf(cmd, sizeof(cmd), "DATA\r\n");
			want = 354;
			break;
		case 5:
			if (smtp_send(fd, d.s, d.len) == -1)
				goto out;
			code = smtp_reply(fd, last, sizeof(last));
			goto check;
		}
		if (smtp_send(fd, cmd, strlen(cmd)) == -1)
			goto out;
		code = smtp_reply(fd, last, sizeof(last));
check:
		if (code != want) {
			mw_log(LOG_WARNING, "smtp %s: for %s: %s",
			    r->rc->smtp, rcpt, last[0] ? last : "no reply");
			res = code >= 500 && code < 600 ? D_PERM : D_TEMP;
			goto out;
		}
	}
	res = D_SENT;
	(void)smtp_send(fd, "QUIT\r\n", 6);
	(void)smtp_reply(fd, last, sizeof(last));
out:
	close(fd);
	mw_buf_free(&d);
	return res;
}

/* "v=DMARC1" first, then optional ';' and tags (RFC 9990 section 4). */
static int
confirm_record(const char *t, size_t n, char *rua, size_t rualen)
{
	size_t i = 0, s;
	const char *p;

	rua[0] = '\0';
	while (i < n && (t[i] == ' ' || t[i] == '\t'))
		i++;
	if (n - i < 8 || strncmp(t + i, "v=DMARC1", 8) != 0)
		return 0;
	i += 8;
	while (i < n && (t[i] == ' ' || t[i] == '\t'))
		i++;
	if (i < n && t[i] != ';')
		return 0;
	/* rua= among the tags */
	for (; i < n; i++) {
		if (t[i] != ';')
			continue;
		for (s = i + 1; s < n && (t[s] == ' ' || t[s] == '\t'); s++)
			;
		if (n - s > 4 && strncasecmp(t + s, "rua", 3) == 0) {
			for (p = t + s + 3; p < t + n && (*p == ' ' ||
			    *p == '\t'); p++)
				;
			if (p < t + n && *p == '=') {
				size_t k = 0;

				for (p++; p < t + n && *p != ';' && k + 1 <
				    rualen; p++)
					rua[k++] = *p;
				rua[k] = '\0';
			}
		}
	}
	return 1;
}

/*
 * RFC 9990 section 4: may rcpt get reports about q->domain?  Fills
 * out[] with the addresses to send to (the override rua=, if any, on
 * the same host).  Returns their number, 0 (not authorised: skip), or
 * -1 (DNS temporary error: later).
 */
static int
verify_dest(struct mw_dns_batch *batch, const char *rcpt, const char *domain,
    const char *org, char out[][320], size_t max)
{
	const char *host = strrchr(rcpt, '@') + 1;
	const struct mw_dns_answer *a;
	char name[600], rua[512], alt[8][320];
	size_t i, j, n, ok = 0;

	if (in_org(host, org)) {
		snprintf(out[0], 320, "%s", rcpt);
		return 1;
	}
	if ((size_t)snprintf(name, sizeof(name), "%s._report._dmarc.%s",
	    domain, host) >= sizeof(name) || strlen(name) > 253)
		return 0;
	a = mw_dns_lookup(batch, name, MW_DNS_TXT);
	if (a->status == MW_DNS_TEMPFAIL)
		return -1;
	if (a->status != MW_DNS_OK)
		return 0;
	n = 0;
	for (i = 0; i < (size_t)a->nrr; i++) {
		if (!confirm_record(a->rr[i].text, a->rr[i].len, rua,
		    sizeof(rua)))
			continue;
		ok = 1;
		if (rua[0] == '\0')
			continue;
		j = rua_addresses(rua, alt, 8);
		for (size_t k = 0; k < j; k++) {
			/* the override must stay on the same host */
			if (strcasecmp(strrchr(alt[k], '@') + 1, host) != 0)
				return 0;
			if (n < max)
				snprintf(out[n++], 320, "%s", alt[k]);
		}
	}
	if (!ok)
		return 0;
	if (n == 0)
		snprintf(out[n++], 320, "%s", rcpt);
	return (int)n;
}

struct counts {
	unsigned long long reports, queued, sent, temp, failed, refused,
	    expired, too_big;
};

static void
deliver_queue(const struct run *r, const char *qdir, struct mw_dns *dns,
    struct counts *c)
{
	DIR *d = opendir(qdir);
	struct dirent *de;
	struct mw_dns_batch *batch = mw_dns_batch_new(dns);
	char path[PATH_MAX + NAME_MAX + 2], to[8][320];
	time_t now = time(NULL);

	if (d == NULL) {
		mw_log(LOG_ERR, "queue %s: %s", qdir, strerror(errno));
		mw_dns_batch_free(batch);
		return;
	}
	while ((de = readdir(d)) != NULL) {
		struct mw_buf m = MW_BUF_INIT(SIZE_MAX / 2);
		struct qentry q;
		char *data;
		FILE *fp;
		long sz;
		int nt, k;
		enum dres res = D_SENT;

		if (de->d_name[0] == '.' || strstr(de->d_name, ".tmp") !=
		    NULL)
			continue;
		snprintf(path, sizeof(path), "%s/%s", qdir, de->d_name);
		if ((fp = fopen(path, "re")) == NULL)
			continue;
		fseek(fp, 0, SEEK_END);
		sz = ftell(fp);
		rewind(fp);
		if (sz < 0 || (unsigned long long)sz > r->rc->max_size * 2) {
			fclose(fp);
			continue;
		}
		data = xmalloc((size_t)sz + 1);
		if (fread(data, 1, (size_t)sz, fp) != (size_t)sz ||
		    qentry_parse(&q, data, (size_t)sz) == -1) {
			mw_log(LOG_ERR, "queue %s: unreadable, removed", path);
			fclose(fp);
			free(data);
			unlink(path);
			continue;
		}
		fclose(fp);
		nt = verify_dest(batch, q.rcpt, q.domain, q.org, to, 8);
		if (nt == 0) {
			mw_log(LOG_NOTICE, "report %s: %s is not authorised "
			    "to receive reports for %s (no v=DMARC1 at "
			    "%s._report._dmarc.%s): skipped", q.id, q.rcpt,
			    q.domain, q.domain, strrchr(q.rcpt, '@') + 1);
			c->refused++;
			unlink(path);
			free(data);
			continue;
		}
		if (nt < 0)
			res = D_TEMP;
		for (k = 0; k < nt && res == D_SENT; k++) {
			mw_buf_reset(&m);
			build_message(r, &q, to[k], &m);
			if (m.len > r->rc->max_size) {
				mw_log(LOG_WARNING, "report %s for %s: %zu "
				    "bytes, over report_max_size: not sent",
				    q.id, to[k], m.len);
				c->too_big++;
				res = D_PERM;
				break;
			}
			res = r->rc->smtp[0] != '\0' ? send_smtp(r, to[k], &m) :
			    send_sendmail(r, to[k], &m);
		}
		mw_buf_free(&m);
		free(data);
		if (res == D_SENT) {
			mw_log(LOG_INFO, "report %s sent to %s", q.id, q.rcpt);
			c->sent++;
			unlink(path);
		} else if (res == D_PERM) {
			mw_log(LOG_ERR, "report %s for %s: failed, dropped",
			    q.id, q.rcpt);
			c->failed++;
			unlink(path);
		} else if (now - q.queued > r->rc->retry_for) {
			mw_log(LOG_ERR, "report %s for %s: still failing after "
			    "report_retry_for, dropped", q.id, q.rcpt);
			c->expired++;
			unlink(path);
		} else {
			mw_log(LOG_NOTICE, "report %s for %s: temporary "
			    "failure, kept for the next run", q.id, q.rcpt);
			c->temp++;
		}
	}
	closedir(d);
	mw_dns_batch_free(batch);
}

/* ------------------------------------------------------------------ */
/* Failure reports (RFC 9991, RFC 6591): --failures. */

struct fentry {
	char	ruf[512], domain[300], org[300], ip[64], mail_from[320];
	char	qid[64], alignment[16], disposition[16], header_from[300];
	char	spf[400];
	struct mw_buf dkim;
	long long arrival;
	const char *hdrs;
	size_t	hlen;
};

static int
fentry_parse(struct fentry *f, const char *s, size_t n)
{
	const char *e = memmem(s, n, "\n\n", 2), *p = s, *nl;
	char k[16], v[600];

	if (e == NULL)
		return -1;
	while (p < e) {
		nl = memchr(p, '\n', (size_t)(e - p) + 1);
		if (nl == NULL || nl - p > 590)
			return -1;
		v[0] = '\0';
		if (sscanf(p, "%15s %599[^\n]", k, v) < 1)
			return -1;
		if (strcmp(k, "ruf") == 0)
			snprintf(f->ruf, sizeof(f->ruf), "%s", v);
		else if (strcmp(k, "domain") == 0)
			snprintf(f->domain, sizeof(f->domain), "%s", v);
		else if (strcmp(k, "org") == 0)
			snprintf(f->org, sizeof(f->org), "%s", v);
		else if (strcmp(k, "source_ip") == 0)
			snprintf(f->ip, sizeof(f->ip), "%s", v);
		else if (strcmp(k, "mail_from") == 0)
			snprintf(f->mail_from, sizeof(f->mail_from), "%s", v);
		else if (strcmp(k, "queue_id") == 0)
			snprintf(f->qid, sizeof(f->qid), "%s", v);
		else if (strcmp(k, "alignment") == 0)
			snprintf(f->alignment, sizeof(f->alignment), "%s", v);
		else if (strcmp(k, "disposition") == 0)
			snprintf(f->disposition, sizeof(f->disposition), "%s",
			    v);
		else if (strcmp(k, "header_from") == 0)
			snprintf(f->header_from, sizeof(f->header_from), "%s",
			    v);
		else if (strcmp(k, "spf") == 0)
			snprintf(f->spf, sizeof(f->spf), "%s", v);
		else if (strcmp(k, "dkim") == 0)
			mw_buf_printf(&f->dkim, "%s\n", v);
		else if (strcmp(k, "arrival") == 0)
			f->arrival = atoll(v);
		p = nl + 1;
	}
	f->hdrs = e + 2;
	f->hlen = n - (size_t)(e + 2 - s);
	if (f->ruf[0] == '\0' || !mw_domain_ok(f->domain, MW_DOMAIN_LDH) ||
	    f->ip[0] == '\0')
		return -1;
	return 0;
}

/* Text lines as CRLF lines, a line starting a header field kept. */
static void
crlf_lines(struct mw_buf *m, const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (s[i] == '\r')
			continue;
		if (s[i] == '\n')
			mw_buf_puts(m, "\r\n");
		else
			mw_buf_append(m, s + i, 1);
	}
	if (n > 0 && s[n - 1] != '\n')
		mw_buf_puts(m, "\r\n");
}

/* RFC 6591 / RFC 9991 failure report, CRLF line ends. */
static void
build_failure(const struct run *r, const struct fentry *f, const char *to,
    const char *id, struct mw_buf *m)
{
	char date[64], arr[64], boundary[64];
	time_t now = time(NULL), at = (time_t)f->arrival;
	struct tm tm;
	const char *p, *e;
	const char *dr = strcmp(f->disposition, "reject") == 0 ? "reject" :
	    strcmp(f->disposition, "quarantine") == 0 ? "spam" :
	    strcmp(f->disposition, "none") == 0 ? "delivered" : "other";

	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	gmtime_r(&at, &tm);
	strftime(arr, sizeof(arr), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	snprintf(boundary, sizeof(boundary), "=_mailwarden_failure_%08lx",
	    (unsigned long)(hash_str(id) & 0xffffffffUL));
	mw_buf_printf(m, "From: %s\r\nTo: <%s>\r\nDate: %s\r\n"
	    "Subject: DMARC failure report for %s (Submitter: %s)\r\n"
	    "Message-ID: <%s>\r\nMIME-Version: 1.0\r\n"
	    "Auto-Submitted: auto-generated\r\n"
	    "Content-Type: multipart/report; report-type=feedback-report;\r\n"
	    "\tboundary=\"%s\"\r\n\r\n"
	    "This is a DMARC failure report (RFC 9991).\r\n\r\n"
	    "--%s\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
	    "This is an authentication failure report for a message with\r\n"
	    "From domain %s received from IP %s on %s.\r\n\r\n"
	    "--%s\r\nContent-Type: message/feedback-report\r\n\r\n"
	    "Feedback-Type: auth-failure\r\nVersion: 1\r\n"
	    "User-Agent: mailwarden-report/" PACKAGE_VERSION "\r\n"
	    "Auth-Failure: dmarc\r\n"
	    "Authentication-Results: %s; dmarc=fail header.from=%s\r\n"
	    "Identity-Alignment: %s\r\n",
	    r->rc->from, to, date, f->domain, r->submitter, id, boundary,
	    boundary, f->header_from[0] ? f->header_from : f->domain, f->ip,
	    arr, boundary, r->cfg->authserv_id, f->header_from[0] ?
	    f->header_from : f->domain, f->alignment[0] ? f->alignment :
	    "dkim,spf");
	/* DKIM-Domain/-Selector of a failing signature (RFC 9991 3). */
	for (p = f->dkim.s; p != NULL && *p != '\0'; p = e + 1) {
		char d[300], sel[300], res[32];

		if ((e = strchr(p, '\n')) == NULL)
			break;
		if (sscanf(p, "%299s %299s %31s", d, sel, res) == 3 &&
		    strcmp(res, "pass") != 0 && mw_domain_ok(d,
		    MW_DOMAIN_LDH) && mw_domain_ok(sel, MW_DOMAIN_LDH)) {
			mw_buf_printf(m, "DKIM-Domain: %s\r\nDKIM-Identity: @%s"
			    "\r\nDKIM-Selector: %s\r\n", d, d, sel);
			break;
		}
	}
	if (f->qid[0] != '\0')
		mw_buf_printf(m, "Original-Envelope-Id: %s\r\n", f->qid);
	mw_buf_printf(m, "Original-Mail-From: <%s>\r\nArrival-Date: %s\r\n"
	    "Source-IP: %s\r\nReported-Domain: %s\r\n"
	    "Delivery-Result: %s\r\n\r\n"
	    "--%s\r\nContent-Type: text/rfc822-headers\r\n\r\n",
	    f->mail_from, arr, f->ip, f->header_from[0] ? f->header_from :
	    f->domain, dr, boundary);
	crlf_lines(m, f->hdrs, f->hlen);
	mw_buf_printf(m, "\r\n--%s--\r\n", boundary);
}

struct fcounts {
	unsigned long long files, sent, limited, refused, temp, failed, bad;
};

/*
 * Send the failure spool: oldest first; per policy domain at most
 * failure_rate reports per failure_period (report_state_dir/
 * failure-state: "domain window-start count"), the rest dropped.
 */
static void
send_failures(const struct run *r, struct mw_dns *dns, struct fcounts *fc)
{
	const char *dir = r->rc->failure_spool;
	struct dirent **names = NULL;
	struct mw_dns_batch *batch;
	struct hmap win = { NULL, 0, 0 };
	char path[PATH_MAX + NAME_MAX + 2], spath[PATH_MAX], dom[300];
	char to[8][320], ruf[8][320], id[400];
	long long ws, cnt;
	time_t now = time(NULL);
	struct hent *he, *wv;
	FILE *fp;
	int n, i, isnew;
	size_t k;
	struct mw_buf st = MW_BUF_INIT(SIZE_MAX / 2);

	snprintf(spath, sizeof(spath), "%s/failure-state", r->rc->state_dir);
	if ((fp = fopen(spath, "re")) != NULL) {
		while (fscanf(fp, "%299s %lld %lld", dom, &ws, &cnt) == 3) {
			he = hmap_get(&win, dom, &isnew);
			he->n = (unsigned long long)cnt;
			he->p = (void *)(intptr_t)ws;
		}
		fclose(fp);
	}
	if ((n = scandir(dir, &names, NULL, alphasort)) < 0) {
		mw_log(LOG_ERR, "failure_spool %s: %s", dir, strerror(errno));
		hmap_free(&win, NULL);
		return;
	}
	batch = mw_dns_batch_new(dns);
	for (i = 0; i < n; i++) {
		struct fentry f;
		struct mw_buf m = MW_BUF_INIT(SIZE_MAX / 2);
		char *data = NULL;
		long sz;
		size_t nr;
		int nt, sent = 0, temp = 0;

		if (names[i]->d_name[0] == '.' ||
		    strstr(names[i]->d_name, ".tmp") != NULL)
			goto next;
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name);
		if ((fp = fopen(path, "re")) == NULL)
			goto next;
		fc->files++;
		fseek(fp, 0, SEEK_END);
		sz = ftell(fp);
		rewind(fp);
		memset(&f, 0, sizeof(f));
		f.dkim.max = 64 * 1024;
		if (sz < 0 || sz > 256 * 1024 || (data = xmalloc((size_t)sz +
		    1)) == NULL || fread(data, 1, (size_t)sz, fp) !=
		    (size_t)sz || fentry_parse(&f, data, (size_t)sz) == -1) {
			fclose(fp);
			mw_log(LOG_ERR, "failure_spool %s: unreadable, removed",
			    path);
			fc->bad++;
			unlink(path);
			mw_buf_free(&f.dkim);
			free(data);
			goto next;
		}
		fclose(fp);
		he = hmap_get(&win, f.domain, &isnew);
		if (isnew || now - (long long)(intptr_t)he->p >=
		    r->rc->failure_period) {
			he->p = (void *)(intptr_t)now;
			he->n = 0;
		}
		if ((long)he->n >= r->rc->failure_rate) {
			fc->limited++;
			if (r->verbose)
				mw_log(LOG_INFO, "failure report for %s: over "
				    "failure_rate, dropped", f.domain);
			unlink(path);
			mw_buf_free(&f.dkim);
			free(data);
			goto next;
		}
		nr = rua_addresses(f.ruf, ruf, 8);
		for (k = 0; k < nr; k++) {
			enum dres res;
			int j;

			nt = verify_dest(batch, ruf[k], f.domain, f.org, to, 8);
			if (nt == 0) {
				mw_log(LOG_NOTICE, "failure report for %s: %s "
				    "is not authorised to receive reports for "
				    "%s: skipped", f.domain, ruf[k], f.domain);
				fc->refused++;
				continue;
			}
			if (nt < 0) {
				temp = 1;
				continue;
			}
			for (j = 0; j < nt; j++) {
				snprintf(id, sizeof(id), "%s.%d.%d@%s",
				    names[i]->d_name, (int)k, j, r->submitter);
				sanitize_name(id);
				*strrchr(id, '_') = '@';
				mw_buf_reset(&m);
				build_failure(r, &f, to[j], id, &m);
				res = r->rc->smtp[0] != '\0' ? send_smtp(r,
				    to[j], &m) : send_sendmail(r, to[j], &m);
				if (res == D_SENT) {
					sent = 1;
					fc->sent++;
					mw_log(LOG_INFO, "failure report for %s "
					    "sent to %s", f.domain, to[j]);
				} else if (res == D_TEMP)
					temp = 1;
				else
					fc->failed++;
			}
		}
		if (sent)
			he->n++;
		if (temp && now - f.arrival < r->rc->retry_for)
			fc->temp++;	/* kept for the next run */
		else
			unlink(path);
		mw_buf_free(&m);
		mw_buf_free(&f.dkim);
		free(data);
next:
		free(names[i]);
	}
	free(names);
	mw_dns_batch_free(batch);
	wv = hmap_sorted(&win);
	for (k = 0; k < win.n; k++)
		mw_buf_printf(&st, "%s %lld %llu\n", wv[k].key,
		    (long long)(intptr_t)wv[k].p, wv[k].n);
	free(wv);
	if (write_file(spath, mw_buf_str(&st), st.len, 0640) == -1)
		mw_log(LOG_ERR, "%s: %s", spath, strerror(errno));
	mw_buf_free(&st);
	hmap_free(&win, NULL);
}

/* ------------------------------------------------------------------ */

static void
usage(void)
{
	fprintf(stderr, "usage: mailwarden-report [-c mailwarden.ini] "
	    "[--history FILE]... [--end now|UNIX-TIME]\n"
	    "       [--out DIR] [--no-send] [-v]\n"
	    "       mailwarden-report --failures [-c mailwarden.ini] [-v]\n");
	exit(1);
}

static int
mkdir_p(const char *dir)
{
	if (mkdir(dir, 0750) == -1 && errno != EEXIST)
		return -1;
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "history", required_argument, NULL, 'H' },
		{ "end", required_argument, NULL, 'e' },
		{ "out", required_argument, NULL, 'o' },
		{ "no-send", no_argument, NULL, 'n' },
		{ "failures", no_argument, NULL, 'f' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char *cfgpath = SYSCONFDIR "/mailwarden/mailwarden.ini";
	const char *outdir = NULL, **hist = NULL;
	size_t nhist = 0, i, j;
	int ch, no_send = 0, lockfd = -1, failures = 0;
	struct mw_config *cfg;
	struct run r;
	struct counts c;
	char err[600], statepath[PATH_MAX], qdir[PATH_MAX], path[PATH_MAX];
	char submitter[300], rid[700], fname[900];
	struct mw_dns *dns = NULL;
	struct hent *gv;
	time_t now = time(NULL);
	char *endp;

	memset(&r, 0, sizeof(r));
	memset(&c, 0, sizeof(c));
	hist = xmalloc((size_t)argc * sizeof(*hist));
	r.end = -1;
	while ((ch = getopt_long(argc, argv, "c:v", lopts, NULL)) != -1) {
		switch (ch) {
		case 'c': cfgpath = optarg; break;
		case 'H': hist[nhist++] = optarg; break;
		case 'o': outdir = optarg; break;
		case 'n': no_send = 1; break;
		case 'f': failures = 1; break;
		case 'v': r.verbose = 1; break;
		case 'e':
			r.closed_early = 1;
			if (strcmp(optarg, "now") == 0)
				r.end = (long long)now;
			else {
				errno = 0;
				r.end = strtoll(optarg, &endp, 10);
				if (errno != 0 || *endp != '\0' || r.end < 0)
					usage();
			}
			break;
		default: usage();
		}
	}
	if (optind != argc)
		usage();
	mw_log_open("mailwarden-report", LOG_MAIL, LOG_INFO,
	    isatty(2) || outdir != NULL || r.verbose);
	if (mw_config_load(cfgpath, &cfg, err, sizeof(err)) == -1) {
		fprintf(stderr, "mailwarden-report: %s\n", err);
		return 1;
	}
	r.cfg = cfg;
	if ((r.rc = mw_dmarc_report_cfg(cfg)) == NULL) {
		fprintf(stderr, "mailwarden-report: no [dmarc] module\n");
		return 1;
	}
	if (failures) {
		struct fcounts fc;

		memset(&fc, 0, sizeof(fc));
		if (r.rc->from[0] == '\0') {
			fprintf(stderr, "mailwarden-report: %s: set [dmarc] "
			    "report_from to send failure reports\n", cfgpath);
			return 1;
		}
		snprintf(submitter, sizeof(submitter), "%s",
		    r.rc->submitter[0] ? r.rc->submitter :
		    strrchr(r.rc->from, '@') + 1);
		r.submitter = submitter;
		if (mkdir_p(r.rc->state_dir) == -1) {
			fprintf(stderr, "mailwarden-report: %s: %s\n",
			    r.rc->state_dir, strerror(errno));
			return 1;
		}
		snprintf(path, sizeof(path), "%s/failure-lock",
		    r.rc->state_dir);
		lockfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
		if (lockfd == -1 || flock(lockfd, LOCK_EX) == -1 ||
		    mw_dns_new(&dns, cfg->dns_nameservers, cfg->dns_timeout_ms,
		    cfg->dns_tries, 256, err, sizeof(err)) == -1) {
			fprintf(stderr, "mailwarden-report: %s\n",
			    lockfd == -1 ? strerror(errno) : err);
			return 1;
		}
		send_failures(&r, dns, &fc);
		mw_dns_free(dns);
		printf("failure-reports %llu sent %llu rate-limited %llu "
		    "unauthorised %llu deferred %llu failed %llu bad %llu\n",
		    fc.files, fc.sent, fc.limited, fc.refused, fc.temp,
		    fc.failed, fc.bad);
		mw_config_free(cfg);
		free(hist);
		close(lockfd);
		return 0;
	}
	if (nhist == 0 && !r.rc->redis && r.rc->history_file[0] != '\0')
		hist[nhist++] = r.rc->history_file;
	if (nhist == 0 && !r.rc->redis) {
		fprintf(stderr, "mailwarden-report: %s: [dmarc] history_file "
		    "is not set (nor history_redis = yes, nor --history)\n",
		    cfgpath);
		return 1;
	}
	if (r.rc->submitter[0] != '\0')
		snprintf(submitter, sizeof(submitter), "%s", r.rc->submitter);
	else if (r.rc->from[0] != '\0')
		snprintf(submitter, sizeof(submitter), "%s",
		    strrchr(r.rc->from, '@') + 1);
	else
		snprintf(submitter, sizeof(submitter), "%s", cfg->authserv_id);
	r.submitter = submitter;
	r.org_name = r.rc->org_name[0] != '\0' ? r.rc->org_name :
	    cfg->authserv_id;
	if (outdir == NULL && r.rc->from[0] == '\0') {
		fprintf(stderr, "mailwarden-report: %s: set [dmarc] "
		    "report_from to send reports (or use --out DIR)\n",
		    cfgpath);
		return 1;
	}
	/* Whole periods end at the last interval boundary. */
	if (r.end < 0)
		r.end = (long long)now / r.rc->interval * r.rc->interval;

	snprintf(statepath, sizeof(statepath), "%s/state", r.rc->state_dir);
	snprintf(qdir, sizeof(qdir), "%s/queue", r.rc->state_dir);
	if (outdir == NULL) {
		if (mkdir_p(r.rc->state_dir) == -1 || mkdir_p(qdir) == -1) {
			fprintf(stderr, "mailwarden-report: %s: %s\n",
			    r.rc->state_dir, strerror(errno));
			return 1;
		}
		snprintf(path, sizeof(path), "%s/lock", r.rc->state_dir);
		lockfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
		if (lockfd == -1 || flock(lockfd, LOCK_EX) == -1) {
			fprintf(stderr, "mailwarden-report: %s: %s\n", path,
			    strerror(errno));
			return 1;
		}
		state_load(&r, statepath);
	}
	for (i = 0; i < nhist; i++)
		if (read_history(&r, hist[i]) == -1)
			return 1;
	if (nhist == 0) {	/* history_redis = yes */
		struct mw_redis *redis;

		if (mw_redis_new(&cfg->redis, &redis, err, sizeof(err)) == -1) {
			fprintf(stderr, "mailwarden-report: redis: %s\n", err);
			return 1;
		}
		if (read_redis(&r, redis) == -1) {
			fprintf(stderr, "mailwarden-report: cannot read the "
			    "history from redis %s: nothing reported\n",
			    mw_redis_target(redis));
			mw_redis_free(redis);
			return 1;
		}
		mw_redis_free(redis);
	}

	/* The reports: every group whose period is over (or closed). */
	gv = hmap_sorted(&r.groups);
	for (i = 0; i < r.groups.n; i++) {
		struct group *g = gv[i].p;
		struct mw_buf xml = MW_BUF_INIT(SIZE_MAX / 2);
		struct mw_buf gz = MW_BUF_INIT(SIZE_MAX / 2);
		struct hent *he;
		long long begin = g->begin, end = g->end, until;
		char to[16][320];
		size_t nto;
		int isnew;

		he = hmap_find(&r.state, g->domain);
		until = he != NULL ? (long long)he->n : 0;
		if (until > begin)
			begin = until;
		if (end > r.end) {
			if (!r.closed_early)
				continue;	/* not over yet */
			end = r.end;
		}
		if (begin >= end)
			continue;
		build_xml(&r, g, begin, end, &xml);
		if (gzip_buf(xml.s, xml.len, &gz) == -1) {
			mw_log(LOG_ERR, "%s: gzip failed", g->domain);
			goto next;
		}
		c.reports++;
		/* receiver!policy-domain!begin!end.xml.gz (RFC 9990 3.1.3) */
		snprintf(fname, sizeof(fname), "%s!%s!%lld!%lld.xml.gz",
		    r.submitter, g->domain, begin, end);
		report_id(&r, g, begin, end, rid, sizeof(rid));
		if (outdir != NULL) {
			snprintf(path, sizeof(path), "%s/%s", outdir, fname);
			if (write_file(path, gz.s, gz.len, 0644) == -1)
				mw_log(LOG_ERR, "%s: %s", path,
				    strerror(errno));
			else
				printf("report %s rua %s messages %llu "
				    "records %zu\n", fname, g->pub.rua ?
				    g->pub.rua : "-", g->messages, g->rows.n);
			goto next;
		}
		nto = g->pub.rua != NULL ? rua_addresses(g->pub.rua, to, 16) :
		    0;
		for (j = 0; j < nto; j++)
			if (queue_report(&r, qdir, fname, (int)j, g, to[j], rid,
			    &gz) == 0)
				c.queued++;
		he = hmap_get(&r.state, g->domain, &isnew);
		if (end > (long long)he->n)
			he->n = (unsigned long long)end;
next:
		mw_buf_free(&xml);
		mw_buf_free(&gz);
	}
	free(gv);
	if (outdir == NULL) {
		if (state_save(&r, statepath) == -1) {
			fprintf(stderr, "mailwarden-report: %s: %s\n",
			    statepath, strerror(errno));
			return 1;
		}
		if (!no_send) {
			if (mw_dns_new(&dns, cfg->dns_nameservers,
			    cfg->dns_timeout_ms, cfg->dns_tries, 256, err,
			    sizeof(err)) == -1) {
				fprintf(stderr, "mailwarden-report: dns: %s\n",
				    err);
				return 1;
			}
			deliver_queue(&r, qdir, dns, &c);
			mw_dns_free(dns);
		}
	}
	printf("lines %llu records %llu skipped %llu already-reported %llu "
	    "later %llu reports %llu queued %llu sent %llu deferred %llu "
	    "failed %llu unauthorised %llu too-big %llu expired %llu\n",
	    r.lines, r.records, r.skipped, r.already, r.later, c.reports,
	    c.queued, c.sent, c.temp, c.failed, c.refused, c.too_big,
	    c.expired);
	if (r.skipped > 0)
		mw_log(LOG_WARNING, "%llu history lines were not valid "
		    "records: skipped", r.skipped);
	hmap_free(&r.groups, group_free);
	hmap_free(&r.state, NULL);
	mw_config_free(cfg);
	free(hist);
	if (lockfd != -1)
		close(lockfd);
	return 0;
}
