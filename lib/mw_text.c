/*
 * mw_text -- one domain-name validator and one printable copy of network
 * text, for every module and tool (see mw_text.h for the rules and why).
 *
 *	why = mw_domain_check(name, strlen(name), MW_DOMAIN_HOST);
 *	mw_printable(out, sizeof(out), text);
 */
#include "config.h"

#include <string.h>

#include "mw_buf.h"
#include "mw_text.h"

static int
is_ldh(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '-' || c == '_';
}

static int
allowed(unsigned char c, unsigned flags)
{
	if (!(flags & MW_DOMAIN_TEXT))
		return is_ldh(c);
	if (c == ' ')
		return (flags & MW_DOMAIN_SPACE) != 0;
	return c > 0x20 && c < 0x7f && c != '\\';
}

const char *
mw_domain_check(const char *name, size_t len, unsigned flags)
{
	size_t i, label = 0, labels = 1;
	int digits_only = 1;

	if (name == NULL)
		return "is empty";
	if (len > 0 && name[len - 1] == '.') {
		if (flags & MW_DOMAIN_NO_FINAL_DOT)
			return "ends with a dot";
		len--;
	}
	if (len == 0 || len > MW_DOMAIN_MAX)
		return "empty or too long";
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];

		if (c == '.') {
			if (label == 0)
				return "has an empty label";
			if ((flags & MW_DOMAIN_HOST) && name[i - 1] == '-')
				return "has a label ending with '-'";
			label = 0;
			labels++;
			digits_only = 1;
			continue;
		}
		if (!allowed(c, flags))
			return (flags & MW_DOMAIN_TEXT) ? "has a byte that is "
			    "not printable ASCII" : "has characters a host "
			    "name cannot have";
		if ((flags & MW_DOMAIN_HOST) && c == '-' && label == 0)
			return "has a label starting with '-'";
		if (c < '0' || c > '9')
			digits_only = 0;
		if (++label > MW_LABEL_MAX)
			return "has a label longer than 63 characters";
	}
	if (label == 0)
		return "has an empty label";
	if ((flags & MW_DOMAIN_DOTTED) && labels < 2)
		return "is a bare word, not a fully-qualified name";
	if (flags & MW_DOMAIN_HOST) {
		if (name[len - 1] == '-')
			return "has a label ending with '-'";
		if (digits_only)
			return "has an all-numeric top-level label";
	}
	return NULL;
}

int
mw_domain_ok(const char *name, unsigned flags)
{
	return name != NULL &&
	    mw_domain_check(name, strlen(name), flags) == NULL;
}

char *
mw_printable_n(char *out, size_t outlen, const char *in, size_t n)
{
	size_t i;

	if (outlen == 0)
		return out;
	for (i = 0; i < n && i + 1 < outlen; i++)
		out[i] = mw_printable_char((unsigned char)in[i]);
	out[i] = '\0';
	return out;
}

char *
mw_printable(char *out, size_t outlen, const char *in)
{
	if (in == NULL)
		in = "";
	return mw_printable_n(out, outlen, in, strlen(in));
}

void
mw_printable_inplace(char *s)
{
	for (; *s != '\0'; s++)
		*s = mw_printable_char((unsigned char)*s);
}

void
mw_escaped(struct mw_buf *b, const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n && !b->truncated; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c > 0x7e)
			mw_buf_printf(b, "\\x%02x", c);
		else
			mw_buf_append(b, s + i, 1);
	}
}

char *
mw_milter_text(char *out, size_t outlen, const char *in)
{
	size_t i;

	if (outlen == 0)
		return out;
	for (i = 0; in[i] != '\0' && i + 1 < outlen; i++)
		out[i] = in[i] == '%' || mw_printable_char((unsigned char)
		    in[i]) != in[i] ? '_' : in[i];
	out[i] = '\0';
	return out;
}
