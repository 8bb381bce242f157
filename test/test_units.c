/*
 * test_units -- unit tests of the library's small pieces: config loader
 * (good and bad files, each error with file:line), CIDR lists, actions,
 * the Authentication-Results builder and its quoting, and the
 * authserv-id matcher used to delete forged headers.
 */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "mw_authres.h"
#include "mw_cidr.h"
#include "mw_config.h"
#include "mw_buf.h"
#include "mw_canon.h"
#include "mw_dkimkey.h"
#include "mw_log.h"
#include "mw_module.h"
#include "mw_text.h"
#include "mw_verdict.h"
#include "tap.h"

static char tmpl[] = "/tmp/mwunit.XXXXXX";

/* Write text to a temp file and load it; returns the error or "". */
static const char *
load(const char *text, struct mw_config **cfgp)
{
	static char err[1024];
	char path[sizeof(tmpl)];
	int fd;
	FILE *fp;

	memcpy(path, tmpl, sizeof(tmpl));
	if ((fd = mkstemp(path)) == -1 || (fp = fdopen(fd, "w")) == NULL)
		abort();
	fputs(text, fp);
	fclose(fp);
	err[0] = '\0';
	*cfgp = NULL;
	if (mw_config_load(path, cfgp, err, sizeof(err)) == -1) {
		/* Drop the random path: "PATH:3: x" -> "FILE:3: x". */
		char *p = strstr(err, path);

		if (p != NULL) {
			memmove(p + 4, p + strlen(path), strlen(p + strlen(path))
			    + 1);
			memcpy(p, "FILE", 4);
		}
	}
	unlink(path);
	return err;
}

