/*
 * dkim_rss -- how much memory signing and verifying a big message takes:
 * the DKIM code must stream, so a 25 MB message may not cost more than a
 * small one.  Not a timed test: it prints resident set sizes.
 *
 *	bench/dkim_rss CONFIG [MEGABYTES]	(bench/dkim_rss.sh sets it up)
 *
 * CONFIG must sign mail from 127.0.0.1 with a key whose public half its
 * [dns] nameservers serve (bench/dkim_rss.sh: test/dkim-keys/rsa2048.pem,
 * t/zones/dkim-test.zone on nsd).  The program signs a generated message
 * of MEGABYTES (default 25) as a trusted client, then verifies it as
 * inbound mail, the body going through in 64 kB chunks as the milter
 * gets it, and prints the peak RSS (VmHWM, reset before each step through
 * /proc/self/clear_refs) against the RSS before the step.  It exits 1 if
 * verifying grew the RSS by 1 MB or more, or did not give dkim=pass.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mw_config.h"
#include "mw_log.h"
#include "mw_session.h"

#define CHUNK		65536
#define LIMIT_KB	1024

static const char *fields[][2] = {
	{ "From", " Bench <bench@dkim.test>" },
	{ "To", " sink@example.net" },
	{ "Subject", " a big message" },
	{ "Date", " Tue, 14 Nov 2023 22:13:20 +0000" },
	{ "Message-ID", " <bench@dkim.test>" },
};

/* One status field of /proc/self/status, in kB. */
static long
status_kb(const char *field)
{
	FILE *fp = fopen("/proc/self/status", "r");
	char line[256];
	size_t n = strlen(field);
	long v = -1;

	if (fp == NULL)
		return -1;
	while (fgets(line, sizeof(line), fp) != NULL)
		if (strncmp(line, field, n) == 0 && line[n] == ':')
			v = strtol(line + n + 1, NULL, 10);
	fclose(fp);
	return v;
}

/* Start a new peak: VmHWM := VmRSS. */
static void
reset_peak(void)
{
	FILE *fp = fopen("/proc/self/clear_refs", "w");

	if (fp != NULL) {
		fputs("5", fp);
		fclose(fp);
	}
}

/* The body: 76 characters and CRLF per line, the same on every call. */
static void
fill(unsigned char *buf, size_t len, unsigned long long off)
{
	size_t i;

	for (i = 0; i < len; i++) {
		unsigned long long p = off + i;

		buf[i] = p % 78 == 76 ? '\r' : p % 78 == 77 ? '\n' :
		    (unsigned char)('a' + (p / 78 + p) % 26);
	}
}

/*
 * One transaction; sigs are DKIM-Signature values to put on top (NULL
 * when signing).  Returns the session for the caller to inspect.
 */
static struct mw_session *
transaction(struct mw_ctx *ctx, const char *ip, char **sigs, int nsigs,
    unsigned long long bytes)
{
	struct mw_session *s = mw_session_new(ctx);
	static unsigned char buf[CHUNK];
	unsigned long long off;
	size_t i;
	int k;

	if (s == NULL) {
		fprintf(stderr, "dkim_rss: out of memory\n");
		exit(2);
	}
	(void)mw_session_connect(s, ip, "client.example", 25);
	(void)mw_session_helo(s, "client.example");
	(void)mw_session_mail(s, "<bench@dkim.test>", NULL, 0);
	(void)mw_session_rcpt(s, "<sink@example.net>", NULL, 0);
	for (k = 0; k < nsigs; k++) {
		char *v = malloc(strlen(sigs[k]) + 2);

		sprintf(v, " %s", sigs[k]);
		(void)mw_session_header(s, "DKIM-Signature", v);
		free(v);
	}
	for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		(void)mw_session_header(s, fields[i][0], fields[i][1]);
	(void)mw_session_eoh(s);
	for (off = 0; off < bytes; off += CHUNK) {
		size_t n = bytes - off < CHUNK ? (size_t)(bytes - off) : CHUNK;

		fill(buf, n, off);
		(void)mw_session_body(s, buf, n);
	}
	(void)mw_session_eom(s);
	return s;
}

