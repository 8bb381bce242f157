/*
 * mw_text -- the two checks every part of mailwarden makes on text that
 * came from the network or from a DNS answer: is it a domain name, and
 * a printable copy of it for a log line, a header or an SMTP reply.
 *
 *	if (mw_domain_check(d, strlen(d), MW_DOMAIN_HOST) != NULL)
 *		... not a host name
 *	char safe[256];
 *	mw_printable(safe, sizeof(safe), helo);
 *
 * Printable means printable ASCII: every byte outside 0x20..0x7e --
 * control characters, DEL and every byte >= 0x80 -- becomes '?'.  The
 * copies go to places that must stay 7-bit or one line: SMTP reply text
 * (RFC 5321 4.2), header fields we add (RFC 5322 without SMTPUTF8), the
 * MTA's queue file (a hold reason) and syslog, where a UTF-8 sequence cut
 * at our bound or a stray 8-bit byte would make the line invalid UTF-8
 * (and C1 bytes such as 0x85 end a line for some log readers).  An 8-bit
 * sender shows as "j??rg@example.org": enough to grep for, never a broken
 * or forged line.
 */
#ifndef MW_TEXT_H
#define MW_TEXT_H

#include <stddef.h>

/* Flags for mw_domain_check(). */
#define MW_DOMAIN_LDH		0x00	/* letters, digits, '-', '_' (default) */
#define MW_DOMAIN_TEXT		0x01	/* any printable ASCII but '\\', space */
#define MW_DOMAIN_SPACE		0x02	/* with TEXT: a space too (SPF macros) */
#define MW_DOMAIN_HOST		0x04	/* RFC 1123: no label starts or ends
					   with '-', top label not all digits */
#define MW_DOMAIN_DOTTED	0x08	/* two labels at least */
#define MW_DOMAIN_NO_FINAL_DOT	0x10	/* "example.org." is refused */

#define MW_DOMAIN_MAX		253	/* octets, without a final dot */
#define MW_LABEL_MAX		63

/*
 * Is the name (len bytes, no NUL needed) a domain name by these rules?
 * Always: labels of 1..63 bytes, at most 253 bytes without the one final
 * dot that is allowed unless MW_DOMAIN_NO_FINAL_DOT.  Letters, digits,
 * '-' and '_' (the underscore of _domainkey, _dmarc and Windows host
 * names), or with MW_DOMAIN_TEXT any printable ASCII but '\' (c-ares'
 * escape) and space.  Returns NULL if it is, else why not, in words that
 * complete "the name ..." ("has an empty label").
 */
const char *mw_domain_check(const char *name, size_t len, unsigned flags);
/* The same for a NUL-terminated name (NULL is not one): 1 if it is. */
int	mw_domain_ok(const char *name, unsigned flags);

/* The byte, or '?' if it is not printable ASCII (0x20..0x7e). */
static inline char
mw_printable_char(unsigned char c)
{
	return c >= 0x20 && c <= 0x7e ? (char)c : '?';
}

/*
 * A printable copy of in (NUL-terminated; NULL is "") into out, cut to
 * outlen - 1 bytes.  Returns out.
 */
char	*mw_printable(char *out, size_t outlen, const char *in);
/* The same for n bytes of in (NULs among them become '?'). */
char	*mw_printable_n(char *out, size_t outlen, const char *in, size_t n);
/* Make s printable where it is. */
void	 mw_printable_inplace(char *s);
/*
 * Append n bytes of s to b with every byte outside printable ASCII as
 * \xNN, for evidence notes that show a record or answer exactly.
 */
struct mw_buf;
void	 mw_escaped(struct mw_buf *b, const char *s, size_t n);
/*
 * The text of an SMTP reply as libmilter's smfi_setreply() takes it: '%'
 * is a format character there, so it and every byte outside printable
 * ASCII become '_'.  Cut to outlen - 1 bytes.
 */
char	*mw_milter_text(char *out, size_t outlen, const char *in);

#endif /* MW_TEXT_H */
