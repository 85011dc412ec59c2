/*
 * addr.c - checks of the network addresses the configuration names (see
 * addr.h).
 */
#include "addr.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

int addr_check_listen(const char *name, const char *v, char *why, size_t n)
{
	const char *colon = strrchr(v, ':'), *port;
	struct addrinfo hints, *res;
	struct in6_addr a6;
	char host[256];
	size_t hlen;
	int rc;

	if (colon == NULL) {
		snprintf(why, n, "%s: \"%s\" is not host:port", name, v);
		return -1;
	}
	port = colon + 1;
	if (*port == '\0' || port[strspn(port, "0123456789")] != '\0' ||
	    strlen(port) > 5 || atoi(port) < 1 || atoi(port) > 65535) {
		snprintf(why, n, "%s: \"%s\": the port must be a number from 1 to 65535",
			 name, v);
		return -1;
	}
	hlen = (size_t)(colon - v);
	if (hlen >= sizeof(host)) {
		snprintf(why, n, "%s: \"%s\": the host is too long", name, v);
		return -1;
	}
	memcpy(host, v, hlen);
	host[hlen] = '\0';
	if (hlen > 0 && host[0] == '[') {
		if (hlen < 3 || host[hlen - 1] != ']') {
			snprintf(why, n, "%s: \"%s\": no closing ] after the IPv6 address",
				 name, v);
			return -1;
		}
		memmove(host, host + 1, hlen - 2);
		host[hlen - 2] = '\0';
		if (inet_pton(AF_INET6, host, &a6) != 1) {
			snprintf(why, n, "%s: \"%s\": \"%s\" is not an IPv6 address",
				 name, v, host);
			return -1;
		}
		return 0;
	}
	if (strchr(host, ':') != NULL || strchr(host, ']') != NULL) {
		snprintf(why, n, "%s: \"%s\": an IPv6 address goes in brackets, "
			 "as [::1]:9201", name, v);
		return -1;
	}
	if (hlen == 0)
		return 0;
	if (strspn(host, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
		   "0123456789.-") != hlen) {
		snprintf(why, n, "%s: \"%s\": \"%s\" is not a host name or address",
			 name, v, host);
		return -1;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	rc = getaddrinfo(host, port, &hints, &res);
	if (rc != 0) {
		snprintf(why, n, "%s: \"%s\": cannot resolve \"%s\": %s", name, v,
			 host, gai_strerror(rc));
		return -1;
	}
	freeaddrinfo(res);
	return 0;
}

