/*
 * mw_verdict -- what the session answers to each SMTP event, and the
 * per-check actions an admin configures in the ini.
 *
 * A check result (say iprev=fail) maps to an action: accept (annotate
 * only), a score (added up; [policy] thresholds decide), tempfail or
 * reject.  mw_action_parse() reads "accept", "tempfail", "reject" or a
 * number ("3", "-1.5").
 */
#ifndef MW_VERDICT_H
#define MW_VERDICT_H

#include <stddef.h>

enum mw_verdict_kind {
	MW_CONTINUE = 0,	/* no decision yet: go on */
	MW_ACCEPT,		/* accept the message / this recipient */
	MW_TEMPFAIL,		/* 4xx */
	MW_REJECT		/* 5xx */
};

struct mw_verdict {
	enum mw_verdict_kind	 kind;
	int			 code;		/* 550, 451, ... (0 = default) */
	char			 xcode[16];	/* RFC 3463: "5.7.1" */
	char			 text[384];	/* human text, no CR/LF */
};

enum mw_action_kind {
	MW_ACT_ACCEPT = 0,	/* annotate only */
	MW_ACT_SCORE,		/* add score */
	MW_ACT_TEMPFAIL,
	MW_ACT_REJECT
};

struct mw_action {
	enum mw_action_kind	kind;
	double			score;
};

/* Parse an action; 0 or -1 with err. */
int		 mw_action_parse(struct mw_action *a, const char *s, char *err,
		    size_t errlen);
/* "accept", "reject", "tempfail" or "score 3.0", for logs and -t. */
const char	*mw_action_name(const struct mw_action *a, char *buf, size_t len);

/* Fill v; text is printf-style and is cleaned of CR, LF and NUL. */
void		 mw_verdict_set(struct mw_verdict *v, enum mw_verdict_kind kind,
		    int code, const char *xcode, const char *fmt, ...)
		    __attribute__((format(printf, 5, 6)));
const char	*mw_verdict_name(enum mw_verdict_kind k);

#endif /* MW_VERDICT_H */
