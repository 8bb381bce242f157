/*
 * authres_id -- read "AUTHSERV-ID<TAB>FIELD-BODY" lines on stdin, print
 * 1 or 0 per line: does mw_authres_claims_id() say the field body
 * claims that authserv-id?  Driven by test/authres_corpus.py over the
 * third-party Authentication-Results corpora.  Escapes in the input:
 * \n and \t (so folded fields fit on one line).
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "mw_authres.h"

static void
unescape(char *s)
{
	char *r = s, *w = s;

	for (; *r != '\0'; r++) {
		if (r[0] == '\\' && r[1] == 'n') {
			*w++ = '\n';
			r++;
		} else if (r[0] == '\\' && r[1] == 't') {
			*w++ = '\t';
			r++;
		} else if (r[0] == '\\' && r[1] == '\\') {
			*w++ = '\\';
			r++;
		} else
			*w++ = *r;
	}
	*w = '\0';
}

int
main(void)
{
	char line[65536];

	while (fgets(line, sizeof(line), stdin) != NULL) {
		char *tab = strchr(line, '\t');
		size_t n = strlen(line);

		if (n > 0 && line[n - 1] == '\n')
			line[n - 1] = '\0';
		if (tab == NULL) {
			puts("?");
			continue;
		}
		*tab = '\0';
		unescape(tab + 1);
		printf("%d\n", mw_authres_claims_id(tab + 1, line));
	}
	return 0;
}
