/*
 * mw_log -- logging to syslog, or to stderr in foreground mode.
 *
 *	mw_log_open("mailwarden", LOG_MAIL, LOG_INFO, to_stderr);
 *	mw_log(LOG_INFO, "%s: client=%s", qid, client);
 *
 * The level and destination are process settings changed only at start
 * and on reload (mw_log_set_level); logging itself is thread-safe.
 */
#ifndef MW_LOG_H
#define MW_LOG_H

#include <syslog.h>

void	mw_log_open(const char *ident, int facility, int level, int to_stderr);
void	mw_log_set_level(int level);
void	mw_log(int prio, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));

#endif /* MW_LOG_H */
