/*
 * mw_log -- syslog or stderr.  See mw_log.h.
 */
#include "config.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <syslog.h>
#include <time.h>

#include "mw_log.h"

/* Read by every session thread, written on SIGHUP: atomic. */
static atomic_int log_level = LOG_INFO;
static int log_stderr = 1;
static const char *log_ident = "mailwarden";
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

void
mw_log_open(const char *ident, int facility, int level, int to_stderr)
{
	log_ident = ident;
	atomic_store_explicit(&log_level, level, memory_order_relaxed);
	log_stderr = to_stderr;
	if (!to_stderr)
		openlog(ident, LOG_PID | LOG_NDELAY, facility);
}

void
mw_log_set_level(int level)
{
	atomic_store_explicit(&log_level, level, memory_order_relaxed);
}

void
mw_log(int prio, const char *fmt, ...)
{
	va_list ap;
	char line[8192];

	if (prio > atomic_load_explicit(&log_level, memory_order_relaxed))
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (!log_stderr) {
		syslog(prio, "%s", line);
		return;
	}
	/* One write per line so threads' lines do not interleave. */
	pthread_mutex_lock(&log_lock);
	fprintf(stderr, "%s: %s\n", log_ident, line);
	fflush(stderr);
	pthread_mutex_unlock(&log_lock);
}
