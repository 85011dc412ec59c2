/*
 * wire.h - the Remote Write 1.0 scanner: one pass over a decoded (not
 * compressed) prometheus.WriteRequest that validates it, counts it, and
 * writes a copy with the tenant label set on every series.
 *
 * It allocates nothing per label: the output goes straight into a caller's
 * bounded buffer, and fields other than a series' labels are copied byte for
 * byte (sample doubles keep their exact bits, stale-marker NaNs included).
 * The protobuf-c code generated from proto/ is the reference decoder that
 * the tests hold this scanner against.
 */
#ifndef RELAY_WIRE_H
#define RELAY_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

enum wire_result {
	WIRE_OK = 0,
	WIRE_BAD = -1,      /* malformed or against the spec: 400 */
	WIRE_V2 = -2,       /* a Remote Write 2.0 body (fields 4/5): 415 */
	WIRE_TOO_LARGE = -3, /* the output passed out->max: 413 */
	WIRE_NOMEM = -4      /* memory is short for the scanner's own arrays: 503 */
};

struct wire_counts {
	uint64_t series;     /* TimeSeries messages */
	uint64_t samples;    /* Sample messages */
	uint64_t histograms; /* native Histogram messages */
	uint64_t exemplars;  /* Exemplar messages */
	uint64_t metadata;   /* MetricMetadata messages */
	uint64_t sorted;     /* series whose labels came out of order */
	/* Series that opts.admit refused, and their Sample messages: not in
	 * the output, nor in the counts above. */
	uint64_t refused_series;
	uint64_t refused_samples;
	/* Series the relabel hook dropped, and their samples and histograms;
	 * they are in none of the counts above. */
	uint64_t series_dropped;
	uint64_t samples_dropped;
	/* Series the relabel hook left invalid (refused), and their samples
	 * and histograms; they are in none of the counts above either. */
	uint64_t invalid_series;
	uint64_t invalid_samples;
};

struct relabel_label;
struct relabel_cache;
struct lane_runs;

struct wire_opts {
	/* Label to set on every series, or NULL to leave labels as sent. */
	const char *tenant_label;
	const char *tenant_value;
	/* Label to remove from every series that has it (HA's replica
	 * label, ha.h), or NULL. Never the tenant label. */
	const char *drop_label;
	/* Bounds; 0 means none. */
	size_t max_labels_per_series;
	size_t max_label_name_length;
	size_t max_label_value_length;
	/* Called once per series with a 64-bit hash of its final label set
	 * (after the tenant label is set); may be NULL. */
	void (*on_series)(void *arg, uint64_t hash);
	/* Called once per series with that hash, before on_series, when out
	 * is not NULL (the copy is then a rewrite); returns 0 to keep the
	 * series, or 1 to leave it out of the copy (counted in
	 * wire_counts.refused_*, on_series not called). May be NULL. */
	int (*admit)(void *arg, uint64_t hash);
	void *arg;            /* of on_series and admit */
	/* Delivery lanes (lanes.h), or NULL: when set, the rewritten copy
	 * goes to lane_out[0..LANES) instead of out: each series to its lane
	 * (lanes_of a hash of its instance label, else of its metric name,
	 * else of its final label set; see lanes.h), every other top-level
	 * field to lane 0, and lane_counts[l] (when not NULL) counts what
	 * went to lane l. A series' lane depends on its final label set
	 * only; it is part of the store's format (store.h). lane_out[0].max
	 * bounds the sum of the lanes (WIRE_TOO_LARGE past it). */
	struct buf *lane_out;
	struct wire_counts *lane_counts;
	/* Or, without lane_out and without a rewrite (out NULL, no tenant
	 * or drop label, no admit, no relabel hook): the lane of each
	 * top-level field, as lane_out would have put it, appended to
	 * *lane_runs as runs of adjacent fields in one lane (lanes.h); the
	 * caller cuts the request by them (ingest.c, sblock_prefix.h). A request with
	 * a series out of order (wire_counts.sorted) is not as sent: it must
	 * be scanned again with lane_out. lane_counts as above. */
	struct lane_runs *lane_runs;
	/* Relabel hook (relabel.h), or NULL. Called once per series with its
	 * labels as sent (checked, sorted) in ls[0..*n), with room for cap;
	 * it may rewrite them (its strings must stay valid until its next
	 * call or the end of wire_scan). Returns 0 keep, 1 drop the series
	 * (not written; counted in series_dropped and samples_dropped), or an
	 * ERR_* code. The labels it leaves are held to the same checks as the
	 * labels sent, and a series that had a __name__ must keep one: a
	 * series that fails them, or that would need more than cap labels
	 * (ERR_FULL), is refused alone: left out, counted in invalid_series
	 * and invalid_samples, the first one's reason kept in why (see
	 * wire_scan). Another ERR_* code refuses the request (ERR_NOMEM:
	 * WIRE_TOO_LARGE). None left drops the series. Runs before drop_label
	 * and the tenant label. */
	int (*relabel)(void *arg, struct relabel_label *ls, size_t *n,
		       size_t cap);
	void *relabel_arg;
	/* With relabel, a cache of its results (relabel_cache.h), or NULL:
	 * a series whose labels came sorted, in canonical encoding, side by
	 * side, is looked up by those bytes in relabel_scope; a hit stands
	 * for the hook and the checks of what it left (dropped, or the final
	 * labels), a miss runs them and remembers a keep or a drop (not a
	 * refusal). The hook's result must depend only on the labels and
	 * relabel_scope, as must the limits above. */
	struct relabel_cache *relabel_cache;
	const void *relabel_scope;
};

