/*
 * mw_buf -- a growing string buffer, so that nothing we build from
 * network data is written into a fixed-size array.  Bounded by `max`:
 * appends beyond it are dropped and `truncated` is set.
 *
 *	struct mw_buf b = MW_BUF_INIT(64 * 1024);
 *	mw_buf_printf(&b, "%s=%s", k, v);
 *	use(b.s ? b.s : "");
 *	mw_buf_free(&b);
 */
#ifndef MW_BUF_H
#define MW_BUF_H

#include <stddef.h>

struct mw_buf {
	char	*s;
	size_t	 len;
	size_t	 cap;
	size_t	 max;
	int	 truncated;
};

#define MW_BUF_INIT(max)	{ NULL, 0, 0, (max), 0 }

void	mw_buf_append(struct mw_buf *b, const char *s, size_t n);
void	mw_buf_puts(struct mw_buf *b, const char *s);
void	mw_buf_printf(struct mw_buf *b, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
void	mw_buf_reset(struct mw_buf *b);
void	mw_buf_free(struct mw_buf *b);
/* Always a valid string ("" when empty). */
const char	*mw_buf_str(const struct mw_buf *b);

#endif /* MW_BUF_H */