static void
test_config(void)
{
	struct mw_config *c;
	const char *e;
	int si = mw_module_index("size");

	e = load("; empty\n", &c);
	is_str(e, "", "empty file loads");
	ok(c != NULL && c->dns_timeout_ms == 2000 && c->reject_score == 10,
	    "defaults are set");
	ok(c != NULL && mw_cidr_list_match(&c->trusted_networks, "127.0.0.1"),
	    "default trusted_networks has loopback");
	ok(c != NULL && c->authserv_id != NULL && c->authserv_id[0] != '\0',
	    "authserv_id defaults to the hostname");
	mw_config_free(c);

	e = load("[milter]\nsocket = inet:8891@127.0.0.1\nauthserv_id = mx.test\n"
	    "trusted_networks = 10.0.0.0/8, 2001:db8::/32\ndry_run = yes\n"
	    "[size]\nmax_bytes = 10M\n[dns]\nnameservers = 127.0.0.1:5353\n",
	    &c);
	is_str(e, "", "good file loads");
	ok(c != NULL && strcmp(c->socket, "inet:8891@127.0.0.1") == 0,
	    "socket read");
	ok(c != NULL && c->dry_run, "dry_run read");
	ok(c != NULL && !mw_cidr_list_match(&c->trusted_networks, "127.0.0.1"),
	    "trusted_networks in the file replaces the default");
	ok(c != NULL && mw_cidr_list_match(&c->trusted_networks,
	    "2001:db8::5"), "IPv6 trusted network matches");
	ok(c != NULL && *(unsigned long long *)c->mod[si] == 10485760ULL,
	    "size with suffix");
	mw_config_free(c);

	/* `enabled` is the framework's key, in every module's section. */
	e = load("[size]\nenabled = no\n[greylist]\nenabled = yes\n"
	    "server = 127.0.0.1:1\n", &c);
	is_str(e, "", "enabled = in any module's section");
	ok(c != NULL && !c->enabled[si] &&
	    c->enabled[mw_module_index("greylist")] &&
	    c->enabled[mw_module_index("spf")], "enabled: set, or the default");
	mw_config_free(c);
	e = load("; empty\n", &c);
	ok(c != NULL && !c->enabled[mw_module_index("greylist")] &&
	    c->enabled[mw_module_index("dkim")],
	    "greylisting is off by default, the others on");
	mw_config_free(c);
	e = load("[dnsbl]\nenabled = maybe\n", &c);
	is_str(e, "FILE:2: [dnsbl] enabled: \"maybe\" is not a boolean "
	    "(yes/no)", "enabled takes a boolean");
	/* A disabled module's settings are not cross-checked. */
	e = load("[size]\nenabled = no\nmax_bytes = 10\n", &c);
	is_str(e, "", "a disabled module's section is not validated");
	mw_config_free(c);
	e = load("[size]\nmax_bytes = 10\n", &c);
	ok(c == NULL && strstr(e, "[size] max_bytes 10 is below") != NULL,
	    "an enabled one's is");

	e = load("[milter]\nsocket = inet:1@x\n[bogus]\nkey = 1\n", &c);
	is_str(e, "FILE:4: unknown section [bogus]", "unknown section");
	ok(c == NULL, "no config on error");
	e = load("[milter]\n\nfoo = bar\n", &c);
	is_str(e, "FILE:3: unknown key \"foo\" in [milter]", "unknown key");
	e = load("[milter]\ndry_run = perhaps\n", &c);
	is_str(e, "FILE:2: [milter] dry_run: \"perhaps\" is not a boolean "
	    "(yes/no)", "bad boolean");
	e = load("[milter]\ntrusted_networks = 10.0.0.0/33\n", &c);
	is_str(e, "FILE:2: [milter] trusted_networks: bad network "
	    "\"10.0.0.0/33\": prefix must be 0..32", "bad CIDR prefix");
	e = load("[milter]\ntrusted_networks = 10.0.0.300\n", &c);
	is_str(e, "FILE:2: [milter] trusted_networks: bad network "
	    "\"10.0.0.300\": not an IP address", "bad CIDR address");
	e = load("[size]\nmax_bytes = -5\n", &c);
	is_str(e, "FILE:2: [size] max_bytes: \"-5\" is not a size (bytes, or "
	    "with k/M/G; at most 1T)", "negative size");
	e = load("[dns]\ntimeout_ms = 0\n", &c);
	is_str(e, "FILE:2: [dns] timeout_ms: \"0\" is not an integer between "
	    "10 and 60000", "out of range integer");
	e = load("[milter]\nthis line has no equals sign\n", &c);
	is_str(e, "FILE:2: syntax error: expected [section], key = value, or "
	    "a ; comment", "syntax error");
	e = load("[milter]\nsocket = frobnicate\n", &c);
	is_str(e, "FILE:2: [milter] socket: socket \"frobnicate\": expected "
	    "unix:/path, inet:port@host or inet6:port@host", "bad socket");
	e = load("[milter]\nauthserv_id = a;b\n", &c);
	is_str(e, "FILE:2: [milter] authserv_id: authserv_id \"a;b\": only "
	    "letters, digits, '.', '-', '_'", "authserv_id with a ;");
	{
		char big[10000];

		memset(big, 'x', sizeof(big));
		memcpy(big, "[milter]\nuser = ", 16);
		memcpy(big + sizeof(big) - 2, "\n", 2);
		e = load(big, &c);
		ok(strncmp(e, "FILE:2: line longer than ", 25) == 0,
		    "huge line: %s", e);
	}
	e = load("[size]\nmax_bytes = 100\n", &c);
	is_str(e, "FILE: [size] max_bytes 100 is below 1024 bytes",
	    "module check of whole section");
	{
		char err[256];

		ok(mw_config_load("/nonexistent/x.ini", &c, err, sizeof(err))
		    == -1 && strstr(err, "/nonexistent/x.ini: cannot open") ==
		    err, "missing file");
	}
}

static void
test_cidr(void)
{
	struct mw_cidr_list l = { NULL, 0, 0 };
	char err[256];

	ok(mw_cidr_list_parse(&l, "192.0.2.0/24 198.51.100.7,2001:db8::/48",
	    err, sizeof(err)) == 0, "parse list");
	ok(mw_cidr_list_match(&l, "192.0.2.200"), "v4 in /24");
	ok(!mw_cidr_list_match(&l, "192.0.3.1"), "v4 outside");
	ok(mw_cidr_list_match(&l, "198.51.100.7"), "host match");
	ok(!mw_cidr_list_match(&l, "198.51.100.8"), "host mismatch");
	ok(mw_cidr_list_match(&l, "::ffff:192.0.2.9"), "mapped v6 as v4");
	ok(mw_cidr_list_match(&l, "2001:db8:0:ffff::1"), "v6 in /48");
	ok(!mw_cidr_list_match(&l, "2001:db8:1::1"), "v6 outside /48");
	ok(!mw_cidr_list_match(&l, "garbage"), "garbage never matches");
	mw_cidr_list_free(&l);
	ok(mw_cidr_list_parse(&l, "0.0.0.0/0", err, sizeof(err)) == 0 &&
	    mw_cidr_list_match(&l, "203.0.113.1"), "/0 matches all v4");
	mw_cidr_list_free(&l);
}

