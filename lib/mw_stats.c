/*
 * mw_stats -- count what the daemon does and render it as Prometheus
 * metrics.  See mw_stats.h for the calls; the status page is rendered
 * by mw_statuspage.c from the same struct (mw_stats_priv.h).
 *
 * Every counting function takes st == NULL and then returns at once.
 * Counters and histogram buckets are relaxed atomics: a scrape may see
 * one bucket a message ahead of the sum, which Prometheus tolerates.
 */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mw_buf.h"
#include "mw_module.h"
#include "mw_stats_priv.h"
#include "mw_text.h"

const double mw_stats_bucket_le[MW_STATS_NBUCKETS] = {
	0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
	1, 2.5, 5, 10
};
const char *const mw_stats_words[MW_STATS_NWORDS] = {
	"none", "pass", "fail", "softfail", "neutral", "temperror",
	"permerror", "policy", "greylisted", "unchecked", "other"
};
const char *const mw_stats_verdicts[MW_STATS_NVERDICTS] = {
	"accept", "quarantine", "tempfail", "reject", "discard", "none"
};
const char *const mw_stats_stages[MW_STATS_NSTAGES] = {
	"connect", "helo", "mail", "rcpt", "data", "eom", "abort"
};
const char *const mw_stats_phases[MW_STP__N] = {
	"connect", "helo", "mail", "rcpt", "data", "eom"
};

uint64_t
mw_stats_now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000ULL + (uint64_t)t.tv_nsec;
}

struct mw_stats *
mw_stats_new(size_t history, int show_addresses)
{
	struct mw_stats *st;

	if ((st = calloc(1, sizeof(*st))) == NULL)
		return NULL;
	if (pthread_mutex_init(&st->lock, NULL) != 0) {
		free(st);
		return NULL;
	}
	st->started = time(NULL);
	mw_stats_configure(st, history, show_addresses);
	return st;
}

void
mw_stats_free(struct mw_stats *st)
{
	if (st == NULL)
		return;
	pthread_mutex_destroy(&st->lock);
	free(st->ring);
	free(st);
}

void
mw_stats_configure(struct mw_stats *st, size_t history, int show_addresses)
{
	struct mw_stats_ent *ring = NULL;

	if (st == NULL)
		return;
	pthread_mutex_lock(&st->lock);
	st->show_addresses = show_addresses;
	if (history != st->ring_size) {
		if (history > 0 && (ring = calloc(history, sizeof(*ring))) ==
		    NULL)
			history = 0;
		free(st->ring);
		st->ring = ring;
		st->ring_size = history;
		st->ring_next = st->ring_count = 0;
	}
	pthread_mutex_unlock(&st->lock);
}

void
mw_stats_inc(struct mw_stats *st, enum mw_stat which)
{
	if (st != NULL && which < MW_ST__N)
		atomic_fetch_add_explicit(&st->c[which], 1,
		    memory_order_relaxed);
}

void
mw_stats_sessions_active(struct mw_stats *st, int delta)
{
	if (st != NULL)
		atomic_fetch_add_explicit(&st->sessions_active, delta,
		    memory_order_relaxed);
}

void
mw_stats_redis_pool_idle(struct mw_stats *st, long idle)
{
	if (st != NULL)
		atomic_store_explicit(&st->redis_idle, idle,
		    memory_order_relaxed);
}

static double
mono_s(void)
{
	return (double)mw_stats_now_ns() / 1e9;
}

void
mw_stats_redis_master(struct mw_stats *st, const char *master)
{
	if (st == NULL)
		return;
	pthread_mutex_lock(&st->lock);
	if (master != NULL) {
		if (st->redis_no_master_since > 0)
			st->redis_no_master_s += mono_s() -
			    st->redis_no_master_since;
		st->redis_no_master_since = 0;
		snprintf(st->redis_master, sizeof(st->redis_master), "%s",
		    master);
	} else if (st->redis_master[0] != '\0' || !st->redis_used) {
		st->redis_master[0] = '\0';
		st->redis_no_master_since = mono_s();
	}
	st->redis_used = 1;
	pthread_mutex_unlock(&st->lock);
}

/* Copy of the master state; seconds without a master so far. */
void
mw_stats_redis_master_get(struct mw_stats *st, int *used, char *master,
    size_t len, double *no_master_s)
{
	pthread_mutex_lock(&st->lock);
	*used = st->redis_used;
	snprintf(master, len, "%s", st->redis_master);
	*no_master_s = st->redis_no_master_s;
	if (st->redis_no_master_since > 0)
		*no_master_s += mono_s() - st->redis_no_master_since;
	pthread_mutex_unlock(&st->lock);
}

