/*
 * mw_config -- load mailwarden.ini with inih.  See mw_config.h.
 *
 * Every problem is reported as "file:line: what is wrong" and the load
 * fails: an unknown section or key, a bad value, a line too long, a
 * syntax error.  We feed inih through our own line reader so that we
 * know the line number of every key (the Debian build of inih does not
 * pass it to handlers) and can refuse over-long lines instead of having
 * them split silently.  The file must be a regular file of at most
 * MW_CONFIG_MAX_BYTES, opened without blocking (a FIFO or a device named
 * by -c is refused, never waited on).  A key set twice in a section is
 * an error naming both lines, unless it is a list key (list_keys[]).
 */
#include "config.h"

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <syslog.h>
#include <unistd.h>

#include <ini.h>

#include "mw_config.h"
#include "mw_module.h"


struct loader {
	struct mw_config	*cfg;
	FILE			*fp;
	int			 line;		/* line being parsed */
	int			 err_line;	/* first error, 0 = none */
	char			 err[400];
	int			 trusted_seen;	/* file sets trusted_networks */
	unsigned long		 bytes;		/* read so far */
	int			 read_errno;	/* a read error, 0 = none */
	struct seen_key {
		char	*section, *key;
		int	 line;
	}			*seen;		/* scalar keys set so far */
	size_t			 n_seen;
	int			 stats_allow_seen;
};

/*
 * Keys that may be repeated (their values add up).  Every other key is
 * a scalar: setting it twice is a mistake worth stopping for.
 */
static const char *const list_keys[] = {
	"milter.trusted_networks", "policy.exempt_recipients",
	"helo.our_names", "helo.our_ips", "dnsbl.zone", "dkim.key",
	"dkim.keytable", "dkim.sign_headers", "dkim.oversign_headers",
	"dmarc.override_domains",
};

static int
is_list_key(const char *section, const char *key)
{
	size_t i, n = strlen(section);

	for (i = 0; i < sizeof(list_keys) / sizeof(list_keys[0]); i++)
		if (strncmp(list_keys[i], section, n) == 0 &&
		    list_keys[i][n] == '.' &&
		    strcmp(list_keys[i] + n + 1, key) == 0)
			return 1;
	return 0;
}

/* The line a scalar key was first set on, or 0 (and remember this one). */
static int
seen_before(struct loader *ld, const char *section, const char *key)
{
	struct seen_key *nv;
	size_t i;

	if (is_list_key(section, key))
		return 0;
	for (i = 0; i < ld->n_seen; i++)
		if (strcmp(ld->seen[i].section, section) == 0 &&
		    strcmp(ld->seen[i].key, key) == 0)
			return ld->seen[i].line;
	if ((nv = realloc(ld->seen, (ld->n_seen + 1) * sizeof(*nv))) == NULL)
		return 0;
	ld->seen = nv;
	nv[ld->n_seen].section = strdup(section);
	nv[ld->n_seen].key = strdup(key);
	nv[ld->n_seen].line = ld->line;
	if (nv[ld->n_seen].section == NULL || nv[ld->n_seen].key == NULL) {
		free(nv[ld->n_seen].section);
		free(nv[ld->n_seen].key);
		return 0;
	}
	ld->n_seen++;
	return 0;
}

static void
seen_free(struct loader *ld)
{
	size_t i;

	for (i = 0; i < ld->n_seen; i++) {
		free(ld->seen[i].section);
		free(ld->seen[i].key);
	}
	free(ld->seen);
}

static void
loader_error(struct loader *ld, const char *fmt, ...)
{
	va_list ap;

	if (ld->err_line != 0)
		return;		/* report the first problem only */
	ld->err_line = ld->line;
	va_start(ap, fmt);
	vsnprintf(ld->err, sizeof(ld->err), fmt, ap);
	va_end(ap);
}

/*
 * Line reader handed to ini_parse_stream: counts lines, and turns a line
 * longer than inih's buffer into an error instead of two half lines.
 */
static char *
read_line(char *str, int num, void *stream)
{
	struct loader *ld = stream;
	int c, n = 0, overflow = 0;

	for (;;) {
		c = getc(ld->fp);
		if (c == EOF) {
			if (ferror(ld->fp) && ld->read_errno == 0)
				ld->read_errno = errno != 0 ? errno : EIO;
			break;
		}
		/* Files whose size stat() does not tell (/proc) are bounded too. */
		if (++ld->bytes > MW_CONFIG_MAX_BYTES) {
			ld->read_errno = EFBIG;
			c = EOF;
			break;
		}
		if (n < num - 2)
			str[n++] = (char)c;
		else if (c != '\n')
			overflow = 1;
		if (c == '\n')
			break;
		if (c == '\0') {
			/* NUL in a config file: inih would stop the line there. */
			overflow = 2;
		}
	}
	if (n == 0 && c == EOF)
		return NULL;
	str[n] = '\0';
	ld->line++;
	if (overflow != 0) {
		if (overflow == 2)
			loader_error(ld, "NUL byte in line");
		else
			loader_error(ld, "line longer than %d bytes (put long "
			    "lists on several lines: list keys add up)",
			    num - 2);
		/* Hand inih a harmless comment in its place. */
		snprintf(str, (size_t)num, ";\n");
	}
	return str;
}

