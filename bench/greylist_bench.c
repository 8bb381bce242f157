/*
 * greylist_bench -- how fast greylisting decides, and what it adds to
 * each RCPT, against a real Redis.  bench/greylist_bench.sh starts a
 * private redis-server and runs this; by hand:
 *
 *	greylist_bench [-t THREADS] [-n RCPTS] CONFIG [BASELINE_CONFIG]
 *	greylist_bench -C CONFIG	(only load it: exit 0 if it is valid)
 *
 * CONFIG enables [greylist] (mode = all, a 1 s delay, autoallow_after =
 * 0); BASELINE_CONFIG is the same with greylisting off.  THREADS
 * sessions (like the milter's threads) share one context, so they share
 * the connection pool.  Each thread sends RCPTS recipients, 10 per
 * transaction, every one a new triplet, in three phases over the same
 * triplets:
 *	new	first attempt: 451, the triplet is written
 *	pass	retry after the delay: accepted, pass recorded
 *	known	a later message: accepted, TTL renewed
 * Only mw_session_rcpt() is timed.  Prints decisions/s and p50/p99 per
 * phase, and the latency added compared with the baseline run.
 */
#include "config.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mw_config.h"
#include "mw_log.h"
#include "mw_session.h"

#define RCPTS_PER_MAIL	10

struct worker {
	pthread_t	 tid;
	struct mw_ctx	*ctx;
	int		 id;
	long		 n;
	double		*lat;		/* microseconds, n entries */
	long		 n_tempfail, n_accept, n_other;
	int		 failed;
};

struct result {
	double	rate, p50, p99, max;
	long	n_tempfail, n_accept, n_other;
};

static double
now_us(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static void *
work(void *arg)
{
	struct worker *w = arg;
	struct mw_session *s = NULL;
	char ip[64], from[128], to[128];
	long i;

	for (i = 0; i < w->n; i++) {
		const struct mw_verdict *v;
		long mail = i / RCPTS_PER_MAIL;
		double t0;

		if (i % RCPTS_PER_MAIL == 0) {
			/* A new connection every message, from one /24 per thread. */
			mw_session_free(s);
			if ((s = mw_session_new(w->ctx)) == NULL) {
				w->failed = 1;
				return NULL;
			}
			snprintf(ip, sizeof(ip), "10.%d.%ld.%ld", w->id,
			    (mail / 250) % 250, mail % 250 + 1);
			mw_session_connect(s, ip, NULL, 25);
			mw_session_helo(s, "bench.example");
			snprintf(from, sizeof(from), "<sender%ld@bench.example>",
			    mail);
			mw_session_mail(s, from, NULL, 0);
		}
		snprintf(to, sizeof(to), "<rcpt%ld@t%d.example>",
		    i % RCPTS_PER_MAIL, w->id);
		t0 = now_us();
		v = mw_session_rcpt(s, to, NULL, 0);
		w->lat[i] = now_us() - t0;
		if (v->kind == MW_TEMPFAIL)
			w->n_tempfail++;
		else if (v->kind == MW_CONTINUE || v->kind == MW_ACCEPT)
			w->n_accept++;
		else
			w->n_other++;
	}
	mw_session_free(s);
	return NULL;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static int
run_phase(struct mw_ctx *ctx, int threads, long n, struct result *r)
{
	struct worker *w = calloc((size_t)threads, sizeof(*w));
	double *all = calloc((size_t)(threads * n), sizeof(double));
	double t0, elapsed;
	long k;
	int i, failed = 0;

	if (w == NULL || all == NULL)
		return -1;
	memset(r, 0, sizeof(*r));
	t0 = now_us();
	for (i = 0; i < threads; i++) {
		w[i].ctx = ctx;
		w[i].id = i + 1;
		w[i].n = n;
		w[i].lat = all + (long)i * n;
		if (pthread_create(&w[i].tid, NULL, work, &w[i]) != 0)
			return -1;
	}
	for (i = 0; i < threads; i++) {
		pthread_join(w[i].tid, NULL);
		failed |= w[i].failed;
		r->n_tempfail += w[i].n_tempfail;
		r->n_accept += w[i].n_accept;
		r->n_other += w[i].n_other;
	}
	elapsed = now_us() - t0;
	k = (long)threads * n;
	qsort(all, (size_t)k, sizeof(double), cmp_double);
	r->rate = k / (elapsed / 1e6);
	r->p50 = all[k / 2];
	r->p99 = all[(k * 99) / 100];
	r->max = all[k - 1];
	free(all);
	free(w);
	return failed ? -1 : 0;
}

static struct mw_ctx *
load(const char *path)
{
	struct mw_config *cfg;
	struct mw_ctx *ctx;
	char err[1024];

	if (mw_config_load(path, &cfg, err, sizeof(err)) == -1 ||
	    mw_ctx_new(cfg, &ctx, err, sizeof(err)) == -1) {
		fprintf(stderr, "greylist_bench: %s\n", err);
		exit(1);
	}
	return ctx;
}

static void
print_row(const char *name, const struct result *r, const struct result *b)
{
	printf("%-9s %12.0f %9.1f %9.1f %9.1f", name, r->rate, r->p50, r->p99,
	    r->max);
	if (b != NULL)
		printf(" %9.1f %9.1f", r->p50 - b->p50, r->p99 - b->p99);
	else
		printf(" %9s %9s", "-", "-");
	printf("   451:%ld ok:%ld other:%ld\n", r->n_tempfail, r->n_accept,
	    r->n_other);
}

int
main(int argc, char **argv)
{
	struct mw_ctx *ctx, *base = NULL;
	struct result r, b;
	int threads = 4, ch, check_only = 0;
	long n = 5000;

	while ((ch = getopt(argc, argv, "Ct:n:")) != -1) {
		switch (ch) {
		case 'C': check_only = 1; break;
		case 't': threads = atoi(optarg); break;
		case 'n': n = atol(optarg); break;
		default: goto usage;
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1 || argc > 2 || threads < 1 || threads > 200 || n < 10) {
usage:
		fprintf(stderr, "usage: greylist_bench [-t THREADS] [-n RCPTS] "
		    "CONFIG [BASELINE_CONFIG]\n       greylist_bench -C "
		    "CONFIG\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	mw_log_open("greylist_bench", 0, LOG_WARNING, 1);
	ctx = load(argv[0]);
	if (check_only) {
		mw_ctx_unref(ctx);
		return 0;
	}
	if (argc == 2)
		base = load(argv[1]);

	printf("greylist_bench: %d threads x %ld RCPTs per phase, "
	    "%d RCPTs per message, latency in microseconds\n", threads, n,
	    RCPTS_PER_MAIL);
	printf("%-9s %12s %9s %9s %9s %9s %9s\n", "phase", "decisions/s",
	    "p50", "p99", "max", "+p50", "+p99");
	if (base != NULL) {
		if (run_phase(base, threads, n, &b) == -1)
			return 1;
		print_row("baseline", &b, NULL);
	}
	if (run_phase(ctx, threads, n, &r) == -1)
		return 1;
	print_row("new", &r, base ? &b : NULL);
	/* delay = 1 s in the bench config: wait it out, then retry. */
	sleep(2);
	if (run_phase(ctx, threads, n, &r) == -1)
		return 1;
	print_row("pass", &r, base ? &b : NULL);
	if (run_phase(ctx, threads, n, &r) == -1)
		return 1;
	print_row("known", &r, base ? &b : NULL);
	mw_ctx_unref(ctx);
	if (base != NULL)
		mw_ctx_unref(base);
	return 0;
}
