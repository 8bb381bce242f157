/*
 * mwc.h -- what the parts of mailwarden-check share: the options, the
 * output helpers (terminal colours, a small JSON writer) and the two
 * modes.
 *
 *	mailwarden-check.c	options, config, main()
 *	mwc_explain.c		explain mode: one transaction through the
 *				session library, as the daemon runs it
 *	mwc_message.c		--show-message (the reader is lib/mw_message.c)
 *	mwc_self.c		self-check mode: the sender's DNS
 *	mwc_smtp.c		self-check --smtp: a probe of the MX, no DATA
 *	mwc_out.c		output helpers
 */
#ifndef MWC_H
#define MWC_H

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

#include "mw_buf.h"
#include "mw_message.h"

struct mw_ctx;

/* Exit codes (sysexits.h values, documented in mailwarden-check(1)). */
#define MWC_EXIT_ACCEPT		0	/* EX_OK */
#define MWC_EXIT_USAGE		64	/* EX_USAGE */
#define MWC_EXIT_NOINPUT	66	/* EX_NOINPUT: message file */
#define MWC_EXIT_REJECT		69	/* EX_UNAVAILABLE */
#define MWC_EXIT_SOFTWARE	70	/* EX_SOFTWARE */
#define MWC_EXIT_TEMPFAIL	75	/* EX_TEMPFAIL */
#define MWC_EXIT_CONFIG		78	/* EX_CONFIG */
/* Self-check: 0 all good, 1 warnings, 2 failures. */
#define MWC_EXIT_WARN		1
#define MWC_EXIT_FAIL		2

#define MWC_MAX_RCPTS		100
#define MWC_MAX_SELECTORS	10

struct mwc_opts {
	const char	*config;	/* -c */
	int		 config_given;
	const char	*nameserver;	/* --nameserver */
	int		 json;
	int		 color;		/* ANSI colours (a terminal) */
	int		 verbose;

	/* explain */
	const char	*ip;
	const char	*name;		/* --name: MTA-verified client name */
	const char	*helo;
	const char	*from;
	const char	*rcpts[MWC_MAX_RCPTS];
	int		 n_rcpts;
	const char	*auth;
	const char	*message;	/* file, "-" = stdin, NULL = none */
	int		 record;	/* --record: greylist records */
	int		 no_data;	/* --no-data: stop after RCPT */
	int		 show_message;	/* --show-message FILE */

	/* self-check */
	int		 self;
	const char	*domain;
	const char	*selectors[MWC_MAX_SELECTORS];
	int		 n_selectors;
	const char	*key;
	int		 smtp;
	int		 smtp_port;
	int		 smtp_timeout;	/* seconds per reply */
	const char	*relay_rcpt;	/* --relay-rcpt, NULL = default */
};

/* The open-relay probe's recipient: a domain nobody's MX serves for us. */
#define MWC_RELAY_RCPT	"mailwarden-relay-test@example.com"

/* mwc_explain.c */
int	mwc_explain(struct mw_ctx *ctx, const struct mwc_opts *o);

/* mwc_message.c: --show-message, the message as the checks get it. */
int	mwc_show_message(const struct mwc_opts *o);

/* mwc_self.c */
int	mwc_self(struct mw_ctx *ctx, const struct mwc_opts *o);

/* mwc_smtp.c: results are added to the self-check report. */
struct mwc_report;
void	mwc_smtp_probe(struct mwc_report *r, struct mw_ctx *ctx,
	    const struct mwc_opts *o, const char *mx, const char *addr);

/* ---- self-check report (mwc_self.c) ------------------------------------ */

enum mwc_status { MWC_PASS = 0, MWC_INFO, MWC_SKIP, MWC_WARN, MWC_FAIL };

/* Start a section ("Reverse DNS"). */
void	mwc_section(struct mwc_report *r, const char *title);
/*
 * Add an item to the current section: id is a stable short name for
 * --json ("ptr", "spf-all"), fix a one-line remedy or NULL.
 */
void	mwc_item(struct mwc_report *r, enum mwc_status st, const char *id,
	    const char *fix, const char *fmt, ...)
	    __attribute__((format(printf, 5, 6)));
/* A detail line under the last item (DNS answers, the record). */
void	mwc_detail(struct mwc_report *r, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));

/* ---- output helpers (mwc_out.c) --------------------------------------- */

/* Colour escapes, or "" when not on a terminal. */
const char	*mwc_c_status(const struct mwc_opts *o, enum mwc_status st);
const char	*mwc_c_bold(const struct mwc_opts *o);
const char	*mwc_c_dim(const struct mwc_opts *o);
const char	*mwc_c_off(const struct mwc_opts *o);
const char	*mwc_status_name(enum mwc_status st);

/*
 * JSON writer: pretty-printed, two-space indent, stable key order (the
 * order of the calls).  key is NULL inside arrays.
 */
struct mwc_json {
	FILE	*fp;
	int	 depth;
	int	 first[32];
};
void	mwc_json_init(struct mwc_json *j, FILE *fp);
void	mwc_json_obj(struct mwc_json *j, const char *key);
void	mwc_json_arr(struct mwc_json *j, const char *key);
void	mwc_json_end_obj(struct mwc_json *j);
void	mwc_json_end_arr(struct mwc_json *j);
void	mwc_json_str(struct mwc_json *j, const char *key, const char *v);
void	mwc_json_int(struct mwc_json *j, const char *key, long long v);
void	mwc_json_num(struct mwc_json *j, const char *key, double v);
void	mwc_json_bool(struct mwc_json *j, const char *key, int v);
void	mwc_json_null(struct mwc_json *j, const char *key);
void	mwc_json_done(struct mwc_json *j);

/* A string with control characters shown as '?', for the terminal. */
void	mwc_print_safe(FILE *fp, const char *s);
/* The same, but a header value's folds ("\n\t") kept as line breaks. */
void	mwc_print_folded(FILE *fp, const char *s);

/*
 * One resinfo of an Authentication-Results value we made: method,
 * result, the comment and up to 8 properties.  mwc_authres_split()
 * calls fn once per resinfo; text is the resinfo as written (folds
 * made single spaces).
 */
struct mwc_resinfo {
	char	 method[64];
	char	 result[32];
	char	 comment[512];
	char	 ptype[8][16];
	char	 prop[8][32];
	char	 value[8][512];
	int	 nprops;
	char	 text[2048];
};
void	mwc_authres_split(const char *value,
	    void (*fn)(void *arg, const struct mwc_resinfo *ri), void *arg);
const char *mwc_resinfo_prop(const struct mwc_resinfo *ri,
	    const char *ptype, const char *prop);

#endif /* MWC_H */