static void
observe(struct mw_stats_hist *h, double seconds)
{
	size_t i;

	if (seconds < 0)
		seconds = 0;
	for (i = 0; i < MW_STATS_NBUCKETS; i++)
		if (seconds <= mw_stats_bucket_le[i])
			break;
	atomic_fetch_add_explicit(&h->b[i], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->sum_ns,
	    (unsigned long long)(seconds * 1e9), memory_order_relaxed);
}

void
mw_stats_check_result(struct mw_stats *st, size_t module, const char *result)
{
	size_t w;

	if (st == NULL || module >= MW_MAX_MODULES || result == NULL)
		return;
	for (w = 0; w < MW_STATS_NWORDS - 1; w++)
		if (strcmp(result, mw_stats_words[w]) == 0)
			break;
	atomic_fetch_add_explicit(&st->check[module][w], 1,
	    memory_order_relaxed);
}

void
mw_stats_check_duration(struct mw_stats *st, size_t module, double seconds)
{
	if (st != NULL && module < MW_MAX_MODULES)
		observe(&st->check_hist[module], seconds);
}

void
mw_stats_phase_duration(struct mw_stats *st, enum mw_stats_phase ph,
    double seconds)
{
	if (st != NULL && ph < MW_STP__N)
		observe(&st->phase_hist[ph], seconds);
}

void
mw_stats_dnsbl_listed(struct mw_stats *st, const char *zone)
{
	size_t i;

	if (st == NULL || zone == NULL)
		return;
	pthread_mutex_lock(&st->lock);
	for (i = 0; i < st->nzones; i++)
		if (strcmp(st->zones[i].name, zone) == 0)
			break;
	if (i == st->nzones && st->nzones < MW_STATS_MAX_ZONES) {
		snprintf(st->zones[i].name, sizeof(st->zones[i].name), "%s",
		    zone);
		st->nzones++;
	}
	if (i < st->nzones)
		st->zones[i].n++;
	pthread_mutex_unlock(&st->lock);
}

static size_t
index_of(const char *const *v, size_t n, const char *s)
{
	size_t i;

	for (i = 0; s != NULL && i < n; i++)
		if (strcmp(v[i], s) == 0)
			return i;
	return n;
}

/* The ring holds network text: printable ASCII only (mw_text.h). */
static void
copy_text(char *out, size_t outlen, const char *in)
{
	(void)mw_printable(out, outlen, in);
}

/* "192.0.2.10" -> "192.0.2.x", "2001:db8:1:2::5" -> "2001:db8:1:x". */
static void
mask_ip(char *out, size_t outlen, const char *ip)
{
	const char *p;
	size_t n;

	if (ip == NULL || strcmp(ip, "unknown") == 0) {
		copy_text(out, outlen, ip);
		return;
	}
	if (strchr(ip, ':') == NULL) {
		p = strrchr(ip, '.');
		n = p != NULL ? (size_t)(p - ip) : 0;
		snprintf(out, outlen, "%.*s.x", (int)n, ip);
		return;
	}
	/* Keep three groups (a /48). */
	for (p = ip, n = 0; *p != '\0' && n < 3; p++)
		if (*p == ':')
			n++;
	snprintf(out, outlen, "%.*sx", (int)(p - ip), ip);
}

/*
 * Mask every local part: "<bob@example.org>" -> "<*@example.org>"; a
 * local part runs back to '<', ',' or the start (and a space when
 * `words`: free text such as a reply).
 */
static void
mask_addresses(char *out, size_t outlen, const char *in, int words)
{
	size_t o = 0, i, j;

	if (in == NULL)
		in = "";
	for (i = 0; in[i] != '\0' && o + 2 < outlen; i++) {
		if (in[i] == '@') {
			/* Drop the local part already copied, back to a delimiter. */
			for (j = o; j > 0 && out[j - 1] != '<' &&
			    out[j - 1] != ',' && !(words && out[j - 1] == ' ');
			    j--)
				;
			o = j;
			out[o++] = '*';
		}
		out[o++] = mw_printable_char((unsigned char)in[i]);
	}
	out[o] = '\0';
}

