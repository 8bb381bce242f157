/*
 * stub_dns -- in-memory answers for the mw_dns API (see stub_dns.c).
 */
#ifndef STUB_DNS_H
#define STUB_DNS_H

/* The zone text (kept by pointer) and the client's address. */
void	stub_dns_set(const char *zone, const char *client_ip);

#endif /* STUB_DNS_H */
