/*
 * mwscenario -- run one scenario file through the session library and
 * print a transcript: each SMTP event and the verdict, then the header
 * changes.  test/run_scenarios.sh compares it with the .out file beside
 * the scenario (golden tests: a new case is a new file).
 *
 * Scenario syntax, one event per line ('#' starts a comment line):
 *	config			the lines up to "end" are the ini file;
 *				@VAR@ is replaced by $VAR from the environment
 *	connect IP [NAME]	client address and MTA-verified name
 *	auth USER		client authenticated as USER
 *	tls VERSION [CIPHER [BITS]]	the MTA's TLS macros ("tls -" = plaintext)
 *	helo NAME
 *	mail <ADDR> [ARGS...]
 *	rcpt <ADDR>
 *	header NAME: VALUE	VALUE may use \t \n \\ \0 escapes
 *	eoh
 *	body TEXT		one body line (escapes as above), CRLF added
 *	bodyfill N		N bytes of 76-char lines
 *	bodyrun N		one line of N bytes "x", no blank in it, then
 *				CRLF (sent in 64 kB chunks)
 *	eom
 *	abort
 *	pause MS		wait MS milliseconds (DNS answers arrive
 *				meanwhile); not printed
 *	repeat N header NAME: VALUE
 *	log			from here on the library's log lines (level
 *				info: the one line per message) are part of
 *				the transcript, "mwscenario: ..."
 */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mw_config.h"
#include "mw_log.h"
#include "mw_session.h"

static const char *
kind_name(enum mw_verdict_kind k)
{
	return mw_verdict_name(k);
}

static void
print_verdict(const struct mw_verdict *v)
{
	if (v->kind == MW_CONTINUE || v->kind == MW_ACCEPT)
		printf("  -> %s\n", kind_name(v->kind));
	else
		printf("  -> %s %d %s %s\n", kind_name(v->kind), v->code,
		    v->xcode, v->text);
}

/* Undo \t \n \r \\ \0 \xHH escapes in place; returns the length. */
static size_t
unescape(char *s)
{
	char *r = s, *w = s;

	while (*r != '\0') {
		if (*r != '\\' || r[1] == '\0') {
			*w++ = *r++;
			continue;
		}
		r++;
		switch (*r) {
		case 't': *w++ = '\t'; r++; break;
		case 'n': *w++ = '\n'; r++; break;
		case 'r': *w++ = '\r'; r++; break;
		case '0': *w++ = '\0'; r++; break;
		case 'x':
			if (isxdigit((unsigned char)r[1]) &&
			    isxdigit((unsigned char)r[2])) {
				char hex[3] = { r[1], r[2], '\0' };

				*w++ = (char)strtol(hex, NULL, 16);
				r += 3;
				break;
			}
			/* FALLTHROUGH */
		default: *w++ = *r++; break;
		}
	}
	*w = '\0';
	return (size_t)(w - s);
}

/* Replace @VAR@ with getenv("VAR"). */
static void
expand(const char *in, FILE *out)
{
	const char *p = in;

	while (*p != '\0') {
		const char *end;

		if (*p == '@' && (end = strchr(p + 1, '@')) != NULL &&
		    end - p > 1 && end - p < 64) {
			char var[64];
			const char *val;
			size_t n = (size_t)(end - p - 1);
			size_t i;
			int ok = 1;

			memcpy(var, p + 1, n);
			var[n] = '\0';
			for (i = 0; i < n; i++)
				if (!isupper((unsigned char)var[i]) &&
				    var[i] != '_' && !isdigit((unsigned char)var[i]))
					ok = 0;
			if (ok && (val = getenv(var)) != NULL) {
				fputs(val, out);
				p = end + 1;
				continue;
			}
		}
		fputc(*p++, out);
	}
}

static void
print_changes(struct mw_session *s)
{
	const struct mw_hdr_change *c;
	size_t i, n = mw_session_changes(s, &c);

	if (mw_session_quarantine(s) != NULL)
		printf("  quarantine: %s\n", mw_session_quarantine(s));

	for (i = 0; i < n; i++) {
		switch (c[i].op) {
		case MW_HDR_DELETE:
			printf("  delete %s[%d]\n", c[i].name, c[i].index);
			break;
		case MW_HDR_INSERT:
			printf("  insert[%d] %s: %s\n", c[i].index, c[i].name,
			    c[i].value);
			break;
		case MW_HDR_ADD:
			printf("  add %s: %s\n", c[i].name, c[i].value);
			break;
		}
	}
}

