/*
 * mw_cidr -- lists of IPv4/IPv6 networks ("192.0.2.0/24, 2001:db8::/32"),
 * used for trusted_networks and anything else that matches client IPs.
 *
 *	struct mw_cidr_list l = {0};
 *	if (mw_cidr_list_parse(&l, "127.0.0.0/8, ::1", err, sizeof(err)) == -1)
 *		fail(err);
 *	if (mw_cidr_list_match(&l, "127.0.0.1")) ...
 *	mw_cidr_list_free(&l);
 */
#ifndef MW_CIDR_H
#define MW_CIDR_H

#include <stddef.h>
#include <stdint.h>

struct mw_cidr {
	int		family;		/* AF_INET or AF_INET6 */
	uint8_t		addr[16];	/* network, host bits cleared */
	int		prefix;		/* 0..32 or 0..128 */
};

struct mw_cidr_list {
	struct mw_cidr	*v;
	size_t		 n;
	size_t		 cap;	/* allocated; grows by doubling */
};

/* Parse one "addr" or "addr/prefix"; 0 or -1 with err. */
int	mw_cidr_parse(struct mw_cidr *c, const char *s, char *err, size_t errlen);
/* Append a comma/space separated list to l; 0 or -1 with err. */
int	mw_cidr_list_parse(struct mw_cidr_list *l, const char *s, char *err,
	    size_t errlen);
/* 1 if ip (presentation form; IPv4-mapped IPv6 counts as IPv4) is in l. */
int	mw_cidr_list_match(const struct mw_cidr_list *l, const char *ip);
void	mw_cidr_list_free(struct mw_cidr_list *l);

/*
 * Parse ip into family + 16 bytes (IPv4-mapped IPv6 becomes IPv4).
 * Returns 0 or -1.
 */
int	mw_ip_parse(const char *ip, int *family, uint8_t addr[16]);

#endif /* MW_CIDR_H */
