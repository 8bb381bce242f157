/*
 * spf_check -- evaluate SPF test cases through mailwarden's own SPF code
 * path (lib/mw_spf.c through a session, our libspf2 DNS layer, mw_dns)
 * and print the results.  Driven by test/spf_suite.py.
 *
 *	spf_check NAMESERVER [TIMEOUT_MS] < cases
 *
 * NAMESERVER is ip:port of the DNS server holding the zone data.  Each
 * input line is a case, three tab-separated fields:
 *
 *	CLIENT-IP <TAB> HELO <TAB> MAIL-FROM	(MAIL-FROM empty: null sender)
 *
 * and each output line its answer:
 *
 *	RESULT <TAB> EXPLANATION		(explanation empty if none)
 *
 * RESULT is the SPF result of the MAIL FROM identity (the HELO identity
 * for the null sender), as mw_spf publishes it for DMARC
 * (mw_session_results); the explanation is the one the domain gave for a
 * fail, read back from the 550 reply to RCPT ("... explains: TEXT").
 *
 * A whole session runs with every other check turned off, so that they
 * neither add DNS traffic nor change the reply.  The DNS cache is off:
 * every case sees the server's current zone data.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mw_config.h"
#include "mw_log.h"
#include "mw_cidr.h"
#include "mw_session.h"

static int
run_case(struct mw_ctx *ctx, char *line)
{
	struct mw_session *s;
	const struct mw_verdict *v;
	char *ip, *helo, *from, *exp;
	const char *text = "";
	int family;
	uint8_t addr[16];

	ip = strsep(&line, "\t");
	helo = strsep(&line, "\t");
	from = line;
	if (ip == NULL || helo == NULL || from == NULL) {
		printf("error\tbad input line\n");
		return -1;
	}
	if (mw_ip_parse(ip, &family, addr) == -1) {
		printf("error\tbad client address\n");
		return -1;
	}
	if ((s = mw_session_new(ctx)) == NULL) {
		printf("error\tout of memory\n");
		return -1;
	}
	mw_session_connect(s, ip, NULL, 25);
	mw_session_helo(s, helo);
	mw_session_mail(s, from, NULL, 0);
	/* A fail is refused at RCPT, with the domain's explanation. */
	v = mw_session_rcpt(s, "<spf-check@receiver.test>", NULL, 0);
	if (v->kind == MW_REJECT)
		text = v->text;
	exp = strstr(text, " explains: ");
	printf("%s\t%s\n", mw_session_results(s)->spf_done ?
	    mw_auth_result_name(mw_session_results(s)->spf) : "unchecked",
	    exp != NULL ? exp + strlen(" explains: ") : "");
	fflush(stdout);
	mw_session_free(s);
	return 0;
}

int
main(int argc, char **argv)
{
	char cfgpath[] = "/tmp/spf_check.XXXXXX", err[1024];
	char line[8192];
	struct mw_config *cfg;
	struct mw_ctx *ctx;
	FILE *fp;
	int fd;

	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: spf_check NAMESERVER [TIMEOUT_MS]\n");
		return 2;
	}
	mw_log_open("spf_check", 0, getenv("MW_DEBUG") ? LOG_DEBUG : LOG_ERR,
	    1);
	if ((fd = mkstemp(cfgpath)) == -1 || (fp = fdopen(fd, "w")) == NULL) {
		perror("mkstemp");
		return 2;
	}
	/* SPF alone: no other check asks DNS or changes the reply. */
	fprintf(fp, "[milter]\nauthserv_id = mx.receiver.test\n"
	    "trusted_networks = 255.255.255.255/32\n"
	    "[dns]\nnameservers = %s\ntimeout_ms = %s\ntries = 1\n"
	    "cache_size = 0\n"
	    "[spf]\nfail_action = reject\ncheck_helo = no\n"
	    "[iprev]\nenabled = no\n[helo]\nenabled = no\n"
	    "[dnsbl]\nenabled = no\n[dkim]\nenabled = no\n"
	    "[dmarc]\nenabled = no\n", argv[1], argc > 2 ? argv[2] : "400");
	fclose(fp);
	if (mw_config_load(cfgpath, &cfg, err, sizeof(err)) == -1) {
		unlink(cfgpath);
		fprintf(stderr, "spf_check: %s\n", err);
		return 2;
	}
	unlink(cfgpath);
	if (mw_ctx_new(cfg, &ctx, err, sizeof(err)) == -1) {
		fprintf(stderr, "spf_check: %s\n", err);
		return 2;
	}
	while (fgets(line, sizeof(line), stdin) != NULL) {
		line[strcspn(line, "\r\n")] = '\0';
		if (line[0] == '\0')
			continue;
		run_case(ctx, line);
	}
	mw_ctx_unref(ctx);
	return 0;
}
