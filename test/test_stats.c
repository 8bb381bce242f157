/*
 * test_stats -- unit tests of the statistics (lib/mw_stats.c) and the
 * status page (lib/mw_statuspage.c), driven through real sessions.
 *
 *	test/test_stats [METRICS_OUT PAGE_OUT]
 *
 * Sessions run against a config whose DNS server refuses every query
 * (127.0.0.1:9): the checks give temperror, which is what we count.
 * With two file names the rendered metrics and page are written there
 * for test/stats_check.sh (promtool, xmllint).  Prints TAP.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mw_buf.h"
#include "mw_config.h"
#include "mw_session.h"
#include "mw_stats.h"
#include "tap.h"

static const char ini[] =
    "[milter]\n"
    "authserv_id = mx.test\n"
    "trusted_networks = 10.9.9.0/24\n"
    "[dns]\n"
    "nameservers = 127.0.0.1:9\n"
    "timeout_ms = 50\n"
    "tries = 1\n"
    "[size]\n"
    "max_bytes = 2048\n"
    "[spf]\n"
    "enabled = no\n"
    "[dmarc]\n"
    "enabled = no\n"
    "[stats]\n"
    "history = 3\n";

static const char hostile_helo[] = "<script>alert('helo')</script>.evil";
static const char hostile_from[] =
    "<\"<img src=x onerror=alert(1)>\"@evil.test>";

static int
contains(const char *hay, const char *needle)
{
	return strstr(hay, needle) != NULL;
}

static struct mw_ctx *
make_ctx(struct mw_stats *st)
{
	char path[] = "/tmp/test_stats.XXXXXX", err[512];
	struct mw_config *cfg;
	struct mw_ctx *ctx;
	int fd = mkstemp(path);

	if (fd == -1 || write(fd, ini, sizeof(ini) - 1) !=
	    (ssize_t)(sizeof(ini) - 1)) {
		perror("mkstemp");
		exit(1);
	}
	close(fd);
	if (mw_config_load(path, &cfg, err, sizeof(err)) == -1 ||
	    mw_ctx_new(cfg, &ctx, err, sizeof(err)) == -1) {
		printf("Bail out! %s\n", err);
		exit(1);
	}
	unlink(path);
	mw_ctx_set_stats(ctx, st);
	return ctx;
}

/* One message from a hostile client: HELO and MAIL FROM carry markup. */
static void
hostile_message(struct mw_ctx *ctx)
{
	struct mw_session *s = mw_session_new(ctx);
	static const unsigned char body[] = "hello\r\n";

	mw_session_set_queue_id(s, "Q1<b>");
	mw_session_connect(s, "192.0.2.20", NULL, 25);
	mw_session_helo(s, hostile_helo);
	mw_session_mail(s, hostile_from, NULL, 0);
	mw_session_rcpt(s, "<postmaster@maildir.test>", NULL, 0);
	mw_session_header(s, "From", "<a@evil.test>");
	mw_session_eoh(s);
	mw_session_body(s, body, sizeof(body) - 1);
	mw_session_eom(s);
	mw_session_free(s);
}

/* A message over the size cap: refused in the body, then aborted. */
static void
big_message(struct mw_ctx *ctx)
{
	struct mw_session *s = mw_session_new(ctx);
	unsigned char body[4096];
	const struct mw_verdict *v;

	memset(body, 'x', sizeof(body));
	mw_session_connect(s, "10.9.9.9", "client.test", 25);
	mw_session_helo(s, "client.test");
	mw_session_mail(s, "<bob@example.test>", NULL, 0);
	mw_session_rcpt(s, "<carol@maildir.test>", NULL, 0);
	mw_session_eoh(s);
	v = mw_session_body(s, body, sizeof(body));
	is_int(v->kind, MW_REJECT, "the size cap refuses the body");
	mw_session_abort(s);
	mw_session_free(s);
}

static void
write_file(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");

	if (fp == NULL || fputs(text, fp) == EOF || fclose(fp) != 0) {
		perror(path);
		exit(1);
	}
}

