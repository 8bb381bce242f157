/*
 * mw_cidr -- parse and match IPv4/IPv6 network lists.  See mw_cidr.h.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mw_cidr.h"

int
mw_ip_parse(const char *ip, int *family, uint8_t addr[16])
{
	struct in_addr a4;
	struct in6_addr a6;
	static const uint8_t mapped[12] = {0,0,0,0,0,0,0,0,0,0,0xff,0xff};

	memset(addr, 0, 16);
	if (inet_pton(AF_INET, ip, &a4) == 1) {
		*family = AF_INET;
		memcpy(addr, &a4, 4);
		return 0;
	}
	if (inet_pton(AF_INET6, ip, &a6) == 1) {
		if (memcmp(a6.s6_addr, mapped, 12) == 0) {
			*family = AF_INET;
			memcpy(addr, a6.s6_addr + 12, 4);
		} else {
			*family = AF_INET6;
			memcpy(addr, a6.s6_addr, 16);
		}
		return 0;
	}
	return -1;
}

static void
mask_bits(uint8_t *addr, int prefix, int bytes)
{
	int i;

	for (i = 0; i < bytes; i++) {
		int keep = prefix - i * 8;

		if (keep >= 8)
			continue;
		if (keep <= 0)
			addr[i] = 0;
		else
			addr[i] &= (uint8_t)(0xff << (8 - keep));
	}
}

int
mw_cidr_parse(struct mw_cidr *c, const char *s, char *err, size_t errlen)
{
	char buf[INET6_ADDRSTRLEN + 8];
	char *slash, *end;
	long prefix;
	int max;

	if (strlen(s) >= sizeof(buf)) {
		snprintf(err, errlen, "bad network \"%.64s\": too long", s);
		return -1;
	}
	strcpy(buf, s);
	slash = strchr(buf, '/');
	if (slash != NULL)
		*slash++ = '\0';
	/* Brackets are allowed around IPv6 addresses: [2001:db8::]/32. */
	if (buf[0] == '[' && buf[strlen(buf) - 1] == ']') {
		buf[strlen(buf) - 1] = '\0';
		memmove(buf, buf + 1, strlen(buf));
	}
	if (mw_ip_parse(buf, &c->family, c->addr) == -1) {
		snprintf(err, errlen, "bad network \"%s\": not an IP address", s);
		return -1;
	}
	if (strchr(buf, ':') != NULL && c->family == AF_INET) {
		snprintf(err, errlen, "bad network \"%s\": write IPv4-mapped "
		    "networks in IPv4 form", s);
		return -1;
	}
	max = c->family == AF_INET ? 32 : 128;
	if (slash == NULL) {
		c->prefix = max;
		return 0;
	}
	errno = 0;
	prefix = strtol(slash, &end, 10);
	if (*slash == '\0' || *end != '\0' || errno != 0 || prefix < 0 ||
	    prefix > max) {
		snprintf(err, errlen, "bad network \"%s\": prefix must be "
		    "0..%d", s, max);
		return -1;
	}
	c->prefix = (int)prefix;
	/* 192.0.2.1/24 is accepted and means 192.0.2.0/24, like Postfix. */
	mask_bits(c->addr, c->prefix, 16);
	return 0;
}

int
mw_cidr_list_parse(struct mw_cidr_list *l, const char *s, char *err,
    size_t errlen)
{
	const char *p = s;
	char item[128];

	while (*p != '\0') {
		size_t n = 0;
		struct mw_cidr c, *nv;

		while (*p == ',' || isspace((unsigned char)*p))
			p++;
		if (*p == '\0')
			break;
		while (p[n] != '\0' && p[n] != ',' &&
		    !isspace((unsigned char)p[n]))
			n++;
		if (n >= sizeof(item)) {
			snprintf(err, errlen, "bad network: item too long");
			return -1;
		}
		memcpy(item, p, n);
		item[n] = '\0';
		p += n;
		if (mw_cidr_parse(&c, item, err, errlen) == -1)
			return -1;
		/* Doubling: a 100,000-line list loads in linear time. */
		if (l->n == l->cap) {
			size_t cap = l->cap < 16 ? 16 : l->cap * 2;

			if ((nv = realloc(l->v, cap * sizeof(*nv))) == NULL) {
				snprintf(err, errlen, "out of memory");
				return -1;
			}
			l->v = nv;
			l->cap = cap;
		}
		l->v[l->n++] = c;
	}
	return 0;
}

int
mw_cidr_list_match(const struct mw_cidr_list *l, const char *ip)
{
	uint8_t a[16];
	int family;
	size_t i;

	if (ip == NULL || mw_ip_parse(ip, &family, a) == -1)
		return 0;
	for (i = 0; i < l->n; i++) {
		uint8_t m[16];

		if (l->v[i].family != family)
			continue;
		memcpy(m, a, 16);
		mask_bits(m, l->v[i].prefix, 16);
		if (memcmp(m, l->v[i].addr, 16) == 0)
			return 1;
	}
	return 0;
}

void
mw_cidr_list_free(struct mw_cidr_list *l)
{
	free(l->v);
	l->v = NULL;
	l->n = 0;
	l->cap = 0;
}
