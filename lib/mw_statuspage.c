/*
 * mw_statuspage -- the status page the daemon serves at GET /: one
 * server-rendered HTML document, no script, no external asset.  What an
 * admin wants at a glance: version, uptime, configuration file, messages
 * per minute over the last hour split by verdict (inline SVG), the top
 * refusal reasons, DNS and Redis health, results per check, and the last
 * transactions with client, HELO, envelope, results and the reply.
 *
 *	struct mw_buf b = MW_BUF_INIT(4 << 20);
 *	mw_stats_render_page(st, &b);
 *
 * Everything that came from the network (HELO, addresses, reply texts
 * that quote them, DNS zone text) goes through mw_html_escape(); the
 * ring already holds it masked when [stats] show_addresses = no.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mw_buf.h"
#include "mw_module.h"
#include "mw_stats_priv.h"

#define CHART_W		720
#define CHART_H		180
#define CHART_X0	40	/* room for the y labels */

static const char *const verdict_color[MW_STATS_NVERDICTS] = {
	"#43a047", "#fb8c00", "#fdd835", "#e53935", "#8e24aa", "#9e9e9e"
};

static unsigned long
ld(atomic_ulong *a)
{
	return atomic_load_explicit(a, memory_order_relaxed);
}

static void
esc(struct mw_buf *b, const char *s)
{
	mw_html_escape(b, s);
}

static void
fmt_time(char *out, size_t outlen, time_t t)
{
	struct tm tm;

	if (t == 0 || gmtime_r(&t, &tm) == NULL) {
		snprintf(out, outlen, "never");
		return;
	}
	strftime(out, outlen, "%Y-%m-%d %H:%M:%S UTC", &tm);
}

static void
fmt_uptime(char *out, size_t outlen, long s)
{
	if (s >= 86400)
		snprintf(out, outlen, "%ldd %ldh %ldm", s / 86400,
		    s % 86400 / 3600, s % 3600 / 60);
	else if (s >= 3600)
		snprintf(out, outlen, "%ldh %ldm", s / 3600, s % 3600 / 60);
	else
		snprintf(out, outlen, "%ldm %lds", s / 60, s % 60);
}

static const char style[] =
    "body{font-family:sans-serif;margin:1em 2em;color:#222}"
    "h1{font-size:1.4em}h2{font-size:1.1em;margin-top:1.5em}"
    "table{border-collapse:collapse;font-size:.85em}"
    "#transactions{width:100%}"
    "#transactions td{max-width:26em;overflow-wrap:anywhere}"
    "#transactions td.nw{white-space:nowrap}"
    "td,th{border:1px solid #ccc;padding:2px 6px;text-align:left;"
    "vertical-align:top}th{background:#eee}"
    "td.n{text-align:right}.ok{color:#2e7d32}.bad{color:#c62828}"
    ".v-accept{background:#e8f5e9}.v-quarantine{background:#fff3e0}"
    ".v-tempfail{background:#fffde7}.v-reject{background:#ffebee}"
    ".small{font-size:.8em;color:#555}code{font-size:.95em}";

