/*
 * dns_parallel -- how long the connection checks (iprev, HELO, DNSBL)
 * make a client wait when every DNS answer takes a while.
 *
 *	dns_parallel PORT ZONES RUNS DELAY_MS
 *
 * PORT is a t/dnsfault.py started with --delay DELAY_MS
 * (bench/dns_parallel.sh starts one with --delay 100 and writes the
 * answers it needs); ZONES
 * DNSBL zones z1.bench.test .. zN.bench.test are configured.  For each
 * run a fresh client 198.18.200.R (not listed) and 198.18.201.R (listed
 * in every zone) goes through connect, HELO, MAIL and RCPT with no pause
 * between the commands, which is the worst case: nothing can hide
 * behind the client's own round trips.  The DNS cache is off, so every
 * run asks everything again.  Printed: the time from connect to the
 * RCPT verdict, and for comparison the same lookups made one after
 * another.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mw_config.h"
#include "mw_dns.h"
#include "mw_log.h"
#include "mw_session.h"

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* One SMTP conversation up to the RCPT verdict; returns ms. */
static double
one_client(struct mw_ctx *ctx, const char *ip, const char *helo,
    const struct mw_verdict **vp)
{
	struct mw_session *s = mw_session_new(ctx);
	const struct mw_verdict *v;
	static struct mw_verdict copy;
	double t0, t1;

	if (s == NULL) {
		fprintf(stderr, "dns_parallel: out of memory\n");
		exit(1);
	}
	t0 = now_ms();
	mw_session_connect(s, ip, NULL, 25);
	mw_session_helo(s, helo);
	mw_session_mail(s, "<>", NULL, 0);
	v = mw_session_rcpt(s, "<user@bench.test>", NULL, 0);
	t1 = now_ms();
	copy = *v;
	*vp = &copy;
	mw_session_free(s);
	return t1 - t0;
}

int
main(int argc, char **argv)
{
	char path[] = "/tmp/dns_parallel.XXXXXX", err[512], ip[64], name[320];
	char helo[64];
	struct mw_config *cfg;
	struct mw_ctx *ctx;
	struct mw_dns_batch *b;
	const struct mw_verdict *v;
	double *clean, *listed, t0, serial;
	int port, zones, runs, delay, i, z, fd, bad = 0;
	FILE *fp;

	if (argc != 5 || (port = atoi(argv[1])) <= 0 ||
	    (zones = atoi(argv[2])) <= 0 || (runs = atoi(argv[3])) <= 0 ||
	    runs > 250 || (delay = atoi(argv[4])) <= 0) {
		fprintf(stderr, "usage: dns_parallel PORT ZONES RUNS(1-250) "
		    "DELAY_MS\n");
		return 2;
	}
	mw_log_open("dns_parallel", 0, LOG_WARNING, 1);
	if ((fd = mkstemp(path)) == -1 || (fp = fdopen(fd, "w")) == NULL) {
		perror("mkstemp");
		return 1;
	}
	fprintf(fp, "[milter]\nauthserv_id = bench.test\n"
	    "[dns]\nnameservers = 127.0.0.1:%d\ntimeout_ms = 2000\ntries = 1\n"
	    "cache_size = 0\n[dnsbl]\n", port);
	for (z = 1; z <= zones; z++)
		fprintf(fp, "zone = z%d.bench.test\n", z);
	fclose(fp);
	if (mw_config_load(path, &cfg, err, sizeof(err)) == -1) {
		fprintf(stderr, "dns_parallel: %s\n", err);
		unlink(path);
		return 1;
	}
	unlink(path);
	if (mw_ctx_new(cfg, &ctx, err, sizeof(err)) == -1) {
		fprintf(stderr, "dns_parallel: %s\n", err);
		return 1;
	}
	if ((clean = calloc((size_t)runs, sizeof(*clean))) == NULL ||
	    (listed = calloc((size_t)runs, sizeof(*listed))) == NULL)
		return 1;

	for (i = 0; i < runs; i++) {
		snprintf(ip, sizeof(ip), "198.18.200.%d", i + 1);
		snprintf(helo, sizeof(helo), "h%d.bench.test", i + 1);
		clean[i] = one_client(ctx, ip, helo, &v);
		if (v->kind != MW_CONTINUE) {
			fprintf(stderr, "dns_parallel: clean client %s got %d "
			    "%s %s\n", ip, v->code, v->xcode, v->text);
			bad = 1;
		}
		snprintf(ip, sizeof(ip), "198.18.201.%d", i + 1);
		snprintf(helo, sizeof(helo), "l%d.bench.test", i + 1);
		listed[i] = one_client(ctx, ip, helo, &v);
		if (v->kind != MW_REJECT) {
			fprintf(stderr, "dns_parallel: listed client %s not "
			    "rejected\n", ip);
			bad = 1;
		}
	}

	/* The same questions one after another: PTR, A, each zone. */
	b = mw_dns_batch_new(mw_ctx_dns(ctx));
	t0 = now_ms();
	mw_dns_lookup(b, "1.200.18.198.in-addr.arpa", MW_DNS_PTR);
	mw_dns_lookup(b, "h1.bench.test", MW_DNS_A);
	for (z = 1; z <= zones; z++) {
		snprintf(name, sizeof(name), "1.200.18.198.z%d.bench.test", z);
		mw_dns_lookup(b, name, MW_DNS_A);
	}
	serial = now_ms() - t0;
	mw_dns_batch_free(b);

	qsort(clean, (size_t)runs, sizeof(*clean), cmp_double);
	qsort(listed, (size_t)runs, sizeof(*listed), cmp_double);
	printf("clients: %d clean + %d listed, %d DNSBL zones, iprev, HELO; "
	    "no DNS cache\n", runs, runs, zones);
	printf("every DNS answer delayed by %d ms (one round trip)\n", delay);
	printf("clean client, connect to RCPT verdict: median %.0f ms = "
	    "%.1f round trips (min %.0f, max %.0f)\n", clean[runs / 2],
	    clean[runs / 2] / delay, clean[0], clean[runs - 1]);
	printf("listed client (+ TXT reason), connect to RCPT verdict: "
	    "median %.0f ms = %.1f round trips (min %.0f, max %.0f)\n",
	    listed[runs / 2], listed[runs / 2] / delay, listed[0],
	    listed[runs - 1]);
	printf("the same %d lookups one after another: %.0f ms = %.1f round "
	    "trips\n", zones + 2, serial, serial / delay);
	free(clean);
	free(listed);
	mw_ctx_unref(ctx);
	return bad;
}