static int
split_args(char *line, char **argv, int max)
{
	int n = 0;
	char *p = line;

	while (*p != '\0' && n < max) {
		while (*p == ' ')
			p++;
		if (*p == '\0')
			break;
		argv[n++] = p;
		while (*p != '\0' && *p != ' ')
			p++;
		if (*p != '\0')
			*p++ = '\0';
	}
	return n;
}

static void
do_header(struct mw_session *s, char *arg, int quiet)
{
	char *colon = strchr(arg, ':');
	const struct mw_verdict *v;

	if (colon == NULL) {
		printf("  !! header without colon\n");
		return;
	}
	*colon = '\0';
	unescape(colon + 1);
	v = mw_session_header(s, arg, colon + 1);
	if (!quiet || v->kind != MW_CONTINUE)
		print_verdict(v);
}

int
main(int argc, char **argv)
{
	FILE *fp, *cf;
	char line[65536], cfgpath[] = "/tmp/mwscenario.XXXXXX";
	struct mw_config *cfg = NULL;
	struct mw_ctx *ctx = NULL;
	struct mw_session *s = NULL;
	char err[1024];
	int fd, lineno = 0;

	if (argc != 2) {
		fprintf(stderr, "usage: mwscenario FILE\n");
		return 2;
	}
	if ((fp = fopen(argv[1], "r")) == NULL) {
		perror(argv[1]);
		return 2;
	}
	mw_log_open("mwscenario", 0, getenv("MW_DEBUG") ? LOG_DEBUG : LOG_ERR,
	    1);
	/* Line by line, so that log lines (stderr) fall in their place. */
	setvbuf(stdout, NULL, _IOLBF, 0);
	while (fgets(line, sizeof(line), fp) != NULL) {
		char *cmd = line, *arg;
		size_t n;

		lineno++;
		n = strlen(line);
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = '\0';
		if (line[0] == '#' || line[0] == '\0')
			continue;
		arg = strchr(line, ' ');
		if (arg != NULL)
			*arg++ = '\0';
		else
			arg = line + n;

		if (strcmp(cmd, "config") == 0) {
			if ((fd = mkstemp(cfgpath)) == -1 ||
			    (cf = fdopen(fd, "w")) == NULL) {
				perror("mkstemp");
				return 2;
			}
			while (fgets(line, sizeof(line), fp) != NULL &&
			    strcmp(line, "end\n") != 0) {
				lineno++;
				expand(line, cf);
			}
			lineno++;
			fclose(cf);
			if (mw_config_load(cfgpath, &cfg, err, sizeof(err)) ==
			    -1) {
				/* Print the error without the temp path. */
				const char *e = strchr(err, ':');

				printf("config error: %s\n", e ? e + 1 : err);
				unlink(cfgpath);
				return 0;
			}
			unlink(cfgpath);
			if (mw_ctx_new(cfg, &ctx, err, sizeof(err)) == -1) {
				printf("setup error: %s\n", err);
				return 0;
			}
			continue;
		}
		if (ctx == NULL) {
			fprintf(stderr, "%s:%d: no config before events\n",
			    argv[1], lineno);
			return 2;
		}
		if (strcmp(cmd, "log") == 0) {
			/* stderr (the log) into the transcript */
			fflush(stdout);
			if (dup2(STDOUT_FILENO, STDERR_FILENO) == -1) {
				perror("dup2");
				return 2;
			}
			if (!getenv("MW_DEBUG"))
				mw_log_set_level(LOG_INFO);
			continue;
		}
		if (strcmp(cmd, "connect") == 0) {
			char *av[3];
			int ac = split_args(arg, av, 2);

			if (s != NULL)
				mw_session_free(s);
			if ((s = mw_session_new(ctx)) == NULL)
				return 2;
			printf("connect %s %s\n", ac > 0 ? av[0] : "-",
			    ac > 1 ? av[1] : "-");
			print_verdict(mw_session_connect(s, ac > 0 ? av[0] :
			    NULL, ac > 1 ? av[1] : NULL, 25));
			continue;
		}
		if (s == NULL) {
			fprintf(stderr, "%s:%d: connect first\n", argv[1],
			    lineno);
			return 2;
		}
		if (strcmp(cmd, "auth") == 0) {
			mw_session_set_auth(s, arg);
			printf("auth %s\n", arg);
		} else if (strcmp(cmd, "tls") == 0) {
			char *av[3] = { NULL, NULL, NULL };
			struct mw_tls_info t;

			printf("tls %s\n", arg);
			split_args(arg, av, 3);
			memset(&t, 0, sizeof(t));
			if (av[0] != NULL && strcmp(av[0], "-") != 0)
				t.version = av[0];
			t.cipher = av[1];
			t.bits = av[2];
			mw_session_set_tls(s, &t);
		} else if (strcmp(cmd, "helo") == 0) {
			printf("helo %s\n", arg);
			print_verdict(mw_session_helo(s, arg));
		} else if (strcmp(cmd, "mail") == 0) {
			char *av[16];
			int ac;

			printf("mail %s\n", arg);
			ac = split_args(arg, av, 16);
			print_verdict(mw_session_mail(s, ac > 0 ? av[0] : "<>",
			    av + 1, ac > 0 ? (size_t)ac - 1 : 0));
		} else if (strcmp(cmd, "rcpt") == 0) {
			printf("rcpt %s\n", arg);
			print_verdict(mw_session_rcpt(s, arg, NULL, 0));
		} else if (strcmp(cmd, "header") == 0) {
			printf("header %s\n", arg);
			do_header(s, arg, 0);
		} else if (strcmp(cmd, "repeat") == 0) {
			char *rest;
			long i, count = strtol(arg, &rest, 10);

			printf("repeat %s\n", arg);
			while (*rest == ' ')
				rest++;
			if (strncmp(rest, "header ", 7) != 0) {
				printf("  !! repeat supports header only\n");
				continue;
			}
			rest += 7;
			for (i = 0; i < count; i++) {
				char copy[65536];

				snprintf(copy, sizeof(copy), "%s", rest);
				do_header(s, copy, 1);
			}
		} else if (strcmp(cmd, "eoh") == 0) {
			printf("eoh\n");
			print_verdict(mw_session_eoh(s));
		} else if (strcmp(cmd, "body") == 0) {
			size_t len = unescape(arg);

			printf("body (%zu bytes)\n", len + 2);
			arg[len] = '\r';
			arg[len + 1] = '\n';
			print_verdict(mw_session_body(s, (unsigned char *)arg,
			    len + 2));
		} else if (strcmp(cmd, "bodyfill") == 0) {
			unsigned long long total = strtoull(arg, NULL, 10), done;
			unsigned char chunk[65536];
			const struct mw_verdict *v = NULL;
			size_t i;

			/* 76 characters + CRLF per line, sent in 64 kB chunks. */
			for (i = 0; i < sizeof(chunk); i++)
				chunk[i] = (i % 78 == 76) ? '\r' :
				    (i % 78 == 77) ? '\n' : 'a' + i % 26;
			printf("bodyfill %llu\n", total);
			for (done = 0; done < total; done += sizeof(chunk)) {
				size_t len = total - done < sizeof(chunk) ?
				    (size_t)(total - done) : sizeof(chunk);

				v = mw_session_body(s, chunk, len);
				if (v->kind != MW_CONTINUE)
					break;
			}
			if (v != NULL)
				print_verdict(v);
		} else if (strcmp(cmd, "bodyrun") == 0) {
			unsigned long long total = strtoull(arg, NULL, 10), done;
			unsigned char chunk[65536];
			const struct mw_verdict *v = NULL;

			memset(chunk, 'x', sizeof(chunk));
			printf("bodyrun %llu\n", total);
			for (done = 0; done < total; done += sizeof(chunk)) {
				size_t len = total - done < sizeof(chunk) ?
				    (size_t)(total - done) : sizeof(chunk);

				v = mw_session_body(s, chunk, len);
				if (v->kind != MW_CONTINUE)
					break;
			}
			if (v == NULL || v->kind == MW_CONTINUE)
				v = mw_session_body(s, (const unsigned char *)
				    "\r\n", 2);
			print_verdict(v);
		} else if (strcmp(cmd, "eom") == 0) {
			const struct mw_verdict *v;

			printf("eom\n");
			v = mw_session_eom(s);
			print_verdict(v);
			print_changes(s);
		} else if (strcmp(cmd, "pause") == 0) {
			long ms = strtol(arg, NULL, 10);

			if (ms > 0 && ms < 10000)
				usleep((useconds_t)ms * 1000);
		} else if (strcmp(cmd, "abort") == 0) {
			printf("abort\n");
			mw_session_abort(s);
		} else {
			fprintf(stderr, "%s:%d: unknown command %s\n", argv[1],
			    lineno, cmd);
			return 2;
		}
	}
	fclose(fp);
	mw_session_free(s);
	mw_ctx_unref(ctx);
	return 0;
}