/*
 * Scans the decoded WriteRequest in[0..len) and, when out is not NULL,
 * appends the rewritten request to out. Counts are added to *c (which may
 * be NULL) when the request is accepted. The copy is rewritten (tenant
 * label set, drop_label removed) when either option is given; otherwise it
 * is the request as it came.
 * Returns WIRE_OK or a negative wire_result; on failure a one-line reason
 * (no newline, e.g. "series 3: labels not sorted: \"job\" after \"zone\"")
 * is in why and out holds a partial result the caller must discard. On
 * WIRE_OK why is empty, or holds the reason the first series the relabel
 * hook left invalid was refused for (c->invalid_series > 0).
 *
 * Checks: well-formed protobuf (varints, lengths, wire types of known
 * fields, packed or unpacked repeated scalars); each series has at least one
 * label; label names match [a-zA-Z_][a-zA-Z0-9_]*, are unique and
 * non-empty; values are non-empty valid UTF-8; a __name__ value matches
 * [a-zA-Z_:][a-zA-Z0-9_:]*; the opts bounds.
 *
 * Labels out of order (the spec wants them sorted by name; some senders do
 * not sort) are sorted in the copy and counted in wire_counts.sorted; a
 * request that holds such a series is then rewritten even when nothing
 * else asks for it (when out is NULL there is no copy: the caller that
 * needs one scans again with out). Sorted input pays nothing for this:
 * the order check was there before.
 */
int wire_scan(const uint8_t *in, size_t len, const struct wire_opts *o,
	      struct wire_counts *c, struct buf *out, char *why, size_t whylen);

/*
 * Returns the offset just past the top-level field that starts at off in a
 * WriteRequest that wire_scan accepted (used to cut a request into chunks
 * at series boundaries), or 0 when off is not at a field.
 */
size_t wire_next_field(const uint8_t *in, size_t len, size_t off);

/* Reads a protobuf varint (at most 10 bytes) at *p, before end, and
 * advances *p past it. Returns 0, or -1 when it is truncated or too long. */
int wire_varint(const uint8_t **p, const uint8_t *end, uint64_t *out);

/*
 * Frees the calling thread's scratch, which wire_scan keeps between calls
 * once it met a series with many labels (more than 64, or over 2 KiB).
 * Call it before a thread that ran wire_scan exits; wire_scan may be
 * called again afterwards.
 */
void wire_scratch_free(void);

#endif
