/*
 * mw_message -- a message file (.eml, mbox entry) read the way an MTA
 * hands it to a milter: header fields with their raw values, the end of
 * the header, the body in CRLF chunks.  See mw_message.c for the rules
 * (they are Postfix's).
 *
 *	struct mw_msg_cb cb = { on_header, on_eoh, on_body, arg };
 *	if (mw_message_feed(fp, &cb, &stats, err, sizeof(err)) == -1) ...
 */
#ifndef MW_MESSAGE_H
#define MW_MESSAGE_H

#include <stddef.h>
#include <stdio.h>

#define MW_MSG_HEADER_MAX	102400	/* Postfix header_size_limit */
#define MW_MSG_CHUNK		65535	/* libmilter's largest body chunk */

struct mw_msg_cb {
	/*
	 * Each returns 0 to go on, -1 to stop reading.  value is what
	 * follows the colon, leading space included; a folded field keeps
	 * "\n" before each continuation line.
	 */
	int	(*header)(void *arg, const char *name, const char *value);
	int	(*eoh)(void *arg);
	int	(*body)(void *arg, const unsigned char *buf, size_t len);
	void	*arg;
};

struct mw_msg_stats {
	unsigned long	 n_headers;
	unsigned long	 n_truncated;	/* fields cut at MW_MSG_HEADER_MAX */
	unsigned long	 n_chunks;
	unsigned long long body_bytes;	/* as fed (CRLF line ends) */
	int		 stopped;	/* a callback said stop */
};

/* Stream fp to the callbacks in constant memory; -1 on a read error. */
int	mw_message_feed(FILE *fp, const struct mw_msg_cb *cb,
	    struct mw_msg_stats *st, char *err, size_t errlen);

/* A whole message in memory, read by the same rules. */
struct mw_message {
	char		**names;
	char		**values;
	size_t		  n;
	unsigned char	 *body;		/* CRLF line ends, NUL after */
	size_t		  bodylen;
	struct mw_msg_stats stats;
};

int	mw_message_load(FILE *fp, struct mw_message *m, char *err,
	    size_t errlen);
void	mw_message_free(struct mw_message *m);

#endif /* MW_MESSAGE_H */