/* Sign as 127.0.0.1; return the signature values (inserted at the top). */
static int
sign(struct mw_ctx *ctx, unsigned long long bytes, char **sigs, int max)
{
	struct mw_session *s = transaction(ctx, "127.0.0.1", NULL, 0, bytes);
	const struct mw_hdr_change *c;
	size_t i, n = mw_session_changes(s, &c);
	int k = 0;

	for (i = 0; i < n && k < max; i++)
		if (c[i].op == MW_HDR_INSERT &&
		    strcmp(c[i].name, "DKIM-Signature") == 0)
			sigs[k++] = strdup(c[i].value);
	mw_session_free(s);
	return k;
}

static double
seconds(const struct timespec *a, const struct timespec *b)
{
	return (double)(b->tv_sec - a->tv_sec) +
	    (double)(b->tv_nsec - a->tv_nsec) / 1e9;
}

int
main(int argc, char **argv)
{
	struct mw_config *cfg;
	struct mw_ctx *ctx;
	struct mw_session *s;
	struct timespec t0, t1;
	char err[1024], *sigs[4], *small[4];
	unsigned long long bytes;
	long before, peak, growth_sign, growth_verify;
	const char *ar;
	int n, nsmall, k, pass;

	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: dkim_rss CONFIG [MEGABYTES]\n");
		return 2;
	}
	bytes = (argc == 3 ? strtoull(argv[2], NULL, 10) : 25) * 1024 * 1024;
	mw_log_open("dkim_rss", 0, LOG_ERR, 1);
	if (mw_config_load(argv[1], &cfg, err, sizeof(err)) == -1 ||
	    mw_ctx_new(cfg, &ctx, err, sizeof(err)) == -1) {
		fprintf(stderr, "dkim_rss: %s\n", err);
		return 2;
	}

	/* Warm up: libraries, DNS cache, malloc arenas, with a small one. */
	nsmall = sign(ctx, 4096, small, 4);
	if (nsmall == 0) {
		fprintf(stderr, "dkim_rss: nothing was signed: does CONFIG "
		    "have a key for dkim.test and trust 127.0.0.1?\n");
		return 2;
	}
	mw_session_free(transaction(ctx, "192.0.2.1", small, nsmall, 4096));

	before = status_kb("VmRSS");
	reset_peak();
	clock_gettime(CLOCK_MONOTONIC, &t0);
	n = sign(ctx, bytes, sigs, 4);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	peak = status_kb("VmHWM");
	growth_sign = peak - before;
	printf("sign   %llu MB: RSS before %ld kB, peak %ld kB, growth %ld kB "
	    "(%.2f s)\n", bytes >> 20, before, peak, growth_sign,
	    seconds(&t0, &t1));

	before = status_kb("VmRSS");
	reset_peak();
	clock_gettime(CLOCK_MONOTONIC, &t0);
	s = transaction(ctx, "192.0.2.1", sigs, n, bytes);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	peak = status_kb("VmHWM");
	growth_verify = peak - before;
	ar = mw_session_authres(s);
	pass = ar != NULL && strstr(ar, "dkim=pass") != NULL;
	printf("verify %llu MB: RSS before %ld kB, peak %ld kB, growth %ld kB "
	    "(%.2f s), %s\n", bytes >> 20, before, peak, growth_verify,
	    seconds(&t0, &t1), pass ? "dkim=pass" : "NOT dkim=pass");
	if (!pass)
		printf("A-R: %s\n", ar != NULL ? ar : "(none)");
	mw_session_free(s);
	for (k = 0; k < n; k++)
		free(sigs[k]);
	for (k = 0; k < nsmall; k++)
		free(small[k]);
	mw_ctx_unref(ctx);
	if (!pass || growth_verify >= LIMIT_KB) {
		printf("FAIL: verifying must pass and grow the RSS by less than "
		    "%d kB\n", LIMIT_KB);
		return 1;
	}
	printf("ok: verifying a %llu MB message grew the RSS by %ld kB "
	    "(limit %d kB)\n", bytes >> 20, growth_verify, LIMIT_KB);
	return 0;
}
