/*
 * http_int.h - what the HTTP transport (http.c) and its write path
 * (http_write.c) share: the server's state and the write route's entry
 * points. Nothing else includes it; the interface is http.h.
 */
#ifndef RELAY_HTTP_INT_H
#define RELAY_HTTP_INT_H

#include <microhttpd.h>
#include <stdatomic.h>
#include <stddef.h>

#include "admission.h"
#include "conn_guard.h"
#include "http.h"

struct http {
	struct http_deps d;
	struct MHD_Daemon *daemon;
	struct admission adm;           /* owned: who may write what */
	struct conn_guard *guard;       /* owned: connection deadlines */
	_Atomic long waiting;           /* requests handed to the writer */
	struct MHD_Response *stored;    /* owned: the 204 every stored write
					 * gets, made once */
	char *tls_cert, *tls_key, *tls_ca; /* owned: PEM text */
};

/* POST /api/v1/write: Remote Write 1.0. Called for each piece of the
 * request, as libmicrohttpd's access handler; keeps the request's state
 * (owned) in *con_cls. */
enum MHD_Result http_write_handle(struct http *h, struct MHD_Connection *conn,
				  const char *method, const char *upload,
				  size_t *upload_size, void **con_cls);
/* The connection is done with the write request req (from *con_cls):
 * frees it and what it holds. */
void http_write_end(void *req);

#endif