static void
test_actions(void)
{
	struct mw_action a;
	char err[256];

	ok(mw_action_parse(&a, "reject", err, sizeof(err)) == 0 &&
	    a.kind == MW_ACT_REJECT, "reject");
	ok(mw_action_parse(&a, "2.5", err, sizeof(err)) == 0 &&
	    a.kind == MW_ACT_SCORE && a.score == 2.5, "score");
	ok(mw_action_parse(&a, "-1", err, sizeof(err)) == 0 &&
	    a.score == -1, "negative score");
	ok(mw_action_parse(&a, "rejekt", err, sizeof(err)) == -1,
	    "typo refused");
	ok(mw_action_parse(&a, "nan", err, sizeof(err)) == -1, "nan refused");
}

static void
test_authres(void)
{
	struct mw_authres *ar;
	char q[128], big[900], tail[64];
	const char *v, *p;
	int i;

	ar = mw_authres_new("mx.example.org");
	is_str(mw_authres_value(ar), "mx.example.org; none", "no results");
	mw_authres_result(ar, "iprev", "pass");
	mw_authres_prop(ar, "smtp", "remote-ip", "192.0.2.1");
	mw_authres_comment(ar, "mx.example.net");
	mw_authres_result(ar, "spf", "fail");
	mw_authres_comment(ar, "evil) ; dkim=pass (x");
	mw_authres_prop(ar, "smtp", "mailfrom", "user@example.net");
	is_str(mw_authres_value(ar), "mx.example.org;\n"
	    "\tiprev=pass smtp.remote-ip=192.0.2.1 (mx.example.net);\n"
	    "\tspf=fail (evil\\) ; dkim=pass \\(x) smtp.mailfrom=user@example.net",
	    "results, comment escaped");
	is_str(mw_authres_summary(ar), "iprev=pass spf=fail", "summary");
	mw_authres_free(ar);

	/* At its bound a resinfo goes in whole or not at all. */
	ar = mw_authres_new("mx.example.org");
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	for (i = 0; i < 60; i++) {
		mw_authres_result(ar, "dkim", "pass");
		mw_authres_comment(ar, "%d %s", i, big);
		mw_authres_prop(ar, "header", "d", "example.org");
	}
	v = mw_authres_value(ar);
	for (i = 0, p = v; (p = strstr(p, ";\n\tdkim=pass\n\t(")) != NULL; p++)
		i++;
	ok(strlen(v) <= 32 * 1024, "A-R stays within 32 kB (%zu bytes)",
	    strlen(v));
	ok(i > 0 && i < 60 && mw_authres_dropped(ar) == 60 - i,
	    "%d resinfos kept whole, %d left out and counted", i,
	    mw_authres_dropped(ar));
	snprintf(tail, sizeof(tail), ";\n\tdkim=pass\n\t(%d xxx", i - 1);
	ok(strstr(v, tail) != NULL && strlen(v) > 20 &&
	    strcmp(v + strlen(v) - 20, "header.d=example.org") == 0,
	    "the last one kept is whole, to its last property");
	mw_authres_free(ar);

	mw_quote_value("plain.token", q, sizeof(q));
	is_str(q, "plain.token", "token stays bare");
	mw_quote_value("a b;c", q, sizeof(q));
	is_str(q, "\"a b;c\"", "specials get quoted");
	mw_quote_value("x\"y\\z", q, sizeof(q));
	is_str(q, "\"x\\\"y\\\\z\"", "quote and backslash escaped");
	mw_quote_value("a\r\nb\x01\xc3", q, sizeof(q));
	is_str(q, "\"a??b??\"", "controls and 8-bit replaced");
	mw_quote_value("", q, sizeof(q));
	is_str(q, "\"\"", "empty value quoted");
	mw_quote_value("\"quoted\"@example.org", q, sizeof(q));
	is_str(q, "\"\\\"quoted\\\"@example.org\"", "odd local part quoted");
	mw_quote_value("first.last+tag@sub.example.org", q, sizeof(q));
	is_str(q, "first.last+tag@sub.example.org", "addr-spec bare");
	mw_quote_value("0123456789012345678901234567890 ;", q, 16);
	is_str(q, "\"0123456789012\"", "truncated, still closed");
	mw_quote_comment("a(b)c\\d\n", q, sizeof(q));
	is_str(q, "a\\(b\\)c\\\\d?", "comment escaping");

	ok(mw_authres_claims_id(" mx.example.org; spf=pass", "mx.example.org"),
	    "our id");
	ok(mw_authres_claims_id("MX.Example.ORG;spf=pass", "mx.example.org"),
	    "our id, other case");
	ok(mw_authres_claims_id(" (comment (nested)) mx.example.org 1; x=y",
	    "mx.example.org"), "our id after comments, with version");
	ok(mw_authres_claims_id("\"mx.example.org\"; none", "mx.example.org"),
	    "quoted id");
	ok(!mw_authres_claims_id(" mx.example.org.evil; spf=pass",
	    "mx.example.org"), "longer id is not ours");
	ok(!mw_authres_claims_id(" other.example; spf=pass", "mx.example.org"),
	    "other id kept");
	ok(mw_authres_claims_id(" (unterminated mx.example.org; spf=pass",
	    "mx.example.org"), "unparsable with our id: removed");
	ok(!mw_authres_claims_id(" (unterminated other; spf=pass",
	    "mx.example.org"), "unparsable without our id: kept");
}

