/*
 * listener.c - where and how the HTTP server listens (see listener.h).
 */
#include "listener.h"

#include <errno.h>
#include <gnutls/gnutls.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

int listener_client_cert_ok(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci;
	unsigned status = 0, n = 0;
	gnutls_session_t sess;

	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
	if (ci == NULL || ci->tls_session == NULL)
		return 0;
	sess = (gnutls_session_t)ci->tls_session;
	if (gnutls_certificate_get_peers(sess, &n) == NULL || n == 0)
		return 0;
	if (gnutls_certificate_verify_peers2(sess, &status) != GNUTLS_E_SUCCESS)
		return 0;
	return status == 0;
}

char *listener_read_pem(const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	struct buf b;
	char chunk[4096];
	size_t n;

	if (f == NULL) {
		snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
		return NULL;
	}
	buf_init(&b, 1u << 20);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		if (buf_append(&b, chunk, n) < 0)
			break;
	}
	fclose(f);
	if (buf_append(&b, "", 1) < 0) {
		buf_free(&b);
		snprintf(err, errlen, "%s: too large", path);
		return NULL;
	}
	return (char *)b.p;
}

int listener_parse_addr(const char *listen, struct sockaddr_storage *ss,
			char *err, size_t errlen)
{
	struct addrinfo hints, *res;
	char host[256];
	const char *colon = strrchr(listen, ':');
	size_t n;
	int rc;

	if (colon == NULL) {
		snprintf(err, errlen, "listen %s: want host:port", listen);
		return -1;
	}
	n = (size_t)(colon - listen);
	if (n >= sizeof(host))
		n = sizeof(host) - 1;
	memcpy(host, listen, n);
	host[n] = '\0';
	if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
		memmove(host, host + 1, n - 2);
		host[n - 2] = '\0';
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	rc = getaddrinfo(host[0] ? host : NULL, colon + 1, &hints, &res);
	if (rc != 0) {
		snprintf(err, errlen, "listen %s: %s", listen, gai_strerror(rc));
		return -1;
	}
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	freeaddrinfo(res);
	return 0;
}
