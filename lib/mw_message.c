/*
 * mw_message -- read a message file (RFC 5322, as saved by a mail
 * client: .eml) and hand it to callbacks the way an MTA hands it to a
 * milter, in constant memory:
 *
 *	header(name, value)	one per field; value is the raw field body
 *				after the colon, leading space included, and
 *				a folded field keeps its line breaks as "\n"
 *				followed by the continuation line (what
 *				libmilter gives with SMFIP_HDR_LEADSPC)
 *	eoh()			the blank line
 *	body(buf, len)		the body in chunks of at most 65535 bytes
 *				(libmilter's MILTER_CHUNK_SIZE), with CRLF
 *				line ends as on the wire (a last line
 *				without one gets one, as SMTP DATA does)
 *
 *	struct mw_msg_cb cb = { on_header, on_eoh, on_body, arg };
 *	mw_message_feed(fp, &cb, &stats, err, sizeof(err));
 *
 * Like Postfix: a leading mbox "From " line is skipped; a field longer
 * than header_size_limit (102400 bytes) is cut there (the rest is
 * dropped); a line that is neither a field nor a continuation ends the
 * header and starts the body; LF or CRLF line ends are both accepted.
 *
 * For a message used more than once (test programs, benchmarks):
 *
 *	struct mw_message m;
 *	mw_message_load(fp, &m, err, sizeof(err));	-- the same rules
 *	... m.names[i], m.values[i], m.body, m.bodylen ...
 *	mw_message_free(&m);
 *
 * mw_session_message() (mw_session.h) gives a loaded message to a session.
 * Only libc and mw_buf: programs that are no milter (bench/mlat) link it.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mw_buf.h"
#include "mw_message.h"

struct reader {
	FILE			*fp;
	const struct mw_msg_cb	*cb;
	struct mw_msg_stats	*st;
	/* the field being collected */
	struct mw_buf		 field;
	int			 have_field;
	int			 truncated;
	/* body output */
	unsigned char		 out[MW_MSG_CHUNK];
	size_t			 olen;
	int			 last_cr;	/* previous input byte was CR */
	int			 last_byte;	/* of the body so far, -1 none */
	char			 line[MW_MSG_HEADER_MAX + 1];
};

/* Hand over the collected field; -1 if the callback says stop. */
static int
flush_field(struct reader *r)
{
	char *s, *colon, *end;
	int rc = 0;

	if (!r->have_field)
		return 0;
	r->have_field = 0;
	s = r->field.s != NULL ? r->field.s : (char *)"";
	colon = strchr(s, ':');
	if (colon != NULL) {
		*colon = '\0';
		/* Obsolete syntax: white space before the colon. */
		for (end = colon; end > s && (end[-1] == ' ' ||
		    end[-1] == '\t'); end--)
			end[-1] = '\0';
		r->st->n_headers++;
		if (r->truncated)
			r->st->n_truncated++;
		rc = r->cb->header(r->cb->arg, s, colon + 1);
	}
	mw_buf_reset(&r->field);
	r->truncated = 0;
	return rc;
}

/* Is this line the start of a header field ("Name:")? */
static int
is_field_start(const char *line, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)line[i];

		if (c == ':')
			return i > 0;
		if (c == ' ' || c == '\t') {
			/* "Name  :" is allowed, "Na me:" is not. */
			while (i < len && (line[i] == ' ' || line[i] == '\t'))
				i++;
			return i < len && line[i] == ':' && i > 0;
		}
		if (c < 33 || c > 126)
			return 0;
	}
	return 0;
}

static int
flush_body(struct reader *r)
{
	int rc = 0;

	if (r->olen > 0) {
		r->st->n_chunks++;
		r->st->body_bytes += r->olen;
		rc = r->cb->body(r->cb->arg, r->out, r->olen);
		r->olen = 0;
	}
	return rc;
}

static int
put_body(struct reader *r, unsigned char c)
{
	if (r->olen == sizeof(r->out) && flush_body(r) == -1)
		return -1;
	r->out[r->olen++] = c;
	return 0;
}

/* Body bytes: make every bare LF a CRLF. */
static int
body_bytes(struct reader *r, const unsigned char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (p[i] == '\n' && !r->last_cr && put_body(r, '\r') == -1)
			return -1;
		if (put_body(r, p[i]) == -1)
			return -1;
		r->last_cr = p[i] == '\r';
		r->last_byte = p[i];
	}
	return 0;
}

/*
 * Read one physical line (without its line end) into line, at most
 * max bytes.  Returns the bytes read, -1 at EOF before any byte.  When
 * the line is longer, *more is set and the rest is left unread (the
 * caller skips it, or streams it as body).  *eol is set when the line
 * ended in LF.
 */
static long
read_line(FILE *fp, char *line, size_t max, int *more, int *eol)
{
	size_t n = 0;
	int c = EOF;

	*more = *eol = 0;
	while (n < max && (c = getc(fp)) != EOF) {
		if (c == '\n') {
			*eol = 1;
			break;
		}
		line[n++] = (char)c;
	}
	if (n == max && !*eol) {
		/* Is the line really longer, or does its LF come next? */
		if ((c = getc(fp)) == '\n')
			*eol = 1;
		else if (c != EOF) {
			ungetc(c, fp);
			*more = 1;
		}
	}
	if (n == 0 && !*eol && !*more)
		return -1;
	if (n > 0 && line[n - 1] == '\r' && !*more)
		n--;
	line[n] = '\0';
	return (long)n;
}

