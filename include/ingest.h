/*
 * ingest.h - from a request body to a batch the writer can store.
 *
 * Checks snappy's stated decoded length against the limit before it
 * allocates, decodes, validates with the wire scanner (setting the tenant
 * label when asked, and writing each series into its delivery lane,
 * lanes.h), and leaves compressed chunks of whole series of one lane
 * each, at most [upstream] max_request_size decoded. When nothing was
 * rewritten, the request is small enough and all of it is in one lane (one
 * target's series, most often), the body as received is the chunk:
 * nothing is compressed again. An empty request leaves no chunk.
 */
#ifndef RELAY_INGEST_H
#define RELAY_INGEST_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "config.h"
#include "wire.h"
#include "batch.h"
#include "relabel_pass.h"

struct ingest_req {
	const char *tenant;        /* ref: tenant id, "" for none */
	size_t tlen;
	const char *tenant_label;  /* ref: label to set, NULL: leave labels */
	void (*on_series)(void *arg, uint64_t hash); /* may be NULL */
	void *arg;                 /* of on_series and admit */
	/* The per-series policies (admission.h), run over the decoded
	 * request before it is scanned and the tenant label set; returns 0
	 * to go on, or an HTTP status when it refused the request (its
	 * caller holds why). It may set *drop_label to a label to remove
	 * from every series (HA's replica label; a string that outlives the
	 * call). May be NULL: no pass. */
	int (*series_pass)(void *arg, const uint8_t *raw, size_t len,
			   const char **drop_label);
	void *pass_arg;
	const struct config_tenant *conf; /* ref: its [tenant] section, whose
				    * label limits override [limits]; or NULL */
	/* Whether each series is taken (wire.h, wire_opts.admit); may be
	 * NULL. Refused series are left out of the batch and counted in
	 * counts->refused_*; ingest_body still returns 0 (when every series
	 * was refused, counts->series is 0 and the caller stores nothing). */
	int (*admit)(void *arg, uint64_t hash);
	/* Relabel rules for the series (relabel_pass.h), or NULL: none. */
	const struct relabel_pass *relabel;
};

/*
 * Reads the stated decoded length of a snappy body. Returns 0, or an HTTP
 * status (400 corrupt, 413 over max_decoded_size) with a reason in why.
 */
int ingest_check_length(const struct config *cfg, const uint8_t *body,
			size_t len, uint64_t *decoded, char *why, size_t whylen);

/*
 * Turns body into b's chunks and counts it in *counts. body is the
 * compressed request; ingest may take its storage (body->p is NULL then).
 * Returns 0, or an HTTP status (400, 413, 415; 503 out of memory) with a
 * one-line reason in why (empty when r->series_pass refused); b then
 * holds nothing. When the decoded request is refused, *counts holds what
 * was decoded before the fault: the whole top-level fields (series,
 * metadata) that are valid on their own, up to the first that is not.
 */
int ingest_body(const struct config *cfg, const struct ingest_req *r,
		struct buf *body, struct batch *b, struct wire_counts *counts,
		uint64_t *decoded, char *why, size_t whylen);

/* Frees this thread's scratch buffers. */
void ingest_thread_cleanup(void);

#endif