/*
 * The log level is written on SIGHUP while session threads log: one
 * thread changes it, the others see the new level (and, the variable
 * being atomic, no torn or stale read is possible under the C11 model).
 */
static void *
level_setter(void *arg)
{
	int i;

	for (i = 0; i < 2000; i++)
		mw_log_set_level(i % 2 ? LOG_DEBUG : LOG_ERR);
	mw_log_set_level(*(int *)arg);
	return NULL;
}

static void *
level_reader(void *arg)
{
	int i;

	(void)arg;
	for (i = 0; i < 2000; i++)
		mw_log(LOG_DEBUG, "debug line %d", i);
	return NULL;
}

static void
test_log_level(void)
{
	char path[] = "/tmp/mwunit-log.XXXXXX", buf[4096];
	int fd, saved, level = LOG_WARNING;
	pthread_t setter, reader;
	FILE *fp;
	size_t n;

	if ((fd = mkstemp(path)) == -1 || (saved = dup(2)) == -1)
		abort();
	mw_log_open("unit", 0, LOG_INFO, 1);
	fflush(stderr);
	dup2(fd, 2);
	pthread_create(&setter, NULL, level_setter, &level);
	pthread_create(&reader, NULL, level_reader, NULL);
	pthread_join(setter, NULL);
	pthread_join(reader, NULL);
	if (ftruncate(fd, 0) == -1 || lseek(fd, 0, SEEK_SET) == -1)
		abort();
	mw_log(LOG_INFO, "an info line");
	mw_log(LOG_WARNING, "a warning line");
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	fp = fdopen(fd, "r");
	rewind(fp);
	n = fread(buf, 1, sizeof(buf) - 1, fp);
	buf[n] = '\0';
	fclose(fp);
	unlink(path);
	is_str(buf, "unit: a warning line\n",
	    "after a reload to warning: info is dropped, warning logged");
	mw_log_open("unit", 0, LOG_ERR, 1);
}

