/*
 * mailwarden-check -- answers two questions with the library and the
 * configuration the daemon uses:
 *
 *   "why was this message rejected / greylisted?"  (explain mode)
 *	mailwarden-check [-c mailwarden.ini] --ip 192.0.2.1 [--helo NAME]
 *	    --from a@example.org --rcpt b@example.net [message.eml]
 *	runs one transaction through the session library as the daemon
 *	would and prints every step with the evidence the checks used, the
 *	score, the SMTP reply and the Authentication-Results.  Exit 0
 *	accept, 75 tempfail, 69 reject.
 *
 *   "will big receivers accept my mail?"  (self-check mode)
 *	mailwarden-check --self --domain example.org [--ip 203.0.113.5]
 *	    [--helo mx.example.org] [--selector sel] [--key private.pem]
 *	    [--smtp]
 *	checks the sender's DNS (PTR, HELO, MX, SPF, DKIM, DMARC, DNSBLs)
 *	and optionally probes its MX over SMTP.  Exit 0 all pass, 1
 *	warnings, 2 failures.
 *
 * Both: --json for machines, colours only on a terminal, DNS from the
 * configuration's [dns] nameservers or --nameserver ip:port.  See
 * mailwarden-check(1).
 */
#include "config.h"

#include <ctype.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mw_cidr.h"
#include "mw_config.h"
#include "mw_log.h"
#include "mw_session.h"
#include "mw_text.h"
#include "mwc.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif
#define DEFAULT_CONFIG	SYSCONFDIR "/mailwarden/mailwarden.ini"

enum {
	OPT_IP = 256, OPT_NAME, OPT_HELO, OPT_FROM, OPT_RCPT, OPT_AUTH,
	OPT_RECORD, OPT_NO_DATA, OPT_SELF, OPT_DOMAIN, OPT_SELECTOR, OPT_KEY,
	OPT_SMTP, OPT_SMTP_PORT, OPT_SMTP_TIMEOUT, OPT_RELAY_RCPT, OPT_NAMESERVER, OPT_JSON,
	OPT_COLOR, OPT_VERSION, OPT_SHOW_MESSAGE
};

static const struct option longopts[] = {
	{ "config", required_argument, NULL, 'c' },
	{ "ip", required_argument, NULL, OPT_IP },
	{ "name", required_argument, NULL, OPT_NAME },
	{ "helo", required_argument, NULL, OPT_HELO },
	{ "from", required_argument, NULL, OPT_FROM },
	{ "rcpt", required_argument, NULL, OPT_RCPT },
	{ "auth", required_argument, NULL, OPT_AUTH },
	{ "record", no_argument, NULL, OPT_RECORD },
	{ "no-data", no_argument, NULL, OPT_NO_DATA },
	{ "self", no_argument, NULL, OPT_SELF },
	{ "domain", required_argument, NULL, OPT_DOMAIN },
	{ "selector", required_argument, NULL, OPT_SELECTOR },
	{ "key", required_argument, NULL, OPT_KEY },
	{ "smtp", no_argument, NULL, OPT_SMTP },
	{ "smtp-port", required_argument, NULL, OPT_SMTP_PORT },
	{ "smtp-timeout", required_argument, NULL, OPT_SMTP_TIMEOUT },
	{ "relay-rcpt", required_argument, NULL, OPT_RELAY_RCPT },
	{ "nameserver", required_argument, NULL, OPT_NAMESERVER },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "color", required_argument, NULL, OPT_COLOR },
	{ "verbose", no_argument, NULL, 'v' },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, OPT_VERSION },
	{ "show-message", no_argument, NULL, OPT_SHOW_MESSAGE },
	{ NULL, 0, NULL, 0 }
};

