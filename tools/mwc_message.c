/*
 * mwc_message -- mailwarden-check --show-message: the message file as
 * the checks get it (lib/mw_message.c reads it the way an MTA hands it
 * to a milter), one line per header field and body chunk, with C-style
 * escapes so that line breaks and odd bytes are visible.
 *
 *	return mwc_show_message(opts);
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mwc.h"

/* ---- --show-message ----------------------------------------------------- */

#define SHOW_BODY_MAX	2048	/* body bytes shown per chunk */

struct show {
	unsigned long	n;
};

/* C-style escapes, so that line breaks and odd bytes are visible. */
static void
show_escaped(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		switch (c) {
		case '\r': fputs("\\r", stdout); break;
		case '\n': fputs("\\n", stdout); break;
		case '\t': fputs("\\t", stdout); break;
		case '\\': fputs("\\\\", stdout); break;
		case '"': fputs("\\\"", stdout); break;
		default:
			if (c < 0x20 || c >= 0x7f)
				printf("\\x%02x", c);
			else
				putchar(c);
		}
	}
}

static int
show_header(void *arg, const char *name, const char *value)
{
	struct show *sh = arg;

	printf("header %lu: \"", ++sh->n);
	show_escaped(name, strlen(name));
	printf("\" value \"");
	show_escaped(value, strlen(value));
	printf("\"\n");
	return 0;
}

static int
show_eoh(void *arg)
{
	struct show *sh = arg;

	printf("end of header: %lu field%s\n", sh->n, sh->n == 1 ? "" : "s");
	return 0;
}

static int
show_body(void *arg, const unsigned char *buf, size_t len)
{
	(void)arg;
	printf("body chunk: %zu bytes \"", len);
	show_escaped((const char *)buf, len < SHOW_BODY_MAX ? len :
	    SHOW_BODY_MAX);
	printf("\"%s\n", len > SHOW_BODY_MAX ? "..." : "");
	return 0;
}

int
mwc_show_message(const struct mwc_opts *o)
{
	struct show sh = { 0 };
	struct mw_msg_cb cb = { show_header, show_eoh, show_body, &sh };
	struct mw_msg_stats st;
	char err[256];
	FILE *fp;
	int rc;

	if (strcmp(o->message, "-") == 0)
		fp = stdin;
	else if ((fp = fopen(o->message, "r")) == NULL) {
		fprintf(stderr, "mailwarden-check: %s: %s\n", o->message,
		    strerror(errno));
		return MWC_EXIT_NOINPUT;
	}
	rc = mw_message_feed(fp, &cb, &st, err, sizeof(err));
	if (fp != stdin)
		fclose(fp);
	if (rc == -1) {
		fprintf(stderr, "mailwarden-check: %s: %s\n", o->message, err);
		return MWC_EXIT_NOINPUT;
	}
	printf("total: %lu header field%s (%lu cut at %d bytes), %llu body "
	    "bytes in %lu chunk%s\n", st.n_headers, st.n_headers == 1 ? "" :
	    "s", st.n_truncated, MW_MSG_HEADER_MAX, st.body_bytes, st.n_chunks,
	    st.n_chunks == 1 ? "" : "s");
	return 0;
}