FILE *
mw_open_regular(const char *path, unsigned long long max, char *err,
    size_t errlen)
{
	struct stat st;
	FILE *fp;
	int fd, fl;

	if ((fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC)) ==
	    -1) {
		snprintf(err, errlen, "%s: cannot open: %s", path,
		    strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s: not a regular file (%s)", path,
		    S_ISDIR(st.st_mode) ? "a directory" :
		    S_ISFIFO(st.st_mode) ? "a FIFO" :
		    S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) ? "a device" :
		    S_ISSOCK(st.st_mode) ? "a socket" : "not a file");
		close(fd);
		return NULL;
	}
	if ((unsigned long long)st.st_size > max) {
		snprintf(err, errlen, "%s: %lld bytes, more than the %llu "
		    "allowed", path, (long long)st.st_size, max);
		close(fd);
		return NULL;
	}
	if ((fl = fcntl(fd, F_GETFL)) != -1)
		(void)fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
	if ((fp = fdopen(fd, "r")) == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		close(fd);
	}
	return fp;
}

int
mw_check_regular(const char *path, unsigned long long max, char *err,
    size_t errlen)
{
	FILE *fp = mw_open_regular(path, max, err, errlen);

	if (fp == NULL)
		return -1;
	fclose(fp);
	return 0;
}

int
mw_parse_bool(const char *s, bool *out, char *err, size_t errlen)
{
	if (strcmp(s, "yes") == 0 || strcmp(s, "true") == 0 ||
	    strcmp(s, "on") == 0 || strcmp(s, "1") == 0) {
		*out = true;
		return 0;
	}
	if (strcmp(s, "no") == 0 || strcmp(s, "false") == 0 ||
	    strcmp(s, "off") == 0 || strcmp(s, "0") == 0) {
		*out = false;
		return 0;
	}
	snprintf(err, errlen, "\"%s\" is not a boolean (yes/no)", s);
	return -1;
}

int
mw_parse_int(const char *s, long min, long max, long *out, char *err,
    size_t errlen)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (*s == '\0' || *end != '\0' || errno != 0 || v < min || v > max) {
		snprintf(err, errlen, "\"%s\" is not an integer between %ld "
		    "and %ld", s, min, max);
		return -1;
	}
	*out = v;
	return 0;
}

int
mw_parse_double(const char *s, double min, double max, double *out,
    char *err, size_t errlen)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (*s == '\0' || *end != '\0' || errno != 0 || !isfinite(v) ||
	    v < min || v > max) {
		snprintf(err, errlen, "\"%s\" is not a number between %g and "
		    "%g", s, min, max);
		return -1;
	}
	*out = v;
	return 0;
}

int
mw_parse_duration(const char *s, long *out, char *err, size_t errlen)
{
	char *end;
	long v, mul = 1;

	errno = 0;
	v = strtol(s, &end, 10);
	if (end == s || errno != 0 || v < 0)
		goto bad;
	if (*end != '\0') {
		switch (*end) {
		case 's': mul = 1; break;
		case 'm': mul = 60; break;
		case 'h': mul = 3600; break;
		case 'd': mul = 86400; break;
		case 'w': mul = 7 * 86400; break;
		default: goto bad;
		}
		if (end[1] != '\0')
			goto bad;
	}
	if (v > LONG_MAX / mul || v * mul > 10L * 365 * 86400)
		goto bad;
	*out = v * mul;
	return 0;
bad:
	snprintf(err, errlen, "\"%s\" is not a duration (e.g. 300, 300s, 5m, "
	    "2h, 35d; at most 10 years)", s);
	return -1;
}

int
mw_parse_size(const char *s, unsigned long long *out, char *err,
    size_t errlen)
{
	char *end;
	unsigned long long v, mul = 1;

	errno = 0;
	if (*s == '-' || !isdigit((unsigned char)*s))
		goto bad;
	v = strtoull(s, &end, 10);
	if (errno != 0)
		goto bad;
	if (*end != '\0') {
		switch (*end) {
		case 'k': case 'K': mul = 1024ULL; break;
		case 'm': case 'M': mul = 1024ULL * 1024; break;
		case 'g': case 'G': mul = 1024ULL * 1024 * 1024; break;
		default: goto bad;
		}
		if (end[1] != '\0')
			goto bad;
	}
	if (v > (1ULL << 40) / mul)
		goto bad;
	*out = v * mul;
	return 0;
bad:
	snprintf(err, errlen, "\"%s\" is not a size (bytes, or with k/M/G; at "
	    "most 1T)", s);
	return -1;
}

