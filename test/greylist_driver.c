/*
 * greylist_driver -- a long-lived SMTP client stand-in for t/greylist.sh:
 * loads an ini file, then reads commands on stdin and answers each with
 * exactly one line on stdout (flushed), so a shell test can drive it as
 * a coprocess, kill Redis under it, and go on in the same process.
 *
 *	greylist_driver CONFIG
 *
 *	connect IP		new session (the previous one is freed)
 *	auth USER		client authenticated (before mail)
 *	helo NAME
 *	mail <ADDR>
 *	rcpt <ADDR>		-> "451 4.7.1 Greylisted: ..." or "continue"
 *	eom			-> verdict, then " | NAME: VALUE" per added
 *				   header
 *	abort
 *	set iprev_pass 0|1	what earlier checks found (mw_session_set_results)
 *	set spf pass|fail|none
 *	set dnswl 0|1
 *	set score N		conn_score
 *	readonly 0|1		sessions from the next connect are read-only
 *				(as mailwarden-check: look, record nothing)
 *				and keep explain notes
 *	notes			-> the greylist module's notes of this
 *				   session, joined by " | "
 *	fds			-> number of open file descriptors
 *	time			-> milliseconds of the last command
 *	metrics			-> the /metrics lines of the Redis master
 *				   (mailwarden_redis_master,
 *				   _failovers_total, _seconds_without_master_total)
 *				   joined by " | "
 *	quit
 *
 * Verdict lines: "continue", "accept", or "CODE X.Y.Z text".
 */
#include "config.h"

#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mw_buf.h"
#include "mw_config.h"
#include "mw_log.h"
#include "mw_session.h"
#include "mw_stats.h"

static void
print_verdict(const struct mw_verdict *v, int newline)
{
	if (v->kind == MW_CONTINUE || v->kind == MW_ACCEPT)
		printf("%s", mw_verdict_name(v->kind));
	else
		printf("%d %s %s", v->code, v->xcode, v->text);
	if (newline)
		printf("\n");
}

static int
count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1;	/* the directory itself */
}

static double
now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