int
main(int argc, char **argv)
{
	struct mw_stats *st = mw_stats_new(3, 1);
	struct mw_ctx *ctx;
	struct mw_buf m = MW_BUF_INIT(4 << 20), p = MW_BUF_INIT(4 << 20);
	const char *ms, *ps;
	int i;

	ok(st != NULL, "stats made");
	mw_stats_config(st, "/etc/mailwarden/<x>.ini", 0, 1);
	ctx = make_ctx(st);
	hostile_message(ctx);
	big_message(ctx);
	mw_stats_inc(NULL, MW_ST_DNS_QUERIES);	/* NULL: no-op, no crash */
	mw_stats_check_result(st, 0, "no-such-word");
	mw_stats_dnsbl_listed(st, "bl.\"quoted\".test");
	mw_stats_config(st, "/x.ini", 1, 0);

	mw_stats_render_metrics(st, &m);
	ms = mw_buf_str(&m);
	ok(contains(ms, "mailwarden_build_info{version=\"" PACKAGE_VERSION
	    "\"} 1\n"), "build_info");
	ok(contains(ms, "mailwarden_sessions_total 2\n"), "two sessions");
	ok(contains(ms, "mailwarden_sessions_active 0\n"),
	    "no session active after free");
	ok(contains(ms, "mailwarden_check_results_total{check=\"iprev\","
	    "result=\"temperror\"} 1\n"),
	    "iprev temperror counted from the A-R (trusted client skipped)");
	ok(contains(ms, "mailwarden_check_results_total{check=\"size\","
	    "result=\"fail\"} 1\n"), "size fail counted (mw_session_result)");
	ok(contains(ms, "mailwarden_check_results_total{check=\"size\","
	    "result=\"other\"} 1\n"), "unknown result word -> other");
	ok(contains(ms, "mailwarden_transactions_total{verdict=\"reject\","
	    "stage=\"data\"} 1\n"), "size reject counted at stage data");
	ok(contains(ms, "mailwarden_dnsbl_listings_total{zone="
	    "\"bl.\\\"quoted\\\".test\"} 1\n"), "label value escaped");
	ok(contains(ms, "mailwarden_dns_errors_total{error=\"other\"} ") &&
	    !contains(ms, "mailwarden_dns_errors_total{error=\"other\"} 0\n"),
	    "refused DNS queries counted as errors");
	ok(contains(ms, "mailwarden_config_reloads_total{result=\"failure\"} "
	    "1\n"), "failed reload counted");
	ok(contains(ms, "mailwarden_check_duration_seconds_count{check="
	    "\"iprev\"} 1\n"), "iprev duration observed once");
	ok(contains(ms, "mailwarden_smtp_phase_duration_seconds_count{phase="
	    "\"rcpt\"} 2\n"), "two RCPT phases timed");

	mw_stats_render_page(st, &p);
	ps = mw_buf_str(&p);
	ok(contains(ps, "<svg id=\"chart\""), "page has the SVG chart");
	ok(contains(ps, "class=\"bar v-reject\""), "chart has a reject bar");
	ok(!contains(ps, "<script") && !contains(ps, "<img") &&
	    !contains(ps, "Q1<b>") && contains(ps, "Q1&lt;b&gt;"),
	    "no markup from the network");
	ok(contains(ps, "&lt;script&gt;alert(&#39;helo&#39;)&lt;/script&gt;"),
	    "hostile HELO shown escaped");
	ok(contains(ps, "&quot;&lt;img src=x onerror=alert(1)&gt;&quot;@evil.test"),
	    "hostile MAIL FROM shown escaped");
	ok(contains(ps, "/etc/mailwarden/&lt;x&gt;.ini"), "config path escaped");
	ok(contains(ps, "<td>size</td><td>reject</td><td class=\"n\">1</td>"),
	    "top refusal reasons: the size check");
	if (argc == 3) {
		write_file(argv[1], ms);
		write_file(argv[2], ps);
	}

	/* History 3: the ring keeps the newest three. */
	for (i = 0; i < 4; i++)
		big_message(ctx);
	mw_buf_reset(&p);
	mw_stats_render_page(st, &p);
	ok(contains(mw_buf_str(&p), "<h2>Last 3 transactions</h2>"),
	    "ring bounded by history");
	ok(!contains(mw_buf_str(&p), "alert"), "oldest transaction dropped");

	/* Masked addresses. */
	mw_stats_configure(st, 3, 0);
	hostile_message(ctx);
	mw_buf_reset(&p);
	mw_stats_render_page(st, &p);
	ps = mw_buf_str(&p);
	ok(contains(ps, "192.0.2.x") && !contains(ps, "192.0.2.20"),
	    "show_addresses = no masks the client address");
	ok(contains(ps, "<td class=\"rcpt\">&lt;*@maildir.test&gt;"),
	    "... and the recipient's local part");
	ok(contains(ps, "<td class=\"from\">*@evil.test"),
	    "... and the sender's");

	/* The Redis master: none known, then a failover to another. */
	mw_buf_reset(&m);
	mw_stats_render_metrics(st, &m);
	ok(!contains(mw_buf_str(&m), "mailwarden_redis_master{"),
	    "Redis never used: no master line");
	mw_stats_redis_master(st, "10.0.0.1:6379");
	mw_stats_redis_master(st, NULL);
	mw_stats_redis_master(st, "10.0.0.2:\"6379<b>");
	mw_stats_inc(st, MW_ST_REDIS_FAILOVERS);
	mw_buf_reset(&m);
	mw_stats_render_metrics(st, &m);
	ms = mw_buf_str(&m);
	ok(contains(ms, "mailwarden_redis_master{address=\"10.0.0.2:\\\"6379<b>\"} 1\n"),
	    "the master in use, label escaped");
	ok(contains(ms, "mailwarden_redis_failovers_total 1\n"),
	    "one failover counted");
	ok(contains(ms, "mailwarden_redis_seconds_without_master_total "),
	    "seconds without a master exported");
	mw_buf_reset(&p);
	mw_stats_render_page(st, &p);
	ok(contains(mw_buf_str(&p), "<td>master</td><td class=\"n\">"
	    "10.0.0.2:&quot;6379&lt;b&gt;</td>"),
	    "status page: the master, escaped");
	mw_stats_redis_master(st, NULL);
	mw_buf_reset(&p);
	mw_stats_render_page(st, &p);
	ok(contains(mw_buf_str(&p), "<td class=\"n bad\">none known</td>"),
	    "status page: no master known");

	mw_stats_configure(st, 0, 1);
	mw_buf_reset(&p);
	mw_stats_render_page(st, &p);
	ok(contains(mw_buf_str(&p), "History is off"), "history = 0: off");

	mw_ctx_unref(ctx);
	mw_stats_free(st);
	mw_buf_free(&m);
	mw_buf_free(&p);
	return tap_done();
}
