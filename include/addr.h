/*
 * addr.h - checks of the network addresses the configuration names.
 */
#ifndef RELAY_ADDR_H
#define RELAY_ADDR_H

#include <stddef.h>

/*
 * Checks a listen address: HOST:PORT, [IPV6]:PORT or :PORT (every
 * address). The port is 1..65535 in decimal; the host is an address
 * literal or a name that resolves now (getaddrinfo). Returns 0, or -1
 * with "NAME: \"V\": reason" in why (n bytes).
 */
int addr_check_listen(const char *name, const char *v, char *why, size_t n);

#endif
