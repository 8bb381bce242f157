/*
 * mw_size -- the message size cap, section [size].
 *
 * Refuses at MAIL FROM when the ESMTP SIZE= parameter is over the cap,
 * and again as soon as the header and body that actually arrive pass
 * it (a client may lie about SIZE or not send it).  Nothing is
 * buffered: we only count bytes.  Also bounds the header section
 * (field count and total bytes), which bites before the body does.
 * Applies to every client, trusted or not: it protects us.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "mw_authres.h"
#include "mw_session_priv.h"

struct size_cfg {
	unsigned long long	max_bytes;
	long			max_headers;
	unsigned long long	max_header_bytes;
};

struct size_state {
	int	refused;	/* already refused this message */
};

static void
size_cfg_init(void *vc)
{
	struct size_cfg *c = vc;

	c->max_bytes = 26214400;	/* 25 MB, what big receivers take */
	c->max_headers = 1000;
	c->max_header_bytes = 1024 * 1024;
}

static int
size_cfg_set(void *vc, const char *k, const char *v, char *err, size_t errlen)
{
	struct size_cfg *c = vc;

	if (strcmp(k, "max_bytes") == 0)
		return mw_parse_size(v, &c->max_bytes, err, errlen);
	if (strcmp(k, "max_headers") == 0)
		return mw_parse_int(v, 10, 1000000, &c->max_headers, err,
		    errlen);
	if (strcmp(k, "max_header_bytes") == 0)
		return mw_parse_size(v, &c->max_header_bytes, err, errlen);
	return 1;
}

static int
size_cfg_check(void *vc, const struct mw_config *mc, char *err, size_t errlen)
{
	struct size_cfg *c = vc;

	(void)mc;
	if (c->max_bytes < 1024) {
		snprintf(err, errlen, "max_bytes %llu is below 1024 bytes",
		    c->max_bytes);
		return -1;
	}
	return 0;
}

static void
size_cfg_dump(const void *vc, void *fp)
{
	const struct size_cfg *c = vc;

	fprintf(fp, "max_bytes = %llu\nmax_headers = %ld\n"
	    "max_header_bytes = %llu\n", c->max_bytes, c->max_headers,
	    c->max_header_bytes);
}

static void
refuse_size(struct mw_session *s, const struct size_cfg *c,
    struct size_state *st, const char *what)
{
	st->refused = 1;
	mw_session_result(s, "fail");
	mw_session_refuse(s, MW_REJECT, 552, "5.3.4", "Message size exceeds "
	    "fixed maximum message size of %llu bytes%s", c->max_bytes, what);
}

static void
size_on_mail(struct mw_session *s, const void *vc, void *vst)
{
	const struct size_cfg *c = vc;

	if (s->size_declared > c->max_bytes)
		refuse_size(s, c, vst, " (SIZE parameter)");
}

static void
size_on_header(struct mw_session *s, const void *vc, void *vst,
    const char *name, const char *value)
{
	const struct size_cfg *c = vc;
	struct size_state *st = vst;

	(void)name;
	(void)value;
	if (st->refused)
		return;
	if ((long)s->n_headers > c->max_headers) {
		st->refused = 1;
		mw_session_result(s, "fail");
		mw_session_refuse(s, MW_REJECT, 552, "5.3.4", "Too many header "
		    "fields (limit %ld)", c->max_headers);
	} else if (s->header_bytes > c->max_header_bytes) {
		st->refused = 1;
		mw_session_result(s, "fail");
		mw_session_refuse(s, MW_REJECT, 552, "5.3.4", "Message header "
		    "too large (limit %llu bytes)", c->max_header_bytes);
	} else if (s->header_bytes > c->max_bytes)
		refuse_size(s, c, st, "");
}

static void
size_on_body(struct mw_session *s, const void *vc, void *vst,
    const unsigned char *buf, size_t len)
{
	const struct size_cfg *c = vc;
	struct size_state *st = vst;

	(void)buf;
	(void)len;
	if (!st->refused && s->header_bytes + s->body_bytes > c->max_bytes)
		refuse_size(s, c, st, "");
}

static void
size_on_reset(struct mw_session *s, const void *vc, void *vst)
{
	struct size_state *st = vst;

	(void)s;
	(void)vc;
	st->refused = 0;
}

const struct mw_module mw_module_size = {
	.name = "size",
	.inbound = 0,
	.cfg_size = sizeof(struct size_cfg),
	.cfg_init = size_cfg_init,
	.cfg_set = size_cfg_set,
	.cfg_check = size_cfg_check,
	.cfg_dump = size_cfg_dump,
	.state_size = sizeof(struct size_state),
	.on_mail = size_on_mail,
	.on_header = size_on_header,
	.on_body = size_on_body,
	.on_reset = size_on_reset,
};