/* One address: "bob@example.org" -> "*@example.org" ("" stays ""). */
static void
mask_mailbox(char *out, size_t outlen, const char *in)
{
	const char *at = in != NULL ? strrchr(in, '@') : NULL;

	if (in == NULL || *in == '\0')
		copy_text(out, outlen, "");
	else if (at == NULL)
		copy_text(out, outlen, "*");
	else {
		snprintf(out, outlen, "*");
		copy_text(out + 1, outlen - 1, at);
	}
}

void
mw_stats_transaction(struct mw_stats *st, const struct mw_stats_txn *t)
{
	size_t v, g, i;
	long minute;
	struct mw_stats_minute *m;

	if (st == NULL)
		return;
	v = index_of(mw_stats_verdicts, MW_STATS_NVERDICTS, t->verdict);
	g = index_of(mw_stats_stages, MW_STATS_NSTAGES, t->stage);
	if (v == MW_STATS_NVERDICTS)
		v = MW_STATS_NVERDICTS - 1;
	if (g == MW_STATS_NSTAGES)
		g = MW_STATS_NSTAGES - 1;
	atomic_fetch_add_explicit(&st->txn[v][g], 1, memory_order_relaxed);
	observe(&st->txn_hist, t->seconds);

	minute = (long)(t->when / 60);
	pthread_mutex_lock(&st->lock);
	m = &st->minutes[minute % MW_STATS_MINUTES];
	if (m->minute != minute) {
		memset(m, 0, sizeof(*m));
		m->minute = minute;
	}
	m->n[v]++;

	if ((v == 2 || v == 3) && t->refused_by != NULL) {
		for (i = 0; i < st->nreasons; i++)
			if (strcmp(st->reasons[i].check, t->refused_by) == 0 &&
			    strcmp(st->reasons[i].verdict,
			    mw_stats_verdicts[v]) == 0 &&
			    st->reasons[i].code == t->code &&
			    strcmp(st->reasons[i].xcode, t->xcode ? t->xcode :
			    "") == 0)
				break;
		if (i == st->nreasons && i < MW_STATS_MAX_REASONS) {
			copy_text(st->reasons[i].check,
			    sizeof(st->reasons[i].check), t->refused_by);
			copy_text(st->reasons[i].verdict,
			    sizeof(st->reasons[i].verdict), mw_stats_verdicts[v]);
			copy_text(st->reasons[i].xcode,
			    sizeof(st->reasons[i].xcode), t->xcode);
			st->reasons[i].code = t->code;
			st->nreasons++;
		}
		if (i < st->nreasons) {
			st->reasons[i].n++;
			if (st->show_addresses)
				copy_text(st->reasons[i].text,
				    sizeof(st->reasons[i].text), t->text);
			else
				mask_addresses(st->reasons[i].text,
				    sizeof(st->reasons[i].text), t->text, 1);
		}
	}

	if (st->ring_size > 0) {
		struct mw_stats_ent *e = &st->ring[st->ring_next];

		memset(e, 0, sizeof(*e));
		e->when = t->when;
		e->seconds = t->seconds;
		e->score = t->score;
		e->code = t->code;
		copy_text(e->qid, sizeof(e->qid), t->queue_id);
		copy_text(e->name, sizeof(e->name), t->client_name);
		copy_text(e->helo, sizeof(e->helo), t->helo);
		copy_text(e->results, sizeof(e->results), t->results);
		copy_text(e->verdict, sizeof(e->verdict), mw_stats_verdicts[v]);
		copy_text(e->stage, sizeof(e->stage), mw_stats_stages[g]);
		copy_text(e->xcode, sizeof(e->xcode), t->xcode);
		copy_text(e->refused_by, sizeof(e->refused_by), t->refused_by);
		if (st->show_addresses) {
			copy_text(e->ip, sizeof(e->ip), t->client_ip);
			copy_text(e->from, sizeof(e->from), t->mail_from);
			copy_text(e->rcpts, sizeof(e->rcpts), t->rcpts);
			copy_text(e->text, sizeof(e->text), t->text);
		} else {
			mask_ip(e->ip, sizeof(e->ip), t->client_ip);
			mask_mailbox(e->from, sizeof(e->from), t->mail_from);
			mask_addresses(e->rcpts, sizeof(e->rcpts), t->rcpts, 0);
			mask_addresses(e->text, sizeof(e->text), t->text, 1);
		}
		st->ring_next = (st->ring_next + 1) % st->ring_size;
		if (st->ring_count < st->ring_size)
			st->ring_count++;
	}
	pthread_mutex_unlock(&st->lock);
}

