/*
 * fuzz_spf -- libFuzzer harness for mailwarden's SPF check: our record
 * validator and rewriter, our libspf2 DNS layer (limits, names, macros),
 * libspf2's compiler and macro expander, and the headers we write, with
 * hostile record text, macros, long names and odd senders and HELOs.
 * Built and run by test/fuzz/build.sh (clang, ASan + UBSan).
 *
 * One input is one SMTP transaction and the DNS world it sees:
 *	line 1	MAIL FROM address without <> (empty: the null sender)
 *	line 2	HELO name
 *	line 3	"6" for an IPv6 client, anything else IPv4
 *	rest	the zone, one record per line (see stub_dns.c), e.g.
 *		T * v=spf1 exists:%{L}.%{d2} -all
 *		T exp %{c} is not allowed
 *		A mail
 * The whole session runs (connect to end of message) with only the SPF
 * check enabled; DNS answers come from memory (stub_dns.c).
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
	char path[] = "/tmp/fuzz_spf.XXXXXX", err[512];
	struct mw_config *cfg;
	FILE *fp;
	int fd;

	(void)argc;
	(void)argv;
	mw_log_open("fuzz_spf", 0, LOG_CRIT, 1);
	if ((fd = mkstemp(path)) == -1 || (fp = fdopen(fd, "w")) == NULL)
		abort();
	fputs("[milter]\nauthserv_id = mx.fuzz.test\n"
	    "[iprev]\nenabled = no\n[helo]\nenabled = no\n"
	    "[dkim]\nverify = no\n[dmarc]\nenabled = no\n"
	    "[spf]\nfail_action = reject\ncheck_helo = yes\n", fp);
	fclose(fp);
	if (mw_config_load(path, &cfg, err, sizeof(err)) == -1 ||
	    mw_ctx_new(cfg, &ctx, err, sizeof(err)) == -1) {
		fprintf(stderr, "fuzz_spf: %s\n", err);
		abort();
	}
	unlink(path);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mw_session *s;
	const struct mw_hdr_change *ch;
	char *buf, *sender, *helo, *fam, *zone, *from;
	const char *ip;
	size_t n;

	if (size > 65536)
		return 0;
	if ((buf = malloc(size + 1)) == NULL)
		return 0;
	memcpy(buf, data, size);
	buf[size] = '\0';
	zone = buf;
	sender = strsep(&zone, "\n");
	helo = zone != NULL ? strsep(&zone, "\n") : "";
	fam = zone != NULL ? strsep(&zone, "\n") : "";
	if (zone == NULL)
		zone = "";
	ip = fam[0] == '6' ? "2001:db8::1" : "192.0.2.1";
	stub_dns_set(zone, ip);

	n = strlen(sender) + 3;
	if ((from = malloc(n)) == NULL || (s = mw_session_new(ctx)) == NULL) {
		free(from);
		free(buf);
		return 0;
	}
	snprintf(from, n, "<%s>", sender);
	/* Explain mode: the evidence notes (record text, results) too. */
	mw_session_set_explain(s, 1);
	mw_session_connect(s, ip, "client.fuzz.test", 25);
	mw_session_helo(s, helo);
	mw_session_mail(s, from, NULL, 0);
	mw_session_rcpt(s, "<bob@example.net>", NULL, 0);
	mw_session_rcpt(s, "<postmaster@example.net>", NULL, 0);
	mw_session_header(s, "Subject", " fuzz");
	mw_session_eoh(s);
	mw_session_body(s, (const unsigned char *)"hi\r\n", 4);
	mw_session_eom(s);
	/* touch every header we made, as the milter would */
	for (n = mw_session_changes(s, &ch); n > 0; n--)
		if (ch[n - 1].value != NULL && strlen(ch[n - 1].value) > 100000)
			abort();
	mw_session_free(s);
	free(from);
	free(buf);
	return 0;
}
