/*
 * dkim_check -- feed whole message files through the session library the
 * way the milter would, for test/dkim_corpus.sh and bench/.
 *
 *	dkim_check CONFIG verify FILE...
 *		one line per file: "FILE<TAB>RESULTS<TAB>A-R", RESULTS the
 *		dkim= results in signature order, comma separated ("none" if
 *		unsigned), A-R our Authentication-Results on one line
 *	dkim_check CONFIG sign FILE
 *		the message as a trusted client (127.0.0.1) would have it
 *		delivered: our DKIM-Signature fields on top, then FILE
 *	dkim_check CONFIG checkkeys
 *		what `mailwarden -t` says about the signing keys
 *	dkim_check CONFIG threads N ROUNDS FILE...
 *		N threads, each verifying every FILE ROUNDS times in its own
 *		session; fails if any result differs from a first serial run
 *
 * A file is split into header fields and body as an MTA would
 * (lib/mw_message.c): each field's value is what follows the colon,
 * leading white space kept, folded lines joined with bare LF (as Postfix
 * hands them to milters), and the body goes with CRLF line ends, in
 * libmilter's 64 kB chunks.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mw_config.h"
#include "mw_log.h"
#include "mw_message.h"
#include "mw_session.h"

static void __attribute__((format(printf, 1, 2), noreturn))
die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "dkim_check: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

/* FILE read by lib/mw_message.c, as the milter would get it. */
static void
load_message(const char *path, struct mw_message *m)
{
	FILE *fp = fopen(path, "rb");
	char err[256];

	if (fp == NULL)
		die("cannot open %s", path);
	if (mw_message_load(fp, m, err, sizeof(err)) == -1)
		die("%s", err);
	fclose(fp);
}

/* FILE as it is, to stdout. */
static void
copy_file(const char *path)
{
	FILE *fp = fopen(path, "rb");
	char buf[16384];
	size_t n;

	if (fp == NULL)
		die("cannot open %s", path);
	while ((n = fread(buf, 1, sizeof(buf), fp)) > 0)
		fwrite(buf, 1, n, stdout);
	fclose(fp);
}

/* Run one message through a session; 0 if it got to the end of data. */
static int
run_message(struct mw_session *s, const struct mw_message *m,
    const char *ip)
{
	const struct mw_verdict *v;

	if (mw_session_connect(s, ip, "client.example", 25)->kind ==
	    MW_REJECT)
		return -1;
	(void)mw_session_helo(s, "client.example");
	(void)mw_session_mail(s, "<sender@example.org>", NULL, 0);
	if (mw_session_rcpt(s, "<rcpt@example.net>", NULL, 0)->kind ==
	    MW_REJECT)
		return -1;
	(void)mw_session_message(s, m);
	v = mw_session_eom(s);
	return v->kind == MW_REJECT || v->kind == MW_TEMPFAIL ? 1 : 0;
}

/*
 * The dkim= results of an A-R value, in order: the method=result word
 * that starts each resinfo (resinfos are split at ';' outside quoted
 * strings and comments).
 */
static void
dkim_results(const char *ar, char *out, size_t outlen)
{
	const char *p = ar;
	int depth = 0, quoted = 0, first = 1, start = 0;

	out[0] = '\0';
	for (; *p != '\0'; p++) {
		if (quoted) {
			if (*p == '\\' && p[1] != '\0')
				p++;
			else if (*p == '"')
				quoted = 0;
			continue;
		}
		if (depth > 0) {
			if (*p == '\\' && p[1] != '\0')
				p++;
			else if (*p == '(')
				depth++;
			else if (*p == ')')
				depth--;
			continue;
		}
		if (*p == '"')
			quoted = 1;
		else if (*p == '(')
			depth = 1;
		else if (*p == ';')
			start = 1;
		else if (start && !isspace((unsigned char)*p)) {
			start = 0;
			if (strncasecmp(p, "dkim=", 5) == 0) {
				size_t n = strcspn(p + 5, " \t\r\n;");
				size_t l = strlen(out);

				snprintf(out + l, outlen - l, "%s%.*s",
				    first ? "" : ",", (int)n, p + 5);
				first = 0;
			}
		}
	}
	if (out[0] == '\0')
		snprintf(out, outlen, "-");
}

static void
one_line(const char *in, char *out, size_t outlen)
{
	size_t o = 0;

	for (; *in != '\0' && o + 1 < outlen; in++)
		out[o++] = (*in == '\n' || *in == '\t') ? ' ' : *in;
	out[o] = '\0';
}

static int
verify_file(struct mw_ctx *ctx, const char *path, char *res, size_t reslen,
    char *arline, size_t arlen)
{
	struct mw_session *s = mw_session_new(ctx);
	struct mw_message m;
	const char *ar;

	if (s == NULL)
		die("out of memory%s", "");
	load_message(path, &m);
	if (run_message(s, &m, "192.0.2.1") == -1) {
		snprintf(res, reslen, "refused");
		arline[0] = '\0';
	} else {
		ar = mw_session_authres(s);
		dkim_results(ar != NULL ? ar : "", res, reslen);
		one_line(ar != NULL ? ar : "", arline, arlen);
	}
	mw_message_free(&m);
	mw_session_free(s);
	return 0;
}

