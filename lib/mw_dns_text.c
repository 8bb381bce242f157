/*
 * mw_dns_text -- DNS answers as text, for logs, explain-mode evidence and
 * self-check reports (see mw_dns.h).  Apart from mw_dns.c so that code
 * linked with a stub resolver (the fuzz harness) formats the same way.
 */
#include "config.h"

#include <stddef.h>

#include "mw_buf.h"
#include "mw_dns.h"
#include "mw_text.h"

const char *
mw_dns_type_name(int type)
{
	switch (type) {
	case MW_DNS_A: return "A";
	case MW_DNS_CNAME: return "CNAME";
	case MW_DNS_PTR: return "PTR";
	case MW_DNS_MX: return "MX";
	case MW_DNS_TXT: return "TXT";
	case MW_DNS_AAAA: return "AAAA";
	case MW_DNS_SPF: return "SPF";
	}
	return "?";
}

void
mw_dns_answer_format(struct mw_buf *b, const struct mw_dns_answer *a)
{
	int i;

	mw_buf_printf(b, "%s %s: ", mw_dns_type_name(a->type),
	    a->name != NULL ? a->name : "?");
	switch (a->status) {
	case MW_DNS_OK:
		for (i = 0; i < a->nrr; i++) {
			const struct mw_dns_rr *rr = &a->rr[i];

			if (i > 0)
				mw_buf_puts(b, ", ");
			if (rr->type == MW_DNS_TXT || rr->type == MW_DNS_SPF) {
				/* TXT may hold anything, NULs included. */
				mw_buf_puts(b, "\"");
				mw_escaped(b, rr->text, rr->len);
				mw_buf_puts(b, "\"");
			} else if (rr->type == MW_DNS_MX)
				/* "." is the null MX (RFC 7505). */
				mw_buf_printf(b, "%d %s", rr->pref,
				    rr->text[0] != '\0' ? rr->text : ".");
			else
				mw_buf_puts(b, rr->text);
		}
		break;
	case MW_DNS_NXDOMAIN:
		mw_buf_puts(b, "NXDOMAIN (no such name)");
		break;
	case MW_DNS_NODATA:
		mw_buf_printf(b, "no %s record", mw_dns_type_name(a->type));
		break;
	case MW_DNS_TEMPFAIL:
		mw_buf_printf(b, "temporary failure (%s)", a->error != NULL ?
		    a->error : "no answer");
		break;
	case MW_DNS_PERMFAIL:
		mw_buf_printf(b, "permanent failure (%s)", a->error != NULL ?
		    a->error : "bad answer");
		break;
	case MW_DNS_PENDING:
		mw_buf_puts(b, "no answer yet");
		break;
	}
	if (b->truncated)
		mw_buf_puts(b, "...");
}
