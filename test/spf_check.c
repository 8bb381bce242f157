/*
 * spf_check -- evaluate SPF test cases through mailwarden's own SPF code
 * path (lib/mw_spf.c: its on_mail hook, our libspf2 DNS layer, mw_dns)
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
 * for the null sender), as mw_spf publishes it for DMARC in s->res.spf;
 * the explanation is the one the domain gave for a fail, read back from
 * the 550 reply mw_spf asks the session to give ("... explains: TEXT").
 *
 * Only the SPF module's hook runs (not the whole session), so that the
 * other checks neither add DNS traffic nor change the reply.  The DNS
 * cache is off: every case sees the server's current zone data.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mw_config.h"
#include "mw_log.h"
#include "mw_module.h"
#include "mw_session_priv.h"

static int
run_case(struct mw_ctx *ctx, int spf, char *line)
{
	struct mw_session *s;
	char *ip, *helo, *from, *exp;
	const char *text;

	ip = strsep(&line, "\t");
	helo = strsep(&line, "\t");
	from = line;
	if (ip == NULL || helo == NULL || from == NULL) {
		printf("error\tbad input line\n");
		return -1;
	}
	if ((s = mw_session_new(ctx)) == NULL) {
		printf("error\tout of memory\n");
		return -1;
	}
	/* What mw_session_connect, _helo and _mail set, without the hooks. */
	if (mw_ip_parse(ip, &s->family, s->addr) == -1) {
		printf("error\tbad client address\n");
		mw_session_free(s);
		return -1;
	}
	snprintf(s->ip, sizeof(s->ip), "%s", ip);
	s->helo = strdup(helo);
	s->mail_from = strdup(from);
	s->phase = MW_PH_MAIL;
	s->in_transaction = 1;
	if (s->helo == NULL || s->mail_from == NULL) {
		printf("error\tout of memory\n");
		mw_session_free(s);
		return -1;
	}

	s->running_index = spf;
	mw_modules[spf]->on_mail(s, s->cfg->mod[spf], s->state[spf]);

	text = s->msg_policy.kind == MW_REJECT ? s->msg_policy.text : "";
	exp = strstr(text, " explains: ");
	printf("%s\t%s\n", s->res.spf_done ? mw_auth_result_name(s->res.spf) :
	    "unchecked", exp != NULL ? exp + strlen(" explains: ") : "");
	fflush(stdout);
	/* Undo by hand what the other modules never saw. */
	if (mw_modules[spf]->on_reset != NULL)
		mw_modules[spf]->on_reset(s, s->cfg->mod[spf], s->state[spf]);
	if (mw_modules[spf]->on_close != NULL)
		mw_modules[spf]->on_close(s, s->cfg->mod[spf], s->state[spf]);
	free(s->mail_from);
	s->mail_from = NULL;
	s->in_transaction = 0;
	s->phase = MW_PH_NEW;
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
	int fd, spf;

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
	fprintf(fp, "[milter]\nauthserv_id = mx.receiver.test\n"
	    "[dns]\nnameservers = %s\ntimeout_ms = %s\ntries = 1\n"
	    "cache_size = 0\n"
	    "[spf]\nfail_action = reject\ncheck_helo = no\n", argv[1],
	    argc > 2 ? argv[2] : "400");
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
	if ((spf = mw_module_index("spf")) < 0 ||
	    mw_modules[spf]->on_mail == NULL) {
		fprintf(stderr, "spf_check: no spf module\n");
		return 2;
	}
	while (fgets(line, sizeof(line), stdin) != NULL) {
		line[strcspn(line, "\r\n")] = '\0';
		if (line[0] == '\0')
			continue;
		run_case(ctx, spf, line);
	}
	mw_ctx_unref(ctx);
	return 0;
}
