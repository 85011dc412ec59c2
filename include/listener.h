/*
 * listener.h - where and how the HTTP server listens: the [server] listen
 * address, the TLS certificate and key, and the client certificates that
 * [server] tls_client_ca asks for. http.c uses these; they hold no state.
 */
#ifndef RELAY_LISTENER_H
#define RELAY_LISTENER_H

#include <stddef.h>
#include <sys/socket.h>
#include <microhttpd.h>

/* Parses "host:port" ("[v6]:port", ":port" for any address) into ss.
 * Returns 0, or -1 with the reason in err. */
int listener_parse_addr(const char *listen, struct sockaddr_storage *ss,
			char *err, size_t errlen);

/* Reads a PEM file (at most 1 MiB) as a NUL-terminated string the caller
 * frees. Returns NULL with the reason in err. */
char *listener_read_pem(const char *path, char *err, size_t errlen);

/*
 * With [server] tls_client_ca, libmicrohttpd asks for a client certificate
 * but does not insist: checks that one was shown and that it verifies
 * against that CA. Returns 1 if the request may go on, 0 if not.
 */
int listener_client_cert_ok(struct MHD_Connection *conn);

#endif