int
mw_set_string(char **dst, const char *s, char *err, size_t errlen)
{
	char *copy = strdup(s);

	if (copy == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	free(*dst);
	*dst = copy;
	return 0;
}

int
mw_set_fixed(char *dst, size_t dstlen, const char *s, const char *what,
    char *err, size_t errlen)
{
	size_t n = strlen(s);

	if (n >= dstlen) {
		snprintf(err, errlen, "%s is longer than %zu bytes", what,
		    dstlen - 1);
		return -1;
	}
	memcpy(dst, s, n + 1);
	return 0;
}

int
mw_split_list(const char *s, char ***v, size_t *n, char *err, size_t errlen)
{
	const char *p = s;

	while (*p != '\0') {
		size_t len = 0;
		char **nv, *item;

		while (*p == ',' || isspace((unsigned char)*p))
			p++;
		if (*p == '\0')
			break;
		while (p[len] != '\0' && p[len] != ',' &&
		    !isspace((unsigned char)p[len]))
			len++;
		item = strndup(p, len);
		nv = realloc(*v, (*n + 1) * sizeof(**v));
		if (item == NULL || nv == NULL) {
			free(item);
			if (nv != NULL)
				*v = nv;
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		*v = nv;
		(*v)[(*n)++] = item;
		p += len;
	}
	return 0;
}

void
mw_free_list(char **v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static const struct {
	const char	*name;
	int		 value;
} log_levels[] = {
	{ "error", LOG_ERR }, { "warning", LOG_WARNING },
	{ "notice", LOG_NOTICE }, { "info", LOG_INFO }, { "debug", LOG_DEBUG },
}, log_facilities[] = {
	{ "mail", LOG_MAIL }, { "daemon", LOG_DAEMON }, { "local0", LOG_LOCAL0 },
	{ "local1", LOG_LOCAL1 }, { "local2", LOG_LOCAL2 },
	{ "local3", LOG_LOCAL3 }, { "local4", LOG_LOCAL4 },
	{ "local5", LOG_LOCAL5 }, { "local6", LOG_LOCAL6 },
	{ "local7", LOG_LOCAL7 },
};

/*
 * A libmilter socket spec, checked the way libmilter will use it:
 * unix:/absolute/path (fits a sockaddr_un), inet:PORT[@HOST],
 * inet6:PORT[@HOST] with PORT 1..65535 and HOST an address of the family
 * or a name that resolves to one.
 */
static int
check_socket(const char *v, char *err, size_t errlen)
{
	const char *spec = v, *at, *host;
	struct addrinfo hints, *res = NULL;
	char port[16];
	long l;
	size_t n;
	int six, e;

	if (strncmp(v, "unix:", 5) == 0 || strncmp(v, "local:", 6) == 0) {
		const char *path = strchr(v, ':') + 1;

		if (*path != '/') {
			snprintf(err, errlen, "socket \"%s\": expected an "
			    "absolute path after %.*s", v,
			    (int)(path - v), v);
			return -1;
		}
		if (strlen(path) >= 108) {
			snprintf(err, errlen, "socket \"%s\": path longer than "
			    "107 bytes", v);
			return -1;
		}
		return 0;
	}
	if (strncmp(v, "inet:", 5) == 0)
		six = 0, spec = v + 5;
	else if (strncmp(v, "inet6:", 6) == 0)
		six = 1, spec = v + 6;
	else {
		snprintf(err, errlen, "socket \"%s\": expected unix:/path, "
		    "inet:port@host or inet6:port@host", v);
		return -1;
	}
	at = strchr(spec, '@');
	n = at != NULL ? (size_t)(at - spec) : strlen(spec);
	if (n == 0 || n >= sizeof(port) || strspn(spec, "0123456789") != n) {
		snprintf(err, errlen, "socket \"%s\": the port must be a "
		    "number from 1 to 65535", v);
		return -1;
	}
	memcpy(port, spec, n);
	port[n] = '\0';
	l = strtol(port, NULL, 10);
	if (l < 1 || l > 65535) {
		snprintf(err, errlen, "socket \"%s\": port %s is not in 1 to "
		    "65535", v, port);
		return -1;
	}
	if (at == NULL)
		return 0;	/* every address */
	host = at + 1;
	if (*host == '\0') {
		snprintf(err, errlen, "socket \"%s\": empty host after '@'",
		    v);
		return -1;
	}
	if (strpbrk(host, "[]") != NULL) {
		snprintf(err, errlen, "socket \"%s\": write the address "
		    "without brackets (inet6:8891@::1)", v);
		return -1;
	}
	/*
	 * An address of the family, or a host name (letters, digits, '-',
	 * '.'); the daemon resolves names when it starts and with -t
	 * (mw_config_socket_host), never the loader.
	 */
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = six ? AF_INET6 : AF_INET;
	hints.ai_flags = AI_NUMERICHOST;
	if ((e = getaddrinfo(host, NULL, &hints, &res)) == 0) {
		freeaddrinfo(res);
		return 0;
	}
	if (strspn(host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "0123456789-.") != strlen(host) || strchr(host, ':') != NULL) {
		snprintf(err, errlen, "socket \"%s\": host %s is not an %s "
		    "address or a host name", v, host, six ? "IPv6" : "IPv4");
		return -1;
	}
	return 0;
}

int
mw_config_socket_host(const struct mw_config *c, char *err, size_t errlen)
{
	struct addrinfo hints, *res = NULL;
	const char *at;
	int e;

	if (strncmp(c->socket, "inet", 4) != 0 ||
	    (at = strchr(c->socket, '@')) == NULL)
		return 0;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = strncmp(c->socket, "inet6:", 6) == 0 ? AF_INET6 :
	    AF_INET;
	hints.ai_socktype = SOCK_STREAM;
	if ((e = getaddrinfo(at + 1, NULL, &hints, &res)) != 0) {
		snprintf(err, errlen, "[milter] socket %s: host %s: %s",
		    c->socket, at + 1, gai_strerror(e));
		return -1;
	}
	freeaddrinfo(res);
	return 0;
}

static int
set_milter(struct mw_config *c, const char *k, const char *v, char *err,
    size_t errlen)
{
	long l;
	size_t i;

	if (strcmp(k, "socket") == 0) {
		if (check_socket(v, err, errlen) == -1)
			return -1;
		return mw_set_string(&c->socket, v, err, errlen);
	}
	if (strcmp(k, "socket_mode") == 0) {
		char *end;

		errno = 0;
		l = strtol(v, &end, 8);
		if (*v == '\0' || *end != '\0' || errno != 0 || l < 0 ||
		    l > 0777) {
			snprintf(err, errlen, "socket_mode \"%s\": expected an "
			    "octal mode such as 0660", v);
			return -1;
		}
		c->socket_mode = (unsigned int)l;
		return 0;
	}
	if (strcmp(k, "user") == 0)
		return mw_set_string(&c->user, v, err, errlen);
	if (strcmp(k, "group") == 0)
		return mw_set_string(&c->group, v, err, errlen);
	if (strcmp(k, "pidfile") == 0)
		return mw_set_string(&c->pidfile, v, err, errlen);
	if (strcmp(k, "auto_restart") == 0)
		return mw_parse_bool(v, &c->auto_restart, err, errlen);
	if (strcmp(k, "auto_restart_rate") == 0) {
		/* N/period: at most N restarts in any period ("10/1h"). */
		const char *slash = strchr(v, '/');
		char num[32];

		if (slash == NULL || (size_t)(slash - v) >= sizeof(num)) {
			snprintf(err, errlen, "auto_restart_rate \"%s\": "
			    "expected N/period such as 10/1h", v);
			return -1;
		}
		memcpy(num, v, (size_t)(slash - v));
		num[slash - v] = '\0';
		if (mw_parse_int(num, 1, 10000, &l, err, errlen) == -1 ||
		    mw_parse_duration(slash + 1, &c->restart_period, err,
		    errlen) == -1)
			return -1;
		if (c->restart_period < 1) {
			snprintf(err, errlen, "auto_restart_rate \"%s\": the "
			    "period must be at least 1s", v);
			return -1;
		}
		c->restart_max = (int)l;
		return 0;
	}
	if (strcmp(k, "timeout") == 0) {
		if (mw_parse_duration(v, &c->milter_timeout, err, errlen) == -1)
			return -1;
		if (c->milter_timeout < 1 || c->milter_timeout > 86400) {
			snprintf(err, errlen, "timeout \"%s\": expected 1s to "
			    "1d", v);
			return -1;
		}
		return 0;
	}
	if (strcmp(k, "authserv_id") == 0) {
		/* It is a token in a header: keep it a plain domain-ish word. */
		for (i = 0; v[i] != '\0'; i++)
			if (!isalnum((unsigned char)v[i]) && v[i] != '.' &&
			    v[i] != '-' && v[i] != '_') {
				snprintf(err, errlen, "authserv_id \"%s\": only "
				    "letters, digits, '.', '-', '_'", v);
				return -1;
			}
		if (i == 0) {
			snprintf(err, errlen, "authserv_id is empty");
			return -1;
		}
		return mw_set_string(&c->authserv_id, v, err, errlen);
	}
	if (strcmp(k, "trusted_networks") == 0)
		return mw_cidr_list_parse(&c->trusted_networks, v, err, errlen);
	if (strcmp(k, "dry_run") == 0)
		return mw_parse_bool(v, &c->dry_run, err, errlen);
	if (strcmp(k, "log_level") == 0) {
		for (i = 0; i < sizeof(log_levels) / sizeof(log_levels[0]); i++)
			if (strcmp(v, log_levels[i].name) == 0) {
				c->log_level = log_levels[i].value;
				return 0;
			}
		snprintf(err, errlen, "log_level \"%s\": expected error, "
		    "warning, notice, info or debug", v);
		return -1;
	}
	if (strcmp(k, "log_facility") == 0) {
		for (i = 0; i < sizeof(log_facilities) /
		    sizeof(log_facilities[0]); i++)
			if (strcmp(v, log_facilities[i].name) == 0) {
				c->log_facility = log_facilities[i].value;
				return mw_set_string(&c->log_facility_name, v,
				    err, errlen);
			}
		snprintf(err, errlen, "log_facility \"%s\": expected mail, "
		    "daemon or local0..local7", v);
		return -1;
	}
	return 1;
}

static int
set_policy(struct mw_config *c, const char *k, const char *v, char *err,
    size_t errlen)
{
	if (strcmp(k, "reject_score") == 0)
		return mw_parse_double(v, 0, 10000, &c->reject_score, err,
		    errlen);
	if (strcmp(k, "tempfail_score") == 0)
		return mw_parse_double(v, 0, 10000, &c->tempfail_score, err,
		    errlen);
	if (strcmp(k, "exempt_recipients") == 0) {
		/* Replaces the default list. */
		mw_free_list(c->exempt_localparts, c->n_exempt_localparts);
		c->exempt_localparts = NULL;
		c->n_exempt_localparts = 0;
		return mw_split_list(v, &c->exempt_localparts,
		    &c->n_exempt_localparts, err, errlen);
	}
	if (strcmp(k, "reject_text") == 0)
		return mw_set_string(&c->reject_text, v, err, errlen);
	return 1;
}

static int
set_dns(struct mw_config *c, const char *k, const char *v, char *err,
    size_t errlen)
{
	long l;

	if (strcmp(k, "nameservers") == 0)
		return mw_set_string(&c->dns_nameservers, v, err, errlen);
	if (strcmp(k, "timeout_ms") == 0) {
		if (mw_parse_int(v, 10, 60000, &l, err, errlen) == -1)
			return -1;
		c->dns_timeout_ms = (int)l;
		return 0;
	}
	if (strcmp(k, "tries") == 0) {
		if (mw_parse_int(v, 1, 10, &l, err, errlen) == -1)
			return -1;
		c->dns_tries = (int)l;
		return 0;
	}
	if (strcmp(k, "cache_size") == 0) {
		if (mw_parse_int(v, 0, 10000000, &l, err, errlen) == -1)
			return -1;
		c->dns_cache_size = (int)l;
		return 0;
	}
	return 1;
}

int
mw_parse_hostport(const char *s, int *family, unsigned char addr[16],
    int *port, char *err, size_t errlen)
{
	char host[128];
	const char *p, *colon, *orig = s;
	long l;
	size_t n;

	memset(addr, 0, 16);
	if (*s == '[') {
		if ((p = strchr(s, ']')) == NULL || p[1] != ':')
			goto bad;
		n = (size_t)(p - s - 1);
		colon = p + 1;
		s++;
	} else {
		if ((colon = strrchr(s, ':')) == NULL)
			goto bad;
		n = (size_t)(colon - s);
	}
	if (n == 0 || n >= sizeof(host))
		goto bad;
	memcpy(host, s, n);
	host[n] = '\0';
	if (inet_pton(AF_INET, host, addr) == 1)
		*family = AF_INET;
	else if (inet_pton(AF_INET6, host, addr) == 1)
		*family = AF_INET6;
	else
		goto bad;
	if (mw_parse_int(colon + 1, 1, 65535, &l, err, errlen) == -1)
		goto bad;
	*port = (int)l;
	return 0;
bad:
	snprintf(err, errlen, "\"%s\" is not ADDRESS:PORT (an IP address, "
	    "IPv6 in brackets: 127.0.0.1:9732, [::1]:9732)", orig);
	return -1;
}

static int
set_stats(struct mw_config *c, const char *k, const char *v, char *err,
    size_t errlen)
{
	if (strcmp(k, "listen") == 0) {
		int fam, port;
		unsigned char a[16];

		if (*v != '\0' && mw_parse_hostport(v, &fam, a, &port, err,
		    errlen) == -1)
			return -1;
		return mw_set_string(&c->stats_listen, v, err, errlen);
	}
	if (strcmp(k, "allow") == 0)
		return mw_cidr_list_parse(&c->stats_allow, v, err, errlen);
	if (strcmp(k, "user") == 0) {
		if (*v == '\0' || strchr(v, ':') != NULL) {
			snprintf(err, errlen, "user \"%s\": not empty, no ':'",
			    v);
			return -1;
		}
		return mw_set_string(&c->stats_user, v, err, errlen);
	}
	if (strcmp(k, "password_file") == 0)
		return mw_set_string(&c->stats_password_file, v, err, errlen);
	if (strcmp(k, "history") == 0)
		return mw_parse_int(v, 0, 1000, &c->stats_history, err, errlen);
	if (strcmp(k, "show_addresses") == 0)
		return mw_parse_bool(v, &c->stats_show_addresses, err, errlen);
	if (strcmp(k, "max_connections") == 0)
		return mw_parse_int(v, 1, 1000, &c->stats_max_connections, err,
		    errlen);
	if (strcmp(k, "timeout") == 0)
		return mw_parse_duration(v, &c->stats_timeout, err, errlen);
	return 1;
}

const char *
mw_secret_mode_problem(unsigned int mode)
{
	if ((mode & S_IWOTH) != 0)
		return "writable";
	if ((mode & S_IROTH) != 0)
		return "readable";
	return NULL;
}

int
mw_read_secret_file(const char *path, char **out, char *err, size_t errlen)
{
	char buf[1024];
	size_t n;
	FILE *fp;
	struct stat sb;

	*out = NULL;
	if ((fp = mw_open_regular(path, 65536, err, errlen)) == NULL)
		return -1;
	if (fstat(fileno(fp), &sb) != 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		fclose(fp);
		return -1;
	}
	if (mw_secret_mode_problem((unsigned)sb.st_mode) != NULL) {
		snprintf(err, errlen, "%s is readable or writable by others "
		    "(mode %04o): chmod o-rw it", path,
		    (unsigned)(sb.st_mode & 07777));
		fclose(fp);
		return -1;
	}
	if (fgets(buf, sizeof(buf), fp) == NULL)
		buf[0] = '\0';
	fclose(fp);
	n = strcspn(buf, "\r\n");
	buf[n] = '\0';
	if (n == 0) {
		snprintf(err, errlen, "%s: empty first line", path);
		return -1;
	}
	if ((*out = strdup(buf)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	memset(buf, 0, sizeof(buf));
	return 0;
}

/*
 * [stats] as a whole: read the password file (it must not be readable
 * by others), and insist on a password when the listener is reachable
 * from other hosts.
 */
static int
check_stats(struct mw_config *c, char *err, size_t errlen)
{
	int fam = 0, port;
	unsigned char a[16];

	if (*c->stats_password_file != '\0') {
		char why[256];

		if (mw_read_secret_file(c->stats_password_file,
		    &c->stats_password, why, sizeof(why)) == -1) {
			snprintf(err, errlen, "[stats] password_file: %.255s",
			    why);
			return -1;
		}
	}
	if (*c->stats_listen == '\0')
		return 0;
	(void)mw_parse_hostport(c->stats_listen, &fam, a, &port, err, errlen);
	if (c->stats_password == NULL &&
	    !((fam == AF_INET && a[0] == 127) ||
	    (fam == AF_INET6 && memcmp(a, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\1",
	    16) == 0))) {
		snprintf(err, errlen, "[stats] listen = %s is not loopback: "
		    "set password_file (HTTP basic auth) too",
		    c->stats_listen);
		return -1;
	}
	return 0;
}

static int
handler(void *user, const char *section, const char *name, const char *value)
{
	struct loader *ld = user;
	struct mw_config *c = ld->cfg;
	char err[300];
	int idx, r;

	err[0] = '\0';
	/*
	 * Before [redis] existed the Redis keys lived in [greylist]: they
	 * still work there, as if written in [redis] (setting one in both
	 * is the same key set twice).
	 */
	if (strcmp(section, "greylist") == 0 && mw_redis_cfg_is_key(name)) {
		if ((r = seen_before(ld, "redis", name)) != 0) {
			loader_error(ld, "[greylist] %s and [redis] %s both set "
			    "(lines %d and %d): keep the one in [redis]", name,
			    name, r, ld->line);
			return 0;
		}
		r = mw_redis_cfg_set(&c->redis, name, value, ld->line, err,
		    sizeof(err));
		if (r != 0) {
			loader_error(ld, "[greylist] %s: %s", name, err);
			return 0;
		}
		return 1;
	}
	if ((r = seen_before(ld, section, name)) != 0) {
		loader_error(ld, "[%s] %s set twice (lines %d and %d): keep "
		    "one", section, name, r, ld->line);
		return 0;
	}
	if (strcmp(section, "milter") == 0) {
		/* The first trusted_networks line replaces the default. */
		if (strcmp(name, "trusted_networks") == 0 && !ld->trusted_seen) {
			mw_cidr_list_free(&c->trusted_networks);
			ld->trusted_seen = 1;
		}
		r = set_milter(c, name, value, err, sizeof(err));
	}
	else if (strcmp(section, "policy") == 0)
		r = set_policy(c, name, value, err, sizeof(err));
	else if (strcmp(section, "dns") == 0)
		r = set_dns(c, name, value, err, sizeof(err));
	else if (strcmp(section, "redis") == 0)
		r = mw_redis_cfg_set(&c->redis, name, value, ld->line, err,
		    sizeof(err));
	else if (strcmp(section, "stats") == 0) {
		/* The first allow line replaces the default. */
		if (strcmp(name, "allow") == 0 && !ld->stats_allow_seen) {
			mw_cidr_list_free(&c->stats_allow);
			ld->stats_allow_seen = 1;
		}
		r = set_stats(c, name, value, err, sizeof(err));
	}
	else if ((idx = mw_module_index(section)) >= 0 &&
	    strcmp(name, "enabled") == 0)
		r = mw_parse_bool(value, &c->enabled[idx], err, sizeof(err));
	else if (idx >= 0)
		r = mw_modules[idx]->cfg_set(c->mod[idx], name, value, err,
		    sizeof(err));
	else {
		loader_error(ld, "unknown section [%s]", section);
		return 0;
	}
	if (r == 1) {
		loader_error(ld, "unknown key \"%s\" in [%s]", name, section);
		return 0;
	}
	if (r != 0) {
		loader_error(ld, "[%s] %s: %s", section, name, err);
		return 0;
	}
	return 1;
}

static int
default_authserv_id(struct mw_config *c)
{
	char host[256];

	if (gethostname(host, sizeof(host)) != 0)
		snprintf(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = '\0';
	c->authserv_id = strdup(host);
	return c->authserv_id == NULL ? -1 : 0;
}

static struct mw_config *
config_new(void)
{
	struct mw_config *c;
	size_t i;
	char err[64];

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	c->socket = strdup("unix:/run/mailwarden/mailwarden.sock");
	c->socket_mode = 0660;
	c->user = strdup("mailwarden");
	c->group = strdup("");
	c->auto_restart = true;
	c->restart_max = 10;
	c->restart_period = 3600;
	/* Postfix's smtpd_timeout (300s) plus its milter_command_timeout. */
	c->milter_timeout = 330;
	c->log_level = LOG_INFO;
	c->log_facility = LOG_MAIL;
	c->log_facility_name = strdup("mail");
	c->reject_score = 10;
	c->tempfail_score = 0;
	c->reject_text = strdup("Message rejected by policy");
	c->dns_timeout_ms = 2000;
	c->dns_tries = 2;
	c->dns_cache_size = 10000;
	c->stats_listen = strdup("");
	c->stats_user = strdup("mailwarden");
	c->stats_password_file = strdup("");
	c->stats_history = 100;
	c->stats_show_addresses = true;
	c->stats_max_connections = 8;
	c->stats_timeout = 10;
	mw_redis_cfg_init(&c->redis);
	if (mw_split_list("postmaster, abuse", &c->exempt_localparts,
	    &c->n_exempt_localparts, err, sizeof(err)) == -1 ||
	    mw_cidr_list_parse(&c->trusted_networks, "127.0.0.0/8, ::1", err,
	    sizeof(err)) == -1 ||
	    mw_cidr_list_parse(&c->stats_allow, "127.0.0.0/8, ::1", err,
	    sizeof(err)) == -1)
		goto fail;
	for (i = 0; i < mw_nmodules; i++) {
		if ((c->mod[i] = calloc(1, mw_modules[i]->cfg_size)) == NULL)
			goto fail;
		if (mw_modules[i]->cfg_init != NULL)
			mw_modules[i]->cfg_init(c->mod[i]);
		c->enabled[i] = !mw_modules[i]->off_by_default;
	}
	if (c->socket == NULL || c->user == NULL || c->group == NULL ||
	    c->reject_text == NULL || c->log_facility_name == NULL ||
	    c->stats_listen == NULL || c->stats_user == NULL ||
	    c->stats_password_file == NULL)
		goto fail;
	return c;
fail:
	mw_config_free(c);
	return NULL;
}

int
mw_config_load(const char *path, struct mw_config **cfgp, char *err,
    size_t errlen)
{
	struct loader ld;
	struct mw_config *c;
	size_t i;
	int r;
	char merr[300];

	*cfgp = NULL;
	memset(&ld, 0, sizeof(ld));
	if ((c = config_new()) == NULL) {
		snprintf(err, errlen, "%s: out of memory", path);
		return -1;
	}
	ld.cfg = c;
	if ((ld.fp = mw_open_regular(path, MW_CONFIG_MAX_BYTES, err,
	    errlen)) == NULL) {
		mw_config_free(c);
		return -1;
	}
	r = ini_parse_stream(read_line, &ld, handler, &ld);
	fclose(ld.fp);
	seen_free(&ld);
	if (ld.read_errno != 0 && ld.err_line == 0) {
		if (ld.read_errno == EFBIG)
			snprintf(err, errlen, "%s: more than %d bytes", path,
			    MW_CONFIG_MAX_BYTES);
		else
			snprintf(err, errlen, "%s: cannot read: %s", path,
			    strerror(ld.read_errno));
		mw_config_free(c);
		return -1;
	}
	if (ld.err_line != 0 || r != 0) {
		if (ld.err_line != 0 && (r <= 0 || ld.err_line <= r))
			snprintf(err, errlen, "%s:%d: %s", path, ld.err_line,
			    ld.err);
		else
			snprintf(err, errlen, "%s:%d: syntax error: expected "
			    "[section], key = value, or a ; comment", path, r);
		mw_config_free(c);
		return -1;
	}
	if ((c->path = strdup(path)) == NULL)
		goto fail_mem;
	if (c->authserv_id == NULL && default_authserv_id(c) == -1)
		goto fail_mem;
	merr[0] = '\0';
	if (check_stats(c, merr, sizeof(merr)) == -1) {
		snprintf(err, errlen, "%s: %s", path, merr);
		mw_config_free(c);
		return -1;
	}
	{
		int rline = 0;

		if (mw_redis_cfg_check(&c->redis, &rline, merr,
		    sizeof(merr)) == -1) {
			if (rline > 0)
				snprintf(err, errlen, "%s:%d: %s", path, rline,
				    merr);
			else
				snprintf(err, errlen, "%s: %s", path, merr);
			mw_config_free(c);
			return -1;
		}
	}
	for (i = 0; i < mw_nmodules; i++) {
		if (mw_modules[i]->cfg_check == NULL || !c->enabled[i])
			continue;
		merr[0] = '\0';
		if (mw_modules[i]->cfg_check(c->mod[i], c, merr,
		    sizeof(merr)) != 0) {
			snprintf(err, errlen, "%s: [%s] %s", path,
			    mw_modules[i]->name, merr);
			mw_config_free(c);
			return -1;
		}
	}
	*cfgp = c;
	return 0;
fail_mem:
	snprintf(err, errlen, "%s: out of memory", path);
	mw_config_free(c);
	return -1;
}

void
mw_config_free(struct mw_config *c)
{
	size_t i;

	if (c == NULL)
		return;
	free(c->path);
	free(c->socket);
	free(c->user);
	free(c->group);
	free(c->authserv_id);
	free(c->log_facility_name);
	free(c->pidfile);
	mw_cidr_list_free(&c->trusted_networks);
	mw_free_list(c->exempt_localparts, c->n_exempt_localparts);
	free(c->reject_text);
	free(c->dns_nameservers);
	free(c->stats_listen);
	mw_cidr_list_free(&c->stats_allow);
	free(c->stats_user);
	free(c->stats_password_file);
	memset(c->redis.password, 0, sizeof(c->redis.password));
	if (c->stats_password != NULL) {
		memset(c->stats_password, 0, strlen(c->stats_password));
		free(c->stats_password);
	}
	for (i = 0; i < mw_nmodules; i++) {
		if (c->mod[i] == NULL)
			continue;
		if (mw_modules[i]->cfg_free != NULL)
			mw_modules[i]->cfg_free(c->mod[i]);
		free(c->mod[i]);
	}
	free(c);
}

void
mw_config_dump(const struct mw_config *c, void *vfp)
{
	FILE *fp = vfp;
	size_t i;

	fprintf(fp, "[milter]\nsocket = %s\nsocket_mode = %04o\nuser = %s\n"
	    "group = %s\nauthserv_id = %s\ndry_run = %s\n"
	    "trusted_networks = %zu networks\nauto_restart = %s\n"
	    "auto_restart_rate = %d/%lds\ntimeout = %lds\n\n",
	    c->socket, c->socket_mode, c->user, c->group, c->authserv_id,
	    c->dry_run ? "yes" : "no", c->trusted_networks.n,
	    c->auto_restart ? "yes" : "no", c->restart_max,
	    c->restart_period, c->milter_timeout);
	fprintf(fp, "[policy]\nreject_score = %g\ntempfail_score = %g\n"
	    "exempt_recipients =", c->reject_score, c->tempfail_score);
	for (i = 0; i < c->n_exempt_localparts; i++)
		fprintf(fp, " %s", c->exempt_localparts[i]);
	fprintf(fp, "\n\n[dns]\nnameservers = %s\ntimeout_ms = %d\ntries = %d\n"
	    "cache_size = %d\n", c->dns_nameservers != NULL ?
	    c->dns_nameservers : "(resolv.conf)", c->dns_timeout_ms,
	    c->dns_tries, c->dns_cache_size);
	fprintf(fp, "\n[stats]\nlisten = %s\nallow = %zu networks\n"
	    "user = %s\npassword_file = %s\nhistory = %ld\n"
	    "show_addresses = %s\nmax_connections = %ld\ntimeout = %lds\n",
	    c->stats_listen, c->stats_allow.n, c->stats_user,
	    c->stats_password_file, c->stats_history,
	    c->stats_show_addresses ? "yes" : "no", c->stats_max_connections,
	    c->stats_timeout);
	mw_redis_cfg_dump(&c->redis, fp);
	for (i = 0; i < mw_nmodules; i++) {
		fprintf(fp, "\n[%s]\nenabled = %s\n", mw_modules[i]->name,
		    c->enabled[i] ? "yes" : "no");
		if (mw_modules[i]->cfg_dump != NULL)
			mw_modules[i]->cfg_dump(c->mod[i], fp);
	}
}