/* Messages per minute over the last hour, stacked by verdict. */
static void
chart(struct mw_buf *b, const struct mw_stats_minute *mins, time_t now)
{
	long cur = (long)(now / 60), m;
	unsigned long tot[MW_STATS_MINUTES], max = 0, all = 0;
	double bw = (double)(CHART_W - CHART_X0) / MW_STATS_MINUTES, scale;
	size_t i, v;

	for (i = 0; i < MW_STATS_MINUTES; i++) {
		const struct mw_stats_minute *x;

		m = cur - (long)(MW_STATS_MINUTES - 1 - i);
		x = &mins[m % MW_STATS_MINUTES];
		tot[i] = 0;
		if (x->minute == m)
			for (v = 0; v < MW_STATS_NVERDICTS; v++)
				tot[i] += x->n[v];
		if (tot[i] > max)
			max = tot[i];
		all += tot[i];
	}
	if (max < 1)
		max = 1;
	scale = (double)(CHART_H - 20) / (double)max;
	mw_buf_printf(b, "<svg id=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" "
	    "width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\" "
	    "aria-label=\"messages per minute, last hour, by verdict\">\n"
	    "<title>messages per minute, last 60 minutes (%lu messages)"
	    "</title>\n", CHART_W, CHART_H + 20, CHART_W, CHART_H + 20, all);
	mw_buf_printf(b, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" "
	    "stroke=\"#999\"/>\n<line x1=\"%d\" y1=\"10\" x2=\"%d\" y2=\"%d\" "
	    "stroke=\"#999\"/>\n", CHART_X0, CHART_H, CHART_W, CHART_H,
	    CHART_X0, CHART_X0, CHART_H);
	mw_buf_printf(b, "<text x=\"%d\" y=\"20\" font-size=\"11\" "
	    "text-anchor=\"end\">%lu</text>\n<text x=\"%d\" y=\"%d\" "
	    "font-size=\"11\" text-anchor=\"end\">0</text>\n<text x=\"%d\" "
	    "y=\"%d\" font-size=\"11\">-60 min</text>\n<text x=\"%d\" y=\"%d\" "
	    "font-size=\"11\" text-anchor=\"end\">now</text>\n", CHART_X0 - 4,
	    max, CHART_X0 - 4, CHART_H, CHART_X0, CHART_H + 14, CHART_W,
	    CHART_H + 14);
	for (i = 0; i < MW_STATS_MINUTES; i++) {
		const struct mw_stats_minute *x;
		double y = CHART_H;

		m = cur - (long)(MW_STATS_MINUTES - 1 - i);
		x = &mins[m % MW_STATS_MINUTES];
		if (x->minute != m || tot[i] == 0)
			continue;
		for (v = 0; v < MW_STATS_NVERDICTS; v++) {
			double h;

			if (x->n[v] == 0)
				continue;
			h = (double)x->n[v] * scale;
			y -= h;
			mw_buf_printf(b, "<rect class=\"bar v-%s\" x=\"%.1f\" "
			    "y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
			    "fill=\"%s\"><title>%ld min ago: %lu %s</title>"
			    "</rect>\n", mw_stats_verdicts[v],
			    CHART_X0 + (double)i * bw + 0.5, y, bw - 1, h,
			    verdict_color[v],
			    (long)(MW_STATS_MINUTES - 1 - i), x->n[v],
			    mw_stats_verdicts[v]);
		}
	}
	mw_buf_puts(b, "</svg>\n<p class=\"small\">");
	for (v = 0; v < MW_STATS_NVERDICTS; v++)
		mw_buf_printf(b, "<span style=\"color:%s\">&#9632;</span> %s "
		    "&nbsp; ", verdict_color[v], mw_stats_verdicts[v]);
	mw_buf_puts(b, "</p>\n");
}

static int
cmp_reason(const void *a, const void *b)
{
	const struct mw_stats_reason *x = a, *y = b;

	return x->n < y->n ? 1 : x->n > y->n ? -1 : 0;
}

static void
health_row(struct mw_buf *b, const char *what, unsigned long v, int bad)
{
	mw_buf_printf(b, "<tr><td>%s</td><td class=\"n%s\">%lu</td></tr>\n",
	    what, bad && v > 0 ? " bad" : "", v);
}