void
mw_stats_config(struct mw_stats *st, const char *path, int reload, int ok)
{
	time_t now = time(NULL);

	if (st == NULL)
		return;
	pthread_mutex_lock(&st->lock);
	if (ok) {
		copy_text(st->config_path, sizeof(st->config_path), path);
		st->config_loaded = now;
	}
	if (reload && ok) {
		st->reloads_ok++;
		st->last_reload_ok = now;
	} else if (reload) {
		st->reloads_failed++;
		st->last_reload_failed = now;
	}
	pthread_mutex_unlock(&st->lock);
}

/* ------------------------------------------------------------- render --- */

static unsigned long
ld(atomic_ulong *a)
{
	return atomic_load_explicit(a, memory_order_relaxed);
}

/* A label value: backslash, double quote and newline escaped. */
static void
label_value(struct mw_buf *b, const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s == '\\' || *s == '"')
			mw_buf_printf(b, "\\%c", *s);
		else if (*s == '\n')
			mw_buf_puts(b, "\\n");
		else
			mw_buf_append(b, s, 1);
	}
}

static void
family(struct mw_buf *b, const char *name, const char *type,
    const char *help)
{
	mw_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void
counter(struct mw_buf *b, const char *name, const char *help,
    unsigned long v)
{
	family(b, name, "counter", help);
	mw_buf_printf(b, "%s %lu\n", name, v);
}

/* One histogram series; labels is "" or `check="spf"`. */
static void
histogram(struct mw_buf *b, const char *name, const char *labels,
    struct mw_stats_hist *h)
{
	unsigned long cum = 0;
	size_t i;
	const char *sep = labels[0] != '\0' ? "," : "";

	for (i = 0; i < MW_STATS_NBUCKETS; i++) {
		cum += ld(&h->b[i]);
		mw_buf_printf(b, "%s_bucket{%s%sle=\"%g\"} %lu\n", name, labels,
		    sep, mw_stats_bucket_le[i], cum);
	}
	cum += ld(&h->b[MW_STATS_NBUCKETS]);
	mw_buf_printf(b, "%s_bucket{%s%sle=\"+Inf\"} %lu\n", name, labels, sep,
	    cum);
	mw_buf_printf(b, "%s_sum%s%s%s %.9f\n", name, labels[0] ? "{" : "",
	    labels, labels[0] ? "}" : "",
	    (double)atomic_load_explicit(&h->sum_ns, memory_order_relaxed) /
	    1e9);
	mw_buf_printf(b, "%s_count%s%s%s %lu\n", name, labels[0] ? "{" : "",
	    labels, labels[0] ? "}" : "", cum);
}

static unsigned long
hist_count(struct mw_stats_hist *h)
{
	unsigned long n = 0;
	size_t i;

	for (i = 0; i <= MW_STATS_NBUCKETS; i++)
		n += ld(&h->b[i]);
	return n;
}

void
mw_stats_render_metrics(struct mw_stats *st, struct mw_buf *b)
{
	size_t i, j;
	char labels[128];
	unsigned long reloads_ok, reloads_failed;
	time_t last_ok, started;

	family(b, "mailwarden_build_info", "gauge",
	    "Version of the running mailwarden (always 1).");
	mw_buf_printf(b, "mailwarden_build_info{version=\"%s\"} 1\n",
	    PACKAGE_VERSION);
	pthread_mutex_lock(&st->lock);
	reloads_ok = st->reloads_ok;
	reloads_failed = st->reloads_failed;
	last_ok = st->last_reload_ok != 0 ? st->last_reload_ok :
	    st->config_loaded;
	started = st->started;
	pthread_mutex_unlock(&st->lock);
	family(b, "mailwarden_start_time_seconds", "gauge",
	    "When the daemon started, seconds since the epoch.");
	mw_buf_printf(b, "mailwarden_start_time_seconds %lld\n",
	    (long long)started);

	family(b, "mailwarden_sessions_active", "gauge",
	    "SMTP connections being filtered now.");
	mw_buf_printf(b, "mailwarden_sessions_active %ld\n",
	    atomic_load_explicit(&st->sessions_active, memory_order_relaxed));
	counter(b, "mailwarden_sessions_total",
	    "SMTP connections filtered since the start.",
	    ld(&st->c[MW_ST_SESSIONS]));

	family(b, "mailwarden_transactions_total", "counter",
	    "Mail transactions by final verdict and the SMTP stage that gave "
	    "it (abort: ended without a verdict).");
	for (i = 0; i < MW_STATS_NVERDICTS; i++)
		for (j = 0; j < MW_STATS_NSTAGES; j++) {
			unsigned long n = ld(&st->txn[i][j]);
			const char *v = mw_stats_verdicts[i];
			const char *g = mw_stats_stages[j];

			/* Always the usual ones, so rate() sees them from 0. */
			if (n == 0 && !(strcmp(v, "none") == 0 ?
			    strcmp(g, "abort") == 0 : strcmp(v, "accept") == 0 ||
			    strcmp(v, "quarantine") == 0 ? strcmp(g, "eom") == 0 :
			    strcmp(v, "discard") != 0 && (strcmp(g, "rcpt") == 0 ||
			    strcmp(g, "eom") == 0)))
				continue;
			mw_buf_printf(b, "mailwarden_transactions_total{verdict="
			    "\"%s\",stage=\"%s\"} %lu\n", v, g, n);
		}
	family(b, "mailwarden_transaction_duration_seconds", "histogram",
	    "Time from MAIL FROM to the end of the transaction, as the "
	    "milter saw it.");
	histogram(b, "mailwarden_transaction_duration_seconds", "",
	    &st->txn_hist);

	family(b, "mailwarden_check_results_total", "counter",
	    "Results of each check, one per Authentication-Results resinfo "
	    "(or the check's own word: greylisted, unchecked).");
	for (i = 0; i < mw_nmodules && i < MW_MAX_MODULES; i++)
		for (j = 0; j < MW_STATS_NWORDS; j++) {
			unsigned long n = ld(&st->check[i][j]);

			if (n > 0)
				mw_buf_printf(b, "mailwarden_check_results_total"
				    "{check=\"%s\",result=\"%s\"} %lu\n",
				    mw_modules[i]->name, mw_stats_words[j], n);
		}
	family(b, "mailwarden_check_duration_seconds", "histogram",
	    "Time a check held the SMTP session up per transaction (its "
	    "lookups and waits), for transactions it gave a result in.");
	for (i = 0; i < mw_nmodules && i < MW_MAX_MODULES; i++) {
		if (hist_count(&st->check_hist[i]) == 0)
			continue;
		snprintf(labels, sizeof(labels), "check=\"%s\"",
		    mw_modules[i]->name);
		histogram(b, "mailwarden_check_duration_seconds", labels,
		    &st->check_hist[i]);
	}
	family(b, "mailwarden_smtp_phase_duration_seconds", "histogram",
	    "Time mailwarden took to answer each SMTP phase (data: headers "
	    "and body of one message together).");
	for (i = 0; i < MW_STP__N; i++) {
		snprintf(labels, sizeof(labels), "phase=\"%s\"",
		    mw_stats_phases[i]);
		histogram(b, "mailwarden_smtp_phase_duration_seconds", labels,
		    &st->phase_hist[i]);
	}

	family(b, "mailwarden_dnsbl_listings_total", "counter",
	    "Clients listed, per DNSBL/DNSWL zone.");
	pthread_mutex_lock(&st->lock);
	for (i = 0; i < st->nzones; i++) {
		mw_buf_puts(b, "mailwarden_dnsbl_listings_total{zone=\"");
		label_value(b, st->zones[i].name);
		mw_buf_printf(b, "\"} %lu\n", st->zones[i].n);
	}
	pthread_mutex_unlock(&st->lock);

	counter(b, "mailwarden_dns_queries_total",
	    "DNS queries sent to a server (cache misses).",
	    ld(&st->c[MW_ST_DNS_QUERIES]));
	counter(b, "mailwarden_dns_cache_hits_total",
	    "DNS questions answered from the cache.",
	    ld(&st->c[MW_ST_DNS_CACHE_HITS]));
	counter(b, "mailwarden_dns_cache_misses_total",
	    "DNS questions not in the cache.",
	    ld(&st->c[MW_ST_DNS_CACHE_MISSES]));
	family(b, "mailwarden_dns_errors_total", "counter",
	    "DNS queries that failed for now, by cause.");
	mw_buf_printf(b, "mailwarden_dns_errors_total{error=\"timeout\"} %lu\n"
	    "mailwarden_dns_errors_total{error=\"servfail\"} %lu\n"
	    "mailwarden_dns_errors_total{error=\"other\"} %lu\n",
	    ld(&st->c[MW_ST_DNS_TIMEOUTS]), ld(&st->c[MW_ST_DNS_SERVFAIL]),
	    ld(&st->c[MW_ST_DNS_OTHER_ERRORS]));

	counter(b, "mailwarden_redis_commands_total",
	    "Commands sent to Redis.", ld(&st->c[MW_ST_REDIS_COMMANDS]));
	counter(b, "mailwarden_redis_errors_total",
	    "Redis commands or connections that failed.",
	    ld(&st->c[MW_ST_REDIS_ERRORS]));
	counter(b, "mailwarden_redis_connections_opened_total",
	    "Connections opened to Redis.", ld(&st->c[MW_ST_REDIS_CONNECTS]));
	family(b, "mailwarden_redis_unavailable_decisions_total", "counter",
	    "Recipients decided without Redis, by [greylist] fail_mode.");
	mw_buf_printf(b, "mailwarden_redis_unavailable_decisions_total{mode="
	    "\"open\"} %lu\nmailwarden_redis_unavailable_decisions_total{mode="
	    "\"closed\"} %lu\n", ld(&st->c[MW_ST_REDIS_FAIL_OPEN]),
	    ld(&st->c[MW_ST_REDIS_FAIL_CLOSED]));
	family(b, "mailwarden_redis_pool_idle_connections", "gauge",
	    "Idle Redis connections kept in the pool.");
	mw_buf_printf(b, "mailwarden_redis_pool_idle_connections %ld\n",
	    atomic_load_explicit(&st->redis_idle, memory_order_relaxed));
	counter(b, "mailwarden_redis_failovers_total",
	    "Times the Redis master moved to another server (Sentinel).",
	    ld(&st->c[MW_ST_REDIS_FAILOVERS]));
	{
		char master[300];
		double nm;
		int used;

		mw_stats_redis_master_get(st, &used, master, sizeof(master),
		    &nm);
		family(b, "mailwarden_redis_master", "gauge",
		    "1 for the Redis master in use (address label), 0 while "
		    "none is known.");
		if (used && master[0] != '\0') {
			mw_buf_puts(b, "mailwarden_redis_master{address=\"");
			label_value(b, master);
			mw_buf_puts(b, "\"} 1\n");
		} else if (used)
			mw_buf_puts(b, "mailwarden_redis_master{address=\"\"} "
			    "0\n");
		family(b, "mailwarden_redis_seconds_without_master_total",
		    "counter", "Seconds spent with no Redis master known "
		    "(recipients answered by fail_mode).");
		mw_buf_printf(b, "mailwarden_redis_seconds_without_master_total "
		    "%.3f\n", nm);
	}

	counter(b, "mailwarden_dkim_signatures_total",
	    "DKIM signatures made for outbound mail.",
	    ld(&st->c[MW_ST_DKIM_SIGNED]));
	counter(b, "mailwarden_dmarc_history_records_total",
	    "Records written to the DMARC aggregate-report history file.",
	    ld(&st->c[MW_ST_REPORTS_WRITTEN]));

	family(b, "mailwarden_config_reloads_total", "counter",
	    "Configuration reloads (SIGHUP) by result.");
	mw_buf_printf(b, "mailwarden_config_reloads_total{result=\"success\"} "
	    "%lu\nmailwarden_config_reloads_total{result=\"failure\"} %lu\n",
	    reloads_ok, reloads_failed);
	family(b, "mailwarden_config_last_reload_success_timestamp_seconds",
	    "gauge", "When the running configuration was loaded, seconds "
	    "since the epoch.");
	mw_buf_printf(b, "mailwarden_config_last_reload_success_timestamp_"
	    "seconds %lld\n", (long long)last_ok);
}

void
mw_html_escape(struct mw_buf *out, const char *s)
{
	if (s == NULL)
		return;
	for (; *s != '\0'; s++) {
		switch (*s) {
		case '&': mw_buf_puts(out, "&amp;"); break;
		case '<': mw_buf_puts(out, "&lt;"); break;
		case '>': mw_buf_puts(out, "&gt;"); break;
		case '"': mw_buf_puts(out, "&quot;"); break;
		case '\'': mw_buf_puts(out, "&#39;"); break;
		default:
			if ((unsigned char)*s < 0x20 ||
			    (unsigned char)*s >= 0x7f)
				mw_buf_puts(out, "?");
			else
				mw_buf_append(out, s, 1);
		}
	}
}