static int
do_verify(struct mw_ctx *ctx, int argc, char **argv)
{
	char res[512], ar[8192];
	int i;

	for (i = 0; i < argc; i++) {
		verify_file(ctx, argv[i], res, sizeof(res), ar, sizeof(ar));
		printf("%s\t%s\t%s\n", argv[i], res, ar);
		fflush(stdout);
	}
	return 0;
}

static int
do_sign(struct mw_ctx *ctx, const char *path)
{
	struct mw_session *s = mw_session_new(ctx);
	const struct mw_hdr_change *c;
	struct mw_message m;
	size_t i, n;

	load_message(path, &m);
	if (run_message(s, &m, "127.0.0.1") != 0)
		die("%s: refused", path);
	/* Each was inserted at the top: the last one ends up first. */
	n = mw_session_changes(s, &c);
	for (i = n; i-- > 0; ) {
		const char *v;

		if (c[i].op != MW_HDR_INSERT ||
		    strcmp(c[i].name, "DKIM-Signature") != 0)
			continue;
		/* As the milter gives it to the MTA: leading space, CRLF. */
		printf("%s: ", c[i].name);
		for (v = c[i].value; *v != '\0'; v++)
			if (*v == '\n')
				fputs("\r\n", stdout);
			else
				putchar(*v);
		fputs("\r\n", stdout);
	}
	copy_file(path);
	mw_message_free(&m);
	mw_session_free(s);
	return 0;
}

struct job {
	struct mw_ctx	 *ctx;
	char		**files;
	char		**expect;
	int		  nfiles;
	int		  rounds;
	int		  errors;
};

static void *
thread_main(void *arg)
{
	struct job *j = arg;
	char res[512], ar[8192];
	int r, i;

	for (r = 0; r < j->rounds; r++)
		for (i = 0; i < j->nfiles; i++) {
			verify_file(j->ctx, j->files[i], res, sizeof(res), ar,
			    sizeof(ar));
			if (strcmp(res, j->expect[i]) != 0) {
				fprintf(stderr, "%s: %s, serially %s\n",
				    j->files[i], res, j->expect[i]);
				j->errors++;
			}
		}
	return NULL;
}

static int
do_threads(struct mw_ctx *ctx, int nthreads, int rounds, int argc,
    char **argv)
{
	pthread_t tid[64];
	struct job jobs[64];
	char **expect, res[512], ar[8192];
	int i, errors = 0;

	if (nthreads < 1 || nthreads > 64)
		die("1 to 64 threads, not %s", "that");
	if ((expect = calloc((size_t)argc, sizeof(char *))) == NULL)
		die("out of memory%s", "");
	for (i = 0; i < argc; i++) {
		verify_file(ctx, argv[i], res, sizeof(res), ar, sizeof(ar));
		expect[i] = strdup(res);
	}
	for (i = 0; i < nthreads; i++) {
		jobs[i] = (struct job){ ctx, argv, expect, argc, rounds, 0 };
		if (pthread_create(&tid[i], NULL, thread_main, &jobs[i]) != 0)
			die("pthread_create failed%s", "");
	}
	for (i = 0; i < nthreads; i++) {
		pthread_join(tid[i], NULL);
		errors += jobs[i].errors;
	}
	printf("%d threads x %d rounds x %d messages: %d differences\n",
	    nthreads, rounds, argc, errors);
	for (i = 0; i < argc; i++)
		free(expect[i]);
	free(expect);
	return errors == 0 ? 0 : 1;
}

int
main(int argc, char **argv)
{
	struct mw_config *cfg;
	struct mw_ctx *ctx;
	char err[1024];
	int ret = 2;

	if (argc < 3) {
		fprintf(stderr, "usage: dkim_check CONFIG verify FILE...\n"
		    "       dkim_check CONFIG sign FILE\n"
		    "       dkim_check CONFIG checkkeys\n"
		    "       dkim_check CONFIG threads N ROUNDS FILE...\n");
		return 2;
	}
	mw_log_open("dkim_check", 0, getenv("MW_DEBUG") ? LOG_DEBUG : LOG_ERR,
	    1);
	if (mw_config_load(argv[1], &cfg, err, sizeof(err)) == -1) {
		fprintf(stderr, "dkim_check: %s\n", err);
		return 3;
	}
	if (mw_ctx_new(cfg, &ctx, err, sizeof(err)) == -1) {
		fprintf(stderr, "dkim_check: %s\n", err);
		return 3;
	}
	if (strcmp(argv[2], "verify") == 0)
		ret = do_verify(ctx, argc - 3, argv + 3);
	else if (strcmp(argv[2], "sign") == 0 && argc == 4)
		ret = do_sign(ctx, argv[3]);
	else if (strcmp(argv[2], "checkkeys") == 0)
		ret = mw_ctx_self_check(ctx, stdout) == 0 ? 0 : 1;
	else if (strcmp(argv[2], "threads") == 0 && argc >= 6)
		ret = do_threads(ctx, atoi(argv[3]), atoi(argv[4]), argc - 5,
		    argv + 5);
	else
		fprintf(stderr, "dkim_check: unknown command %s\n", argv[2]);
	mw_ctx_unref(ctx);
	return ret;
}