/* The one domain-name validator: every flag, every reason. */
static void
test_domain(void)
{
	char long_label[80], long_name[300];
	const char *why;
	size_t i;

	ok(mw_domain_ok("mail.example.org", MW_DOMAIN_LDH), "plain name");
	ok(mw_domain_ok("mail.example.org.", MW_DOMAIN_LDH),
	    "one final dot is allowed");
	ok(!mw_domain_ok("mail.example.org.", MW_DOMAIN_NO_FINAL_DOT),
	    "NO_FINAL_DOT refuses it");
	ok(!mw_domain_ok("mail.example.org..", MW_DOMAIN_LDH),
	    "two final dots: an empty label");
	ok(mw_domain_ok("sel._domainkey.example.org", MW_DOMAIN_LDH),
	    "underscore is allowed");
	is_str(mw_domain_check(".example.org", 12, 0), "has an empty label",
	    "leading dot");
	is_str(mw_domain_check("a..b", 4, 0), "has an empty label",
	    "double dot");
	is_str(mw_domain_check("", 0, 0), "empty or too long", "empty");
	is_str(mw_domain_check(".", 1, 0), "empty or too long", "only a dot");
	ok(!mw_domain_ok(NULL, 0), "NULL is not a name");
	is_str(mw_domain_check("exa mple.org", 12, 0),
	    "has characters a host name cannot have", "space, LDH");
	is_str(mw_domain_check("exa\\mple.org", 12, MW_DOMAIN_TEXT),
	    "has a byte that is not printable ASCII",
	    "backslash is never allowed");
	ok(mw_domain_ok("a+b=c.example.org", MW_DOMAIN_TEXT),
	    "TEXT: any printable ASCII");
	ok(!mw_domain_ok("a b.example.org", MW_DOMAIN_TEXT),
	    "TEXT: but no space");
	ok(mw_domain_ok("a b.example.org", MW_DOMAIN_TEXT | MW_DOMAIN_SPACE),
	    "TEXT | SPACE: a space too (SPF macros)");
	ok(!mw_domain_ok("j\xc3\xb6rg.example.org", MW_DOMAIN_TEXT),
	    "TEXT: no 8-bit byte");
	ok(!mw_domain_ok("a\x01.example.org", MW_DOMAIN_TEXT |
	    MW_DOMAIN_SPACE), "TEXT: no control character");
	memset(long_label, 'a', 64);
	long_label[64] = '\0';
	is_str(mw_domain_check(long_label, 64, 0),
	    "has a label longer than 63 characters", "64-byte label");
	long_label[63] = '\0';
	ok(mw_domain_ok(long_label, 0), "63-byte label");
	for (i = 0; i < 253; i++)
		long_name[i] = i % 2 ? '.' : 'a';
	long_name[252] = 'a';
	long_name[253] = '\0';
	ok(mw_domain_ok(long_name, 0), "253 bytes");
	long_name[253] = '.';
	long_name[254] = '\0';
	ok(mw_domain_ok(long_name, 0), "253 bytes and a final dot");
	long_name[253] = 'a';
	is_str(mw_domain_check(long_name, 254, 0), "empty or too long",
	    "254 bytes");
	ok(mw_domain_ok("localhost", MW_DOMAIN_HOST), "HOST: a single label");
	is_str(mw_domain_check("localhost", 9, MW_DOMAIN_DOTTED),
	    "is a bare word, not a fully-qualified name", "DOTTED");
	is_str(mw_domain_check("-mx.example.org", 15, MW_DOMAIN_HOST),
	    "has a label starting with '-'", "HOST: leading hyphen");
	is_str(mw_domain_check("mx-.example.org", 15, MW_DOMAIN_HOST),
	    "has a label ending with '-'", "HOST: hyphen before a dot");
	is_str(mw_domain_check("mx.example-", 11, MW_DOMAIN_HOST),
	    "has a label ending with '-'", "HOST: trailing hyphen");
	ok(mw_domain_ok("-mx.example.org", MW_DOMAIN_LDH),
	    "LDH alone does not mind hyphens");
	is_str(mw_domain_check("192.0.2.1", 9, MW_DOMAIN_HOST),
	    "has an all-numeric top-level label", "HOST: an address");
	ok(mw_domain_ok("mx.123a", MW_DOMAIN_HOST),
	    "HOST: a top label with a letter");
	why = mw_domain_check("example.org.evil", 11, MW_DOMAIN_DOTTED);
	ok(why == NULL, "only len bytes are looked at");
}