static void
usage(FILE *fp)
{
	fprintf(fp,
"usage: mailwarden-check [-c FILE] --ip IP [--name NAME] [--helo NAME]\n"
"           --from ADDR --rcpt ADDR [--rcpt ADDR ...] [--auth USER]\n"
"           [--record] [--no-data] [--json] [MESSAGE.eml | -]\n"
"       mailwarden-check --self --domain DOMAIN [--ip IP] [--helo NAME]\n"
"           [--selector SEL ...] [--key PRIVATE.pem] [--smtp\n"
"           [--smtp-port N] [--smtp-timeout S] [--relay-rcpt ADDR]]\n"
"           [-c FILE] [--json]\n"
"       mailwarden-check --show-message MESSAGE.eml\n"
"common: [--nameserver IP:PORT] [--color auto|always|never] [-v]\n"
"Explain mode exits 0 (accept), 75 (tempfail), 69 (reject); self-check\n"
"0 (all pass), 1 (warnings), 2 (failures).  See mailwarden-check(1).\n");
}

static int __attribute__((format(printf, 1, 2)))
bad_usage(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "mailwarden-check: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	usage(stderr);
	return MWC_EXIT_USAGE;
}

/* "<a@b>" or "a@b" -> "a@b"; "<>" -> "". */
static const char *
strip_angle(char *s)
{
	size_t n = strlen(s);

	if (n >= 2 && s[0] == '<' && s[n - 1] == '>') {
		s[n - 1] = '\0';
		return s + 1;
	}
	return s;
}

/* A domain as typed: no trailing dot, lower case. */
static int
clean_domain(char *d)
{
	size_t n = strlen(d), i;

	if (!mw_domain_ok(d, MW_DOMAIN_LDH))
		return -1;
	if (d[n - 1] == '.')
		d[--n] = '\0';
	for (i = 0; i < n; i++)
		d[i] = (char)tolower((unsigned char)d[i]);
	return 0;
}