/* Drop the rest of an over-long header line. */
static void
skip_line(FILE *fp)
{
	int c;

	while ((c = getc(fp)) != EOF && c != '\n')
		;
}

int
mw_message_feed(FILE *fp, const struct mw_msg_cb *cb,
    struct mw_msg_stats *st, char *err, size_t errlen)
{
	struct reader *r;
	char *line;
	struct mw_buf init = MW_BUF_INIT(MW_MSG_HEADER_MAX);
	unsigned char buf[16384];
	long n;
	int more, eol, first = 1, rc = 0;
	size_t got;

	memset(st, 0, sizeof(*st));
	/* The reader holds a chunk and a line: keep them off the stack. */
	if ((r = calloc(1, sizeof(*r))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	r->fp = fp;
	r->cb = cb;
	r->st = st;
	r->field = init;
	r->last_byte = -1;
	line = r->line;

	/* Header section. */
	for (;;) {
		n = read_line(fp, line, MW_MSG_HEADER_MAX, &more, &eol);
		if (n == -1)
			break;		/* EOF: no body */
		if (first && n >= 5 && strncmp(line, "From ", 5) == 0 &&
		    !is_field_start(line, (size_t)n)) {
			first = 0;
			if (more)
				skip_line(fp);
			continue;	/* mbox separator */
		}
		first = 0;
		if (n == 0 && !more) {
			/* The blank line: end of header. */
			if (flush_field(r) == -1)
				goto stop;
			break;
		}
		if ((line[0] == ' ' || line[0] == '\t') && r->have_field) {
			mw_buf_append(&r->field, "\n", 1);
			mw_buf_append(&r->field, line, (size_t)n);
			if (more)
				skip_line(fp);
			if (more || r->field.truncated)
				r->truncated = 1;
			continue;
		}
		if (!is_field_start(line, (size_t)n)) {
			/*
			 * Not a header line: the header ends here and this
			 * line is the first of the body.
			 */
			if (flush_field(r) == -1 || cb->eoh(cb->arg) == -1)
				goto stop;
			/* An over-long line goes on in the body stream. */
			if (body_bytes(r, (unsigned char *)line, (size_t)n) ==
			    -1 || (eol && body_bytes(r,
			    (const unsigned char *)"\r\n", 2) == -1))
				goto stop;
			goto body;
		}
		if (flush_field(r) == -1)
			goto stop;
		mw_buf_append(&r->field, line, (size_t)n);
		r->have_field = 1;
		r->truncated = more;
		if (more)
			skip_line(fp);
	}
	if (flush_field(r) == -1 || cb->eoh(cb->arg) == -1)
		goto stop;
body:
	while ((got = fread(buf, 1, sizeof(buf), fp)) > 0)
		if (body_bytes(r, buf, got) == -1)
			goto stop;
	/* SMTP ends the last line with CRLF even if the file did not. */
	if (r->last_byte != -1 && r->last_byte != '\n' &&
	    body_bytes(r, (const unsigned char *)"\r\n", 2) == -1)
		goto stop;
	if (flush_body(r) == -1)
		goto stop;
	if (ferror(fp)) {
		snprintf(err, errlen, "read error");
		rc = -1;
	}
	goto out;
stop:
	st->stopped = 1;
out:
	mw_buf_free(&r->field);
	free(r);
	return rc;
}

/* ---- a whole message in memory ------------------------------------------ */

static int
load_header(void *arg, const char *name, const char *value)
{
	struct mw_message *m = arg;
	char **nn, **nv;

	if ((nn = realloc(m->names, (m->n + 1) * sizeof(*nn))) == NULL)
		return -1;
	m->names = nn;
	if ((nv = realloc(m->values, (m->n + 1) * sizeof(*nv))) == NULL)
		return -1;
	m->values = nv;
	if ((nn[m->n] = strdup(name)) == NULL)
		return -1;
	if ((nv[m->n] = strdup(value)) == NULL) {
		free(nn[m->n]);
		return -1;
	}
	m->n++;
	return 0;
}

static int
load_eoh(void *arg)
{
	(void)arg;
	return 0;
}

static int
load_body(void *arg, const unsigned char *buf, size_t len)
{
	struct mw_message *m = arg;
	unsigned char *nb;

	if ((nb = realloc(m->body, m->bodylen + len + 1)) == NULL)
		return -1;
	m->body = nb;
	memcpy(m->body + m->bodylen, buf, len);
	m->bodylen += len;
	m->body[m->bodylen] = '\0';
	return 0;
}

int
mw_message_load(FILE *fp, struct mw_message *m, char *err, size_t errlen)
{
	struct mw_msg_cb cb = { load_header, load_eoh, load_body, m };

	memset(m, 0, sizeof(*m));
	if (mw_message_feed(fp, &cb, &m->stats, err, errlen) == -1)
		goto fail;
	if (m->stats.stopped) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	return 0;
fail:
	mw_message_free(m);
	return -1;
}

void
mw_message_free(struct mw_message *m)
{
	size_t i;

	for (i = 0; i < m->n; i++) {
		free(m->names[i]);
		free(m->values[i]);
	}
	free(m->names);
	free(m->values);
	free(m->body);
	memset(m, 0, sizeof(*m));
}