/* The one printable copy: printable ASCII stays, the rest is '?'. */
static void
test_printable(void)
{
	char out[16], in[4] = { 'a', '\0', 'b', '\n' }, mt[32], t[] = "a\tb";
	struct mw_buf b = MW_BUF_INIT(100);

	is_str(mw_printable(out, sizeof(out), "ok: <a@b> ~"), "ok: <a@b> ~",
	    "printable ASCII is kept");
	is_str(mw_printable(out, sizeof(out), "a\r\nb\x1b[31m\x7f"),
	    "a??b?[31m?", "controls and DEL become '?'");
	is_str(mw_printable(out, sizeof(out), "j\xc3\xb6rg"), "j??rg",
	    "bytes >= 0x80 become '?' too");
	is_str(mw_printable(out, 6, "abcdefgh"), "abcde", "cut at outlen - 1");
	is_str(mw_printable(out, sizeof(out), NULL), "", "NULL is empty");
	is_str(mw_printable_n(out, sizeof(out), in, sizeof(in)), "a?b?",
	    "_n: a NUL in the middle becomes '?'");
	mw_printable_inplace(t);
	is_str(t, "a?b", "in place");
	is_int(mw_printable_char(0x80), '?', "char 0x80");
	is_int(mw_printable_char(' '), ' ', "char space");
	is_int(mw_printable_char('~'), '~', "char ~");
	is_str(mw_milter_text(mt, sizeof(mt), "100% sure\r\n\xff"),
	    "100_ sure___", "milter text: '%%' and the rest become '_'");
	mw_escaped(&b, "a\"\x01\xff", 4);
	is_str(mw_buf_str(&b), "a\"\\x01\\xff", "escaped: \\xNN");
	mw_buf_free(&b);
}

/* The canonical body of in (fed in chunks of step bytes) hashes as want. */
static void
body_is(enum mw_canon c, long long limit, const char *in, size_t step,
    const char *want, const char *what)
{
	struct mw_canon_body *cb = mw_canon_body_new(c, "sha256", limit);
	unsigned char got[64], exp[64];
	unsigned int en = 0;
	unsigned long long total = 0;
	size_t i, n = strlen(in);
	int gn;

	for (i = 0; i < n; i += step)
		mw_canon_body_update(cb, (const unsigned char *)in + i,
		    n - i < step ? n - i : step);
	gn = mw_canon_body_final(cb, got, &total);
	mw_canon_body_free(cb);
	EVP_Digest(want, limit >= 0 && (size_t)limit < strlen(want) ?
	    (size_t)limit : strlen(want), exp, &en, EVP_sha256(), NULL);
	ok(gn == (int)en && memcmp(got, exp, en) == 0, "canon body: %s "
	    "(chunks of %zu)", what, step);
	if (limit < 0)
		is_int((long)total, (long)strlen(want), "canon body: %s: length",
		    what);
}

