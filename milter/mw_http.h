/*
 * mw_http -- the daemon's small HTTP server for [stats]: GET /metrics
 * (Prometheus) and GET / (status page), with libmicrohttpd in a thread
 * of its own.
 *
 *	int fd = mw_http_listen(cfg, err, sizeof(err));	-- as root, before daemon()
 *	struct mw_http *h = mw_http_start(fd, cfg, stats, err, sizeof(err));
 *	mw_http_update(h, newcfg);			-- SIGHUP: allow list, password
 *	mw_http_stop(h);
 */
#ifndef MW_HTTP_H
#define MW_HTTP_H

#include <stddef.h>

struct mw_config;
struct mw_stats;
struct mw_http;

/* Bind and listen on [stats] listen; the fd, or -1 with err. */
int		 mw_http_listen(const struct mw_config *cfg, char *err,
		    size_t errlen);
struct mw_http	*mw_http_start(int fd, const struct mw_config *cfg,
		    struct mw_stats *st, char *err, size_t errlen);
void		 mw_http_update(struct mw_http *h, const struct mw_config *cfg);
void		 mw_http_stop(struct mw_http *h);

#endif /* MW_HTTP_H */