int
main(int argc, char **argv)
{
	struct mw_config *cfg;
	struct mw_ctx *ctx;
	struct mw_stats *stats;
	struct mw_session *s = NULL;
	struct mw_shared_results r;
	char line[4096], err[1024];
	double t0, last = 0;
	int read_only = 0;

	if (argc != 2) {
		fprintf(stderr, "usage: greylist_driver CONFIG\n");
		return 2;
	}
	/* Writes to a Redis that died must not kill us (libmilter does this). */
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);
	mw_log_open("greylist_driver", 0, getenv("MW_DEBUG") ? LOG_DEBUG :
	    LOG_NOTICE, 1);
	if (mw_config_load(argv[1], &cfg, err, sizeof(err)) == -1) {
		printf("config error: %s\n", err);
		return 1;
	}
	if (mw_ctx_new(cfg, &ctx, err, sizeof(err)) == -1) {
		printf("setup error: %s\n", err);
		return 1;
	}
	if ((stats = mw_stats_new(0, 1)) == NULL) {
		printf("out of memory\n");
		return 1;
	}
	mw_ctx_set_stats(ctx, stats);
	while (fgets(line, sizeof(line), stdin) != NULL) {
		char *arg;
		size_t n = strlen(line);

		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = '\0';
		if (line[0] == '\0' || line[0] == '#')
			continue;
		if ((arg = strchr(line, ' ')) != NULL)
			*arg++ = '\0';
		else
			arg = line + n;
		t0 = now_ms();
		if (strcmp(line, "quit") == 0)
			break;
		if (strcmp(line, "fds") == 0) {
			printf("%d\n", count_fds());
		} else if (strcmp(line, "time") == 0) {
			printf("%.3f\n", last);
		} else if (strcmp(line, "metrics") == 0) {
			struct mw_buf b = MW_BUF_INIT(1024 * 1024);
			const char *p, *e, *sep = "";

			mw_stats_render_metrics(stats, &b);
			for (p = mw_buf_str(&b); *p != '\0'; p = *e ? e + 1 : e) {
				e = strchr(p, '\n');
				if (e == NULL)
					e = p + strlen(p);
				if (strncmp(p, "mailwarden_redis_master", 23) == 0 ||
				    strncmp(p, "mailwarden_redis_failovers", 26) == 0 ||
				    strncmp(p, "mailwarden_redis_seconds", 24) == 0) {
					printf("%s%.*s", sep, (int)(e - p), p);
					sep = " | ";
				}
			}
			printf("\n");
			mw_buf_free(&b);
		} else if (strcmp(line, "connect") == 0) {
			mw_session_free(s);
			if ((s = mw_session_new(ctx)) == NULL) {
				printf("out of memory\n");
				return 1;
			}
			mw_session_set_explain(s, read_only);
			mw_session_set_read_only(s, read_only);
			print_verdict(mw_session_connect(s, arg, NULL, 25), 1);
		} else if (strcmp(line, "readonly") == 0) {
			read_only = atoi(arg);
			printf("ok\n");
		} else if (s == NULL) {
			printf("error: connect first\n");
		} else if (strcmp(line, "auth") == 0) {
			mw_session_set_auth(s, arg);
			printf("ok\n");
		} else if (strcmp(line, "helo") == 0) {
			print_verdict(mw_session_helo(s, arg), 1);
		} else if (strcmp(line, "mail") == 0) {
			print_verdict(mw_session_mail(s, arg, NULL, 0), 1);
		} else if (strcmp(line, "rcpt") == 0) {
			print_verdict(mw_session_rcpt(s, arg, NULL, 0), 1);
		} else if (strcmp(line, "eom") == 0) {
			const struct mw_hdr_change *c;
			size_t i, nc;

			print_verdict(mw_session_eom(s), 0);
			nc = mw_session_changes(s, &c);
			for (i = 0; i < nc; i++)
				if (c[i].op == MW_HDR_ADD)
					printf(" | %s: %s", c[i].name,
					    c[i].value);
			printf("\n");
		} else if (strcmp(line, "notes") == 0) {
			const struct mw_note *nv;
			size_t i, nn = mw_session_notes(s, &nv), k = 0;

			for (i = 0; i < nn; i++)
				if (nv[i].kind == MW_NOTE_EVIDENCE &&
				    strcmp(nv[i].module, "greylist") == 0)
					printf("%s%s", k++ ? " | " : "",
					    nv[i].text);
			printf("\n");
		} else if (strcmp(line, "abort") == 0) {
			mw_session_abort(s);
			printf("ok\n");
		} else if (strcmp(line, "set") == 0) {
			char *val = strchr(arg, ' ');

			if (val == NULL) {
				printf("error: set KEY VALUE\n");
				continue;
			}
			*val++ = '\0';
			r = *mw_session_results(s);
			if (strcmp(arg, "iprev_pass") == 0)
				r.iprev_pass = atoi(val);
			else if (strcmp(arg, "dnswl") == 0)
				r.dnswl_listed = atoi(val);
			else if (strcmp(arg, "score") == 0)
				mw_session_set_conn_score(s, atof(val));
			else if (strcmp(arg, "spf") == 0) {
				r.spf_done = 1;
				r.spf = strcmp(val, "pass") == 0 ?
				    MW_AUTH_PASS : strcmp(val, "fail") == 0 ?
				    MW_AUTH_FAIL : MW_AUTH_NONE;
			} else {
				printf("error: unknown key %s\n", arg);
				continue;
			}
			mw_session_set_results(s, &r);
			printf("ok\n");
		} else {
			printf("error: unknown command %s\n", line);
		}
		last = now_ms() - t0;
		fflush(stdout);
	}
	mw_session_free(s);
	mw_ctx_unref(ctx);
	mw_stats_free(stats);
	return 0;
}
