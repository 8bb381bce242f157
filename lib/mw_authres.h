/*
 * mw_authres -- build one Authentication-Results header (RFC 8601), and
 * recognise incoming ones that claim our authserv-id.
 *
 *	struct mw_authres *ar = mw_authres_new("mx.example.org");
 *	mw_authres_result(ar, "spf", "pass");
 *	mw_authres_comment(ar, "%s designates %s as permitted sender", d, ip);
 *	mw_authres_prop(ar, "smtp", "mailfrom", "user@example.org");
 *	puts(mw_authres_value(ar));
 *	  -> "mx.example.org;\n\tspf=pass (example.org designates ...)
 *	      smtp.mailfrom=user@example.org"
 *	mw_authres_free(ar);
 *
 * Everything that came from the network goes through the quoting here:
 * property values become an RFC 2045 token, an addr-spec, or a quoted
 * string; comments have their parentheses and backslashes escaped and
 * control characters replaced, so nothing a sender controls can end the
 * header, start a new resinfo, or hide one in a comment.
 */
#ifndef MW_AUTHRES_H
#define MW_AUTHRES_H

#include <stddef.h>

struct mw_authres;

struct mw_authres	*mw_authres_new(const char *authserv_id);
void			 mw_authres_free(struct mw_authres *ar);

/* Start a new resinfo "method=result". */
void	mw_authres_result(struct mw_authres *ar, const char *method,
	    const char *result);
/* reason="..." of the current resinfo. */
void	mw_authres_reason(struct mw_authres *ar, const char *reason);
/* ptype.property=value of the current resinfo; value is quoted as needed. */
void	mw_authres_prop(struct mw_authres *ar, const char *ptype,
	    const char *property, const char *value);
/* A comment after the current result. */
void	mw_authres_comment(struct mw_authres *ar, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));

/*
 * Watch what is added (statistics): fn is called with each new result
 * (ptype and property NULL) and with each property of the current one.
 */
typedef void mw_authres_observer(void *arg, const char *method,
	    const char *result, const char *ptype, const char *property,
	    const char *value);
void	mw_authres_set_observer(struct mw_authres *ar, mw_authres_observer *fn,
	    void *arg);

/* Number of resinfos added. */
int	mw_authres_count(const struct mw_authres *ar);
/*
 * Number of resinfos left out because the header would have grown past
 * its bound (32 kB): a resinfo goes in whole or not at all, so the value
 * is never cut in the middle of one.
 */
int	mw_authres_dropped(struct mw_authres *ar);
/*
 * The header value (without "Authentication-Results:"), folded with
 * "\n\t" between resinfos; "authserv-id; none" when nothing was added.
 */
const char	*mw_authres_value(struct mw_authres *ar);
/* The results as one line, "iprev=pass spf=fail", for the log. */
const char	*mw_authres_summary(struct mw_authres *ar);

/*
 * 1 if the header value (an incoming Authentication-Results field body)
 * names authserv_id as its authserv-id, compared case-insensitively
 * after skipping whitespace and comments.  Also 1 when the value cannot
 * be parsed that far (say, an unterminated comment) and our id appears
 * anywhere in it: a header must not survive because it confused us.
 */
int	mw_authres_claims_id(const char *value, const char *authserv_id);

/*
 * Quoting helpers, exposed for other headers (Received-SPF) and tests.
 * Write into out (always NUL-terminated, truncated to outlen).
 */
void	mw_quote_value(const char *in, char *out, size_t outlen);
void	mw_quote_comment(const char *in, char *out, size_t outlen);

#endif /* MW_AUTHRES_H */
