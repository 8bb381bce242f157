/*
 * mw_http -- serve [stats]: GET /metrics in the Prometheus text format
 * and GET / the status page (lib/mw_stats.h renders both).  See
 * mw_http.h for the calls.
 *
 * libmicrohttpd runs one polling thread of its own: no milter thread
 * ever waits for an HTTP client, and an HTTP client can only take what
 * [stats] allows -- max_connections connections (a quarter of them per
 * client address, at least 2), `timeout` seconds each, 32 kB of request
 * memory each.  Clients outside [stats] allow are dropped at accept;
 * with a password_file every request needs HTTP basic auth.  Answers
 * carry a Content-Security-Policy that allows no script at all.
 *
 * The listening socket is opened by mw_http_listen() before the daemon
 * forks and drops root (so a port below 1024 works and a port in use
 * stops the start with a clear message); the thread starts after.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <microhttpd.h>

#include "mw_buf.h"
#include "mw_cidr.h"
#include "mw_config.h"
#include "mw_log.h"
#include "mw_stats.h"
#include "mw_http.h"

#define HTTP_REQ_MEMORY		(32 * 1024)
#define HTTP_PAGE_MAX		(16 * 1024 * 1024)

struct mw_http {
	struct MHD_Daemon	*d;
	struct mw_stats		*st;
	pthread_mutex_t		 lock;		/* the settings below */
	struct mw_cidr_list	 allow;
	char			*user;
	char			*password;	/* NULL: no auth */
};

static void
settings_free(struct mw_http *h)
{
	mw_cidr_list_free(&h->allow);
	free(h->user);
	if (h->password != NULL) {
		memset(h->password, 0, strlen(h->password));
		free(h->password);
	}
	h->user = h->password = NULL;
}

static void
settings_copy(struct mw_http *h, const struct mw_config *cfg)
{
	size_t i;

	pthread_mutex_lock(&h->lock);
	settings_free(h);
	/* Copy the allow list network by network (no formatting round trip). */
	if (cfg->stats_allow.n > 0 && (h->allow.v = calloc(cfg->stats_allow.n,
	    sizeof(*h->allow.v))) != NULL) {
		for (i = 0; i < cfg->stats_allow.n; i++)
			h->allow.v[i] = cfg->stats_allow.v[i];
		h->allow.n = cfg->stats_allow.n;
	}
	h->user = strdup(cfg->stats_user);
	if (cfg->stats_password != NULL)
		h->password = strdup(cfg->stats_password);
	pthread_mutex_unlock(&h->lock);
}