static void
test_canon(void)
{
	static const size_t steps[] = { 1, 2, 3, 7, 4096 };
	struct mw_buf b = MW_BUF_INIT(4096);
	struct mw_taglist tl;
	enum mw_canon h, bd;
	unsigned char out[64];
	char err[100];
	size_t i;

	/* RFC 6376 3.4.5/3.4.6 example */
	for (i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		body_is(MW_CANON_RELAXED, -1, " C \r\nD \t E\r\n\r\n\r\n",
		    steps[i], " C\r\nD E\r\n", "RFC 6376 example, relaxed");
		body_is(MW_CANON_SIMPLE, -1, " C \r\nD \t E\r\n\r\n\r\n",
		    steps[i], " C \r\nD \t E\r\n", "RFC 6376 example, simple");
		body_is(MW_CANON_RELAXED, -1, "a\r\n \t \r\n\r\nb \r",
		    steps[i], "a\r\n\r\n\r\nb \r\r\n",
		    "blank lines inside kept, a bare CR is content");
		body_is(MW_CANON_SIMPLE, -1, "a\nb\r\n", steps[i],
		    "a\nb\r\n", "a bare LF is content");
	}
	body_is(MW_CANON_SIMPLE, -1, "", 1, "\r\n", "empty body, simple");
	body_is(MW_CANON_RELAXED, -1, "", 1, "", "empty body, relaxed");
	body_is(MW_CANON_SIMPLE, -1, "\r\n\r\n", 1, "\r\n",
	    "only empty lines, simple");
	body_is(MW_CANON_RELAXED, -1, " \r\n\r\n", 1, "",
	    "only blank lines, relaxed");
	body_is(MW_CANON_SIMPLE, -1, "abc", 1, "abc\r\n",
	    "no final CRLF, simple");
	body_is(MW_CANON_RELAXED, -1, "abc \t", 1, "abc\r\n",
	    "no final CRLF, relaxed");
	body_is(MW_CANON_RELAXED, 3, "a  b\r\nc\r\n", 1, "a b\r\nc\r\n",
	    "l=3 hashes the first 3 bytes");
	ok(mw_canon_body_new(MW_CANON_SIMPLE, "nosuchhash", -1) == NULL,
	    "canon body: an unknown hash is refused");
	ok(mw_canon_body_final(NULL, out, NULL) == -1,
	    "canon body: NULL is an error, not a crash");

	mw_canon_header(&b, MW_CANON_RELAXED, "Subject ", " Y\t\n\tZ  ", 1);
	is_str(mw_buf_str(&b), "subject:Y Z\r\n", "canon header: relaxed "
	    "(RFC 6376 3.4.6 example, LF fold as Postfix passes it)");
	mw_buf_reset(&b);
	mw_canon_header(&b, MW_CANON_SIMPLE, "Subject", " Y\t\n\tZ  ", 0);
	is_str(mw_buf_str(&b), "Subject: Y\t\r\n\tZ  ",
	    "canon header: simple, folds as CRLF, no final CRLF");
	mw_buf_reset(&b);
	mw_canon_header(&b, MW_CANON_SIMPLE, "A", " x\r\n y", 1);
	is_str(mw_buf_str(&b), "A: x\r\n y\r\n",
	    "canon header: simple, a CRLF fold stays one CRLF");
	mw_buf_free(&b);
	ok(mw_canon_parse("relaxed", &h, &bd) == 0 && h == MW_CANON_RELAXED &&
	    bd == MW_CANON_SIMPLE, "c=relaxed is relaxed/simple");
	ok(mw_canon_parse("simple/relaxed", &h, &bd) == 0 &&
	    h == MW_CANON_SIMPLE && bd == MW_CANON_RELAXED,
	    "c=simple/relaxed");
	ok(mw_canon_parse("", &h, &bd) == -1 &&
	    mw_canon_parse("relaxed/", &h, &bd) == -1 &&
	    mw_canon_parse("Relaxed/nope", &h, &bd) == -1,
	    "c= empty, half empty or unknown is refused");

	ok(mw_taglist_parse(" a = rsa-sha256 ;\r\n b=ab cd\r\n ef; d=x;",
	    &tl, err, sizeof(err)) == 0 && tl.n == 3 &&
	    strcmp(mw_taglist_get(&tl, "a"), "rsa-sha256") == 0 &&
	    strcmp(mw_taglist_get(&tl, "b"), "ab cd\r\n ef") == 0,
	    "tag list: FWS around tags, a trailing ;");
	mw_taglist_free(&tl);
	ok(mw_taglist_parse("a=1; a=2", &tl, err, sizeof(err)) == -1,
	    "tag list: a tag twice is refused (%s)", err);
	ok(mw_taglist_parse("a=1;; b=2", &tl, err, sizeof(err)) == -1,
	    "tag list: an empty tag-spec is refused");
	ok(mw_taglist_parse("1a=1", &tl, err, sizeof(err)) == -1,
	    "tag list: a name must start with a letter");
	is_int(mw_base64_decode("aGVs\r\n bG8=", out, sizeof(out)), 5,
	    "base64 with folding white space");
	is_int(mw_base64_decode("aGVsbG8", out, sizeof(out)), -1,
	    "base64 without its padding is refused");
	is_int(mw_base64_decode("aG=Vs", out, sizeof(out)), -1,
	    "base64 with data after padding is refused");
}

int
main(void)
{
	test_config();
	test_cidr();
	test_actions();
	test_authres();
	test_domain();
	test_printable();
	test_log_level();
	test_canon();
	return tap_done();
}