static int
parse_opts(int argc, char **argv, struct mwc_opts *o)
{
	const char *color = "auto";
	char *end;
	int ch, family;
	uint8_t addr[16];

	memset(o, 0, sizeof(*o));
	o->config = DEFAULT_CONFIG;
	o->smtp_port = 25;
	o->smtp_timeout = 30;
	while ((ch = getopt_long(argc, argv, "c:vh", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			o->config = optarg;
			o->config_given = 1;
			break;
		case 'v':
			o->verbose++;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case OPT_VERSION:
			printf("mailwarden-check %s\n", PACKAGE_VERSION);
			exit(0);
		case OPT_SHOW_MESSAGE:
			o->show_message = 1;
			break;
		case OPT_IP:
			o->ip = optarg;
			break;
		case OPT_NAME:
			o->name = optarg;
			break;
		case OPT_HELO:
			o->helo = optarg;
			break;
		case OPT_FROM:
			o->from = strip_angle(optarg);
			break;
		case OPT_RCPT:
			if (o->n_rcpts >= MWC_MAX_RCPTS)
				return bad_usage("more than %s --rcpt", "100");
			o->rcpts[o->n_rcpts++] = strip_angle(optarg);
			break;
		case OPT_AUTH:
			o->auth = optarg;
			break;
		case OPT_RECORD:
			o->record = 1;
			break;
		case OPT_NO_DATA:
			o->no_data = 1;
			break;
		case OPT_SELF:
			o->self = 1;
			break;
		case OPT_DOMAIN:
			if (clean_domain(optarg) == -1)
				return bad_usage("--domain %s: not a domain "
				    "name", optarg);
			o->domain = optarg;
			break;
		case OPT_SELECTOR:
			if (o->n_selectors >= MWC_MAX_SELECTORS)
				return bad_usage("more than %s --selector",
				    "10");
			if (clean_domain(optarg) == -1)
				return bad_usage("--selector %s: not a DNS "
				    "label", optarg);
			o->selectors[o->n_selectors++] = optarg;
			break;
		case OPT_KEY:
			o->key = optarg;
			break;
		case OPT_SMTP:
			o->smtp = 1;
			break;
		case OPT_SMTP_PORT:
			o->smtp_port = (int)strtol(optarg, &end, 10);
			if (*optarg == '\0' || *end != '\0' ||
			    o->smtp_port < 1 || o->smtp_port > 65535)
				return bad_usage("--smtp-port %s: not a port",
				    optarg);
			break;
		case OPT_SMTP_TIMEOUT:
			o->smtp_timeout = (int)strtol(optarg, &end, 10);
			if (*optarg == '\0' || *end != '\0' ||
			    o->smtp_timeout < 1 || o->smtp_timeout > 600)
				return bad_usage("--smtp-timeout %s: seconds, "
				    "1 to 600", optarg);
			break;
		case OPT_RELAY_RCPT:
			if (strchr(optarg, '@') == NULL ||
			    strpbrk(optarg, "<> \t\r\n") != NULL ||
			    strlen(optarg) > 300)
				return bad_usage("--relay-rcpt %s: an address "
				    "user@domain", optarg);
			o->relay_rcpt = optarg;
			break;
		case OPT_NAMESERVER:
			o->nameserver = optarg;
			break;
		case OPT_JSON:
			o->json = 1;
			break;
		case OPT_COLOR:
			color = optarg;
			if (strcmp(color, "auto") != 0 &&
			    strcmp(color, "always") != 0 &&
			    strcmp(color, "never") != 0)
				return bad_usage("--color %s: auto, always or "
				    "never", optarg);
			break;
		default:
			usage(stderr);
			return MWC_EXIT_USAGE;
		}
	}
	if (strcmp(color, "always") == 0)
		o->color = 1;
	else if (strcmp(color, "auto") == 0)
		o->color = isatty(STDOUT_FILENO) && getenv("NO_COLOR") ==
		    NULL;
	if (o->json)
		o->color = 0;
	if (o->ip != NULL && mw_ip_parse(o->ip, &family, addr) == -1)
		return bad_usage("--ip %s: not an IP address", o->ip);
	if (o->self) {
		if (o->domain == NULL)
			return bad_usage("--self needs --domain%s", "");
		if (optind < argc)
			return bad_usage("--self takes no message file (%s)",
			    argv[optind]);
		if (o->key != NULL && o->n_selectors == 0)
			return bad_usage("--key needs --selector%s", "");
		return 0;
	}
	if (o->show_message) {
		if (optind + 1 != argc)
			return bad_usage("--show-message needs one message "
			    "file%s", "");
		o->message = argv[optind];
		return 0;
	}
	if (o->ip == NULL)
		return bad_usage("explain mode needs --ip (or --self)%s", "");
	if (o->from == NULL)
		return bad_usage("explain mode needs --from (--from '<>' for "
		    "the null sender)%s", "");
	if (o->n_rcpts == 0)
		return bad_usage("explain mode needs --rcpt%s", "");
	if (optind < argc)
		o->message = argv[optind++];
	if (optind < argc)
		return bad_usage("one message file only (%s)", argv[optind]);
	return 0;
}

int
main(int argc, char **argv)
{
	struct mwc_opts o;
	struct mw_config *cfg;
	struct mw_ctx *ctx;
	char err[1024];
	int rc;

	if ((rc = parse_opts(argc, argv, &o)) != 0)
		return rc;
	if (o.show_message)
		return mwc_show_message(&o);
	mw_log_open("mailwarden-check", LOG_MAIL, o.verbose >= 2 ? LOG_DEBUG :
	    o.verbose == 1 ? LOG_INFO : LOG_ERR, 1);
	/*
	 * Self-check needs no configuration of ours (the DNSBLs, resolver
	 * and check settings come from it when there is one).
	 */
	if (o.self && !o.config_given && access(o.config, R_OK) == -1)
		o.config = "/dev/null";
	if (mw_config_load(o.config, &cfg, err, sizeof(err)) == -1) {
		fprintf(stderr, "mailwarden-check: %s\n", err);
		return MWC_EXIT_CONFIG;
	}
	if (strcmp(o.config, "/dev/null") == 0)
		o.config = "built-in defaults";
	if (o.nameserver != NULL) {
		free(cfg->dns_nameservers);
		if ((cfg->dns_nameservers = strdup(o.nameserver)) == NULL) {
			mw_config_free(cfg);
			return MWC_EXIT_SOFTWARE;
		}
	}
	if (mw_ctx_new(cfg, &ctx, err, sizeof(err)) == -1) {
		fprintf(stderr, "mailwarden-check: %s\n", err);
		return MWC_EXIT_CONFIG;
	}
	rc = o.self ? mwc_self(ctx, &o) : mwc_explain(ctx, &o);
	mw_ctx_unref(ctx);
	return rc;
}