void
mw_stats_render_page(struct mw_stats *st, struct mw_buf *b)
{
	struct mw_stats_minute mins[MW_STATS_MINUTES];
	struct mw_stats_reason *reasons = NULL;
	struct mw_stats_ent *ring = NULL;
	size_t nreasons, nring = 0, ring_size, ring_next, i, j, k;
	char path[512], t1[64], t2[64], up[64];
	time_t now = time(NULL), loaded, last_fail;
	unsigned long vtot[MW_STATS_NVERDICTS] = { 0 }, total = 0;
	unsigned long q, hits, miss, tmo, sf, oth;
	int show;

	/* Copy under the lock, render without it. */
	pthread_mutex_lock(&st->lock);
	memcpy(mins, st->minutes, sizeof(mins));
	nreasons = st->nreasons;
	if ((reasons = calloc(nreasons + 1, sizeof(*reasons))) != NULL)
		memcpy(reasons, st->reasons, nreasons * sizeof(*reasons));
	else
		nreasons = 0;
	ring_size = st->ring_size;
	ring_next = st->ring_next;
	if (st->ring_count > 0 &&
	    (ring = malloc(st->ring_count * sizeof(*ring))) != NULL) {
		/* Newest first. */
		for (i = 0; i < st->ring_count; i++)
			ring[i] = st->ring[(ring_next + ring_size - 1 - i) %
			    ring_size];
		nring = st->ring_count;
	}
	snprintf(path, sizeof(path), "%s", st->config_path);
	loaded = st->config_loaded;
	last_fail = st->last_reload_failed;
	show = st->show_addresses;
	pthread_mutex_unlock(&st->lock);

	for (i = 0; i < MW_STATS_NVERDICTS; i++)
		for (j = 0; j < MW_STATS_NSTAGES; j++) {
			vtot[i] += ld(&st->txn[i][j]);
			total += ld(&st->txn[i][j]);
		}

	mw_buf_printf(b, "<!DOCTYPE html>\n<html lang=\"en\"><head>"
	    "<meta charset=\"utf-8\"><meta http-equiv=\"refresh\" "
	    "content=\"30\"><title>mailwarden status</title><style>%s"
	    "</style></head>\n<body>\n<h1>mailwarden %s</h1>\n", style,
	    PACKAGE_VERSION);
	fmt_uptime(up, sizeof(up), (long)(now - st->started));
	fmt_time(t1, sizeof(t1), st->started);
	fmt_time(t2, sizeof(t2), loaded);
	mw_buf_printf(b, "<table id=\"about\">\n<tr><th>uptime</th><td id="
	    "\"uptime\">%s (since %s)</td></tr>\n<tr><th>configuration</th>"
	    "<td><code>", up, t1);
	esc(b, path);
	mw_buf_printf(b, "</code> loaded %s</td></tr>\n", t2);
	if (last_fail > loaded) {
		fmt_time(t1, sizeof(t1), last_fail);
		mw_buf_printf(b, "<tr><th>last reload</th><td class=\"bad\">"
		    "refused at %s (see the log); the configuration above is "
		    "running</td></tr>\n", t1);
	}
	mw_buf_printf(b, "<tr><th>connections now</th><td>%ld</td></tr>\n"
	    "<tr><th>transactions</th><td>%lu", atomic_load_explicit(
	    &st->sessions_active, memory_order_relaxed), total);
	for (i = 0; i < MW_STATS_NVERDICTS; i++)
		if (vtot[i] > 0)
			mw_buf_printf(b, " &middot; %s %lu", mw_stats_verdicts[i],
			    vtot[i]);
	mw_buf_puts(b, "</td></tr>\n</table>\n");

	mw_buf_puts(b, "<h2>Messages per minute, last hour</h2>\n");
	chart(b, mins, now);

	mw_buf_puts(b, "<h2>Top refusal reasons</h2>\n");
	if (nreasons == 0)
		mw_buf_puts(b, "<p id=\"reasons\">None yet.</p>\n");
	else {
		qsort(reasons, nreasons, sizeof(*reasons), cmp_reason);
		mw_buf_puts(b, "<table id=\"reasons\"><tr><th>check</th>"
		    "<th>verdict</th><th>count</th><th>last reply</th></tr>\n");
		for (i = 0; i < nreasons && i < 10; i++) {
			mw_buf_puts(b, "<tr><td>");
			esc(b, reasons[i].check);
			mw_buf_printf(b, "</td><td>%s</td><td class=\"n\">%lu"
			    "</td><td>%d ", reasons[i].verdict, reasons[i].n,
			    reasons[i].code);
			esc(b, reasons[i].xcode);
			mw_buf_puts(b, " ");
			esc(b, reasons[i].text);
			mw_buf_puts(b, "</td></tr>\n");
		}
		mw_buf_puts(b, "</table>\n");
	}

	q = ld(&st->c[MW_ST_DNS_QUERIES]);
	hits = ld(&st->c[MW_ST_DNS_CACHE_HITS]);
	miss = ld(&st->c[MW_ST_DNS_CACHE_MISSES]);
	tmo = ld(&st->c[MW_ST_DNS_TIMEOUTS]);
	sf = ld(&st->c[MW_ST_DNS_SERVFAIL]);
	oth = ld(&st->c[MW_ST_DNS_OTHER_ERRORS]);
	mw_buf_printf(b, "<h2>DNS and Redis</h2>\n<table id=\"health\">"
	    "<tr><th colspan=\"2\">DNS <span class=\"%s\">%s</span></th></tr>\n",
	    tmo + sf + oth > 0 ? "bad" : "ok",
	    tmo + sf + oth > 0 ? "errors seen" : "ok");
	health_row(b, "queries sent", q, 0);
	mw_buf_printf(b, "<tr><td>cache hits</td><td class=\"n\">%lu (%.0f%%)"
	    "</td></tr>\n", hits, hits + miss > 0 ? 100.0 * (double)hits /
	    (double)(hits + miss) : 0.0);
	health_row(b, "timeouts", tmo, 1);
	health_row(b, "SERVFAIL", sf, 1);
	health_row(b, "other errors", oth, 1);
	{
		unsigned long rc = ld(&st->c[MW_ST_REDIS_COMMANDS]);
		unsigned long re = ld(&st->c[MW_ST_REDIS_ERRORS]);
		unsigned long fo = ld(&st->c[MW_ST_REDIS_FAIL_OPEN]);
		unsigned long fc = ld(&st->c[MW_ST_REDIS_FAIL_CLOSED]);

		mw_buf_printf(b, "<tr><th colspan=\"2\">Redis <span class="
		    "\"%s\">%s</span></th></tr>\n", re + fo + fc > 0 ? "bad" :
		    "ok", rc == 0 && re == 0 ? "not used yet" : re + fo + fc >
		    0 ? "errors seen" : "ok");
		health_row(b, "commands", rc, 0);
		health_row(b, "errors", re, 1);
		health_row(b, "connections opened",
		    ld(&st->c[MW_ST_REDIS_CONNECTS]), 0);
		mw_buf_printf(b, "<tr><td>idle pool connections</td><td class="
		    "\"n\">%ld</td></tr>\n", atomic_load_explicit(
		    &st->redis_idle, memory_order_relaxed));
		health_row(b, "accepted without Redis (fail-open)", fo, 1);
		health_row(b, "tempfailed without Redis (fail-closed)", fc, 1);
		{
			char master[300];
			double nm;
			int used;

			mw_stats_redis_master_get(st, &used, master,
			    sizeof(master), &nm);
			if (used) {
				mw_buf_puts(b, "<tr><td>master</td><td class="
				    "\"n");
				mw_buf_puts(b, master[0] != '\0' ? "\">" :
				    " bad\">");
				mw_html_escape(b, master[0] != '\0' ? master :
				    "none known");
				mw_buf_puts(b, "</td></tr>\n");
				health_row(b, "failovers seen",
				    ld(&st->c[MW_ST_REDIS_FAILOVERS]), 0);
				mw_buf_printf(b, "<tr><td>seconds without a "
				    "master</td><td class=\"n%s\">%.1f</td>"
				    "</tr>\n", nm > 0 ? " bad" : "", nm);
			}
		}
	}
	mw_buf_puts(b, "</table>\n");

	mw_buf_puts(b, "<h2>Check results</h2>\n<table id=\"checks\"><tr>"
	    "<th>check</th>");
	for (k = 0; k < MW_STATS_NWORDS; k++)
		mw_buf_printf(b, "<th>%s</th>", mw_stats_words[k]);
	mw_buf_puts(b, "</tr>\n");
	for (i = 0; i < mw_nmodules && i < MW_MAX_MODULES; i++) {
		mw_buf_printf(b, "<tr><td>%s</td>", mw_modules[i]->name);
		for (k = 0; k < MW_STATS_NWORDS; k++)
			mw_buf_printf(b, "<td class=\"n\">%lu</td>",
			    ld(&st->check[i][k]));
		mw_buf_puts(b, "</tr>\n");
	}
	mw_buf_puts(b, "</table>\n");

	mw_buf_printf(b, "<h2>Last %zu transactions</h2>\n", nring);
	if (ring_size == 0)
		mw_buf_puts(b, "<p>History is off ([stats] history = 0).</p>\n");
	else if (!show)
		mw_buf_puts(b, "<p class=\"small\">Addresses are masked "
		    "([stats] show_addresses = no).</p>\n");
	mw_buf_puts(b, "<table id=\"transactions\"><tr><th>time</th>"
	    "<th>queue id</th><th>client</th><th>HELO</th><th>from</th>"
	    "<th>to</th><th>results</th><th>score</th><th>verdict</th></tr>\n");
	for (i = 0; i < nring; i++) {
		struct mw_stats_ent *e = &ring[i];
		struct tm tm;

		if (gmtime_r(&e->when, &tm) != NULL)
			strftime(t1, sizeof(t1), "%H:%M:%S", &tm);
		else
			t1[0] = '\0';
		mw_buf_printf(b, "<tr class=\"txn v-%s\"><td class=\"nw\">%s"
		    "</td><td class=\"nw\">", e->verdict, t1);
		esc(b, e->qid);
		mw_buf_puts(b, "</td><td class=\"client nw\">");
		esc(b, e->name[0] ? e->name : "unknown");
		mw_buf_puts(b, "[");
		esc(b, e->ip);
		mw_buf_puts(b, "]</td><td class=\"helo\">");
		esc(b, e->helo);
		mw_buf_puts(b, "</td><td class=\"from\">");
		esc(b, e->from);
		mw_buf_puts(b, "</td><td class=\"rcpt\">");
		esc(b, e->rcpts);
		mw_buf_puts(b, "</td><td class=\"results\">");
		esc(b, e->results);
		mw_buf_printf(b, "</td><td class=\"n\">%g</td><td class="
		    "\"verdict\"><b>%s</b>", e->score, e->verdict);
		if (e->code != 0) {
			mw_buf_printf(b, " at %s: %d ", e->stage, e->code);
			esc(b, e->xcode);
			mw_buf_puts(b, " ");
			esc(b, e->text);
		}
		mw_buf_puts(b, "</td></tr>\n");
	}
	mw_buf_puts(b, "</table>\n<p class=\"small\">Metrics for Prometheus: "
	    "<a href=\"/metrics\">/metrics</a>. Times are UTC.</p>\n"
	    "</body></html>\n");
	free(ring);
	free(reasons);
}