int
mw_http_listen(const struct mw_config *cfg, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	unsigned char a[16];
	int fam, port, fd, one = 1;

	if (mw_parse_hostport(cfg->stats_listen, &fam, a, &port, err,
	    errlen) == -1)
		return -1;
	memset(&ss, 0, sizeof(ss));
	if (fam == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)&ss;

		in->sin_family = AF_INET;
		in->sin_port = htons((unsigned short)port);
		memcpy(&in->sin_addr, a, 4);
		sl = sizeof(*in);
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((unsigned short)port);
		memcpy(&in6->sin6_addr, a, 16);
		sl = sizeof(*in6);
	}
	if ((fd = socket(fam, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1) {
		snprintf(err, errlen, "[stats] socket: %s", strerror(errno));
		return -1;
	}
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (fam == AF_INET6)
		(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one,
		    sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, sl) != 0 || listen(fd, 16) != 0) {
		snprintf(err, errlen, "[stats] listen = %s: %s",
		    cfg->stats_listen, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

static enum MHD_Result
accept_policy(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
	struct mw_http *h = cls;
	char ip[INET6_ADDRSTRLEN] = "";
	int ok;

	if (addr->sa_family == AF_INET &&
	    addrlen >= (socklen_t)sizeof(struct sockaddr_in))
		inet_ntop(AF_INET, &((const struct sockaddr_in *)addr)->sin_addr,
		    ip, sizeof(ip));
	else if (addr->sa_family == AF_INET6 &&
	    addrlen >= (socklen_t)sizeof(struct sockaddr_in6))
		inet_ntop(AF_INET6,
		    &((const struct sockaddr_in6 *)addr)->sin6_addr, ip,
		    sizeof(ip));
	pthread_mutex_lock(&h->lock);
	ok = ip[0] != '\0' && mw_cidr_list_match(&h->allow, ip);
	pthread_mutex_unlock(&h->lock);
	if (!ok)
		mw_log(LOG_NOTICE, "stats: refused HTTP client %s (not in "
		    "[stats] allow)", ip[0] ? ip : "?");
	return ok ? MHD_YES : MHD_NO;
}

/* Equal strings, in time that depends only on their lengths. */
static int
same_secret(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), i;
	unsigned char d = la != lb;

	for (i = 0; i < la && i < lb; i++)
		d |= (unsigned char)(a[i] ^ b[i]);
	return d == 0;
}

static enum MHD_Result
send_text(struct MHD_Connection *c, unsigned int status, const char *ctype,
    const char *text)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = MHD_create_response_from_buffer(strlen(text), (void *)text,
	    MHD_RESPMEM_MUST_COPY);
	if (r == NULL)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result
handle(void *cls, struct MHD_Connection *c, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_data_size, void **req_cls)
{
	struct mw_http *h = cls;
	struct MHD_Response *r;
	struct mw_buf b = MW_BUF_INIT(HTTP_PAGE_MAX);
	enum MHD_Result ret;
	const char *ctype;
	int authorized = 1;
	static int first_call_marker;

	(void)version;
	(void)upload_data;
	/* First call: headers only; answer on the second (no body read). */
	if (*req_cls == NULL) {
		*req_cls = &first_call_marker;
		return MHD_YES;
	}
	if (*upload_data_size != 0) {
		*upload_data_size = 0;	/* discard any body */
		return MHD_YES;
	}
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
		return send_text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain",
		    "only GET\n");

	pthread_mutex_lock(&h->lock);
	if (h->password != NULL) {
		char *pass = NULL;
		char *user = MHD_basic_auth_get_username_password(c, &pass);

		authorized = user != NULL && pass != NULL &&
		    same_secret(user, h->user) && same_secret(pass, h->password);
		if (pass != NULL) {
			memset(pass, 0, strlen(pass));
			MHD_free(pass);
		}
		if (user != NULL)
			MHD_free(user);
	}
	pthread_mutex_unlock(&h->lock);
	if (!authorized) {
		r = MHD_create_response_from_buffer(sizeof("authorization "
		    "required\n") - 1, (void *)"authorization required\n",
		    MHD_RESPMEM_PERSISTENT);
		if (r == NULL)
			return MHD_NO;
		ret = MHD_queue_basic_auth_fail_response(c, "mailwarden", r);
		MHD_destroy_response(r);
		return ret;
	}

	if (strcmp(url, "/metrics") == 0) {
		mw_stats_render_metrics(h->st, &b);
		ctype = "text/plain; version=0.0.4; charset=utf-8";
	} else if (strcmp(url, "/") == 0) {
		mw_stats_render_page(h->st, &b);
		ctype = "text/html; charset=utf-8";
	} else
		return send_text(c, MHD_HTTP_NOT_FOUND, "text/plain",
		    "not found: try / or /metrics\n");
	if (b.s == NULL || b.truncated) {
		mw_buf_free(&b);
		return send_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR,
		    "text/plain", "out of memory\n");
	}
	/* MHD frees b.s with free() when the response is done. */
	r = MHD_create_response_from_buffer(b.len, b.s, MHD_RESPMEM_MUST_FREE);
	if (r == NULL) {
		mw_buf_free(&b);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(r, "Content-Security-Policy",
	    "default-src 'none'; style-src 'unsafe-inline'; "
	    "frame-ancestors 'none'");
	ret = MHD_queue_response(c, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return ret;
}

static void
mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];
	size_t n;

	(void)cls;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
		msg[--n] = '\0';
	mw_log(LOG_WARNING, "stats: http: %s", msg);
}

struct mw_http *
mw_http_start(int fd, const struct mw_config *cfg, struct mw_stats *st,
    char *err, size_t errlen)
{
	struct mw_http *h;
	unsigned int per_ip;

	if ((h = calloc(1, sizeof(*h))) == NULL) {
		snprintf(err, errlen, "[stats] out of memory");
		close(fd);
		return NULL;
	}
	pthread_mutex_init(&h->lock, NULL);
	h->st = st;
	settings_copy(h, cfg);
	per_ip = (unsigned int)cfg->stats_max_connections / 4;
	if (per_ip < 2)
		per_ip = 2;
	h->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD |
	    MHD_USE_POLL | MHD_USE_ERROR_LOG, 0, accept_policy, h, handle, h,
	    MHD_OPTION_EXTERNAL_LOGGER, mhd_log, (void *)NULL,
	    MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd,
	    MHD_OPTION_CONNECTION_LIMIT,
	    (unsigned int)cfg->stats_max_connections,
	    MHD_OPTION_PER_IP_CONNECTION_LIMIT, per_ip,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)cfg->stats_timeout,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HTTP_REQ_MEMORY,
	    MHD_OPTION_END);
	if (h->d == NULL) {
		snprintf(err, errlen, "[stats] cannot start the HTTP server "
		    "on %s", cfg->stats_listen);
		close(fd);
		settings_free(h);
		pthread_mutex_destroy(&h->lock);
		free(h);
		return NULL;
	}
	return h;
}

void
mw_http_update(struct mw_http *h, const struct mw_config *cfg)
{
	if (h != NULL)
		settings_copy(h, cfg);
}

void
mw_http_stop(struct mw_http *h)
{
	if (h == NULL)
		return;
	MHD_stop_daemon(h->d);
	settings_free(h);
	pthread_mutex_destroy(&h->lock);
	free(h);
}
