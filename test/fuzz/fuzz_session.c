/*
 * fuzz_session -- libFuzzer harness for the session API fed arbitrary
 * event sequences, with every check on (default configuration, DNS from
 * memory): events in any order (RCPT before MAIL, headers after ABORT,
 * a second end of message ...), hostile header fields (From, DKIM-
 * Signature, ARC sets ([arc] on, seeds arc_*: one and two sets sealed by
 * dkimpy), Authentication-Results, names with white space before the
 * colon), odd envelope addresses.  Built and run by test/fuzz/build.sh.
 *
 * One input is a list of lines; the first byte of a line is the event,
 * the rest its argument:
 *	C<ip> connect (ip "6..." = 2001:db8::1, else 192.0.2.1), H helo,
 *	M mail, R rcpt, h header "Name:value" (split at the first ':'),
 *	E end of header, B body line, . end of message, A abort,
 *	U authenticated as, Q queue id, N a new session,
 *	Z a DNS record for stub_dns.c ("T _dmarc.x v=DMARC1; p=reject").
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mw_config.h"
#include "mw_log.h"
#include "mw_session.h"
#include "stub_dns.h"

static struct mw_ctx *ctx;

int	LLVMFuzzerInitialize(int *argc, char ***argv);
int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char path[] = "/tmp/fuzz_session.XXXXXX", err[512];
	struct mw_config *cfg;
	FILE *fp;
	int fd;

	(void)argc;
	(void)argv;
	mw_log_open("fuzz_session", 0, LOG_CRIT, 1);
	if ((fd = mkstemp(path)) == -1 || (fp = fdopen(fd, "w")) == NULL)
		abort();
	fputs("[milter]\nauthserv_id = mx.fuzz.test\nuser = nobody\n"
	    "[spf]\ncheck_helo = yes\n[dmarc]\nquarantine_action = hold\n"
	    "[arc]\nenabled = yes\ntrusted_sealers = dkim.test\n",
	    fp);
	fclose(fp);
	if (mw_config_load(path, &cfg, err, sizeof(err)) == -1 ||
	    mw_ctx_new(cfg, &ctx, err, sizeof(err)) == -1) {
		fprintf(stderr, "fuzz_session: %s\n", err);
		abort();
	}
	unlink(path);
	return 0;
}

/* What the milter does with the results: read every one. */
static void
consume(struct mw_session *s, const struct mw_verdict *v)
{
	const struct mw_hdr_change *ch;
	size_t n;

	if (v->kind != MW_CONTINUE && (v->code < 400 || v->code > 599))
		abort();
	for (n = mw_session_changes(s, &ch); n > 0; n--)
		if (ch[n - 1].name == NULL ||
		    (ch[n - 1].value != NULL && strlen(ch[n - 1].value) > 1000000))
			abort();
	(void)mw_session_quarantine(s);
	(void)mw_session_authres(s);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mw_session *s;
	char *buf, *p, *line, *zone, *z;
	const char *ip = "192.0.2.1";

	if (size > 65536)
		return 0;
	if ((buf = malloc(size + 1)) == NULL)
		return 0;
	memcpy(buf, data, size);
	buf[size] = '\0';
	/* The DNS world first: every Z line, in order. */
	if ((zone = malloc(size + 2)) == NULL) {
		free(buf);
		return 0;
	}
	z = zone;
	for (p = buf; *p != '\0'; ) {
		size_t n = strcspn(p, "\n");

		if (p[0] == 'Z') {
			memcpy(z, p + 1, n - 1);
			z += n - 1;
			*z++ = '\n';
		}
		p += n + (p[n] == '\n');
	}
	*z = '\0';
	stub_dns_set(zone, ip);
	if ((s = mw_session_new(ctx)) == NULL) {
		free(zone);
		free(buf);
		return 0;
	}
	p = buf;
	while ((line = strsep(&p, "\n")) != NULL) {
		char op = line[0], *arg = op != '\0' ? line + 1 : line, *colon;

		switch (op) {
		case 'C':
			ip = arg[0] == '6' ? "2001:db8::1" : "192.0.2.1";
			stub_dns_set(zone, ip);
			consume(s, mw_session_connect(s, ip, arg[0] != '\0' ?
			    arg + 1 : NULL, 25));
			break;
		case 'H':
			consume(s, mw_session_helo(s, arg));
			break;
		case 'M':
			consume(s, mw_session_mail(s, arg, NULL, 0));
			break;
		case 'R':
			consume(s, mw_session_rcpt(s, arg, NULL, 0));
			break;
		case 'h':
			if ((colon = strchr(arg, ':')) != NULL)
				*colon++ = '\0';
			consume(s, mw_session_header(s, arg, colon != NULL ?
			    colon : ""));
			break;
		case 'E':
			consume(s, mw_session_eoh(s));
			break;
		case 'B':
			consume(s, mw_session_body(s, (unsigned char *)arg,
			    strlen(arg)));
			consume(s, mw_session_body(s,
			    (const unsigned char *)"\r\n", 2));
			break;
		case '.':
			consume(s, mw_session_eom(s));
			break;
		case 'A':
			mw_session_abort(s);
			break;
		case 'U':
			mw_session_set_auth(s, arg);
			break;
		case 'Q':
			mw_session_set_queue_id(s, arg);
			break;
		case 'N':
			mw_session_free(s);
			if ((s = mw_session_new(ctx)) == NULL)
				goto out;
			break;
		default:
			break;
		}
	}
	mw_session_free(s);
out:
	free(zone);
	free(buf);
	return 0;
}
