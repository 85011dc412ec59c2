/*
 * lanes.h - delivery lanes: catch-up that keeps each series in order and
 * still sends in parallel.
 *
 * The problem. A backlog drained one request at a time per tenant keeps
 * every series in order but uses one core of the upstream; several
 * requests of a tenant in flight at once drain faster but may deliver a
 * series' newer samples before its older ones, which an upstream that
 * refuses out-of-order samples (Prometheus, Mimir) answers with 400.
 *
 * The design. Every series is put in one of LANES lanes by a hash of its
 * labels as stored (wire.c, lane_hash): of the value of its instance
 * label, or of its metric name when it has none, or of its whole final
 * label set (the hash the usage sketches count) when it has neither; lane
 * = the top three bits (lanes_of). Hashing the instance keeps one
 * target's series, which a request carries side by side, together: each
 * lane's block then compresses as well as the request did (hashing every
 * label scattered them, and the buffer took 1.67x the bytes of the bodies
 * as sent; by metric name and instance, 1.38x; by instance, 1.02x), and a
 * request of one target is stored as it came. A lane is a
 * totally ordered queue: within a lane the entries go upstream in
 * sequence order with at most one request in flight; different lanes hold
 * disjoint series, so they go in parallel and a series' samples still
 * arrive in the order they were accepted, whatever the senders did.
 *
 *   ingest     a request's series are written into per-lane outputs and
 *              compressed per lane: its chunks carry a lane (batch.h);
 *   writer     one entry per tenant and commit round (entries.h), holding
 *              a lane table and one snappy block per non-empty lane (entry
 *              version 2, store.h): one LMDB value, not one per lane (an
 *              overflow value wastes about half a page);
 *   forwarder  a job is (tenant, lane) (queue.h): it merges the lane's
 *              blocks of many consecutive entries into one request without
 *              recompressing (sblock.h); entries without content in the
 *              lane are passed over;
 *   cursors    each (tenant, lane) has "delivered through seq", written in
 *              the transaction that records the upstream's answer (the
 *              lanes database, store.h), so that a restart (SIGTERM or
 *              kill -9) does not send again what a lane delivered; an entry
 *              is deleted once every lane with content in it is through it
 *              (in that transaction, or past its budget a later one:
 *              store.h, "Deleting what was delivered").
 *
 * Entries of version 1 (written before lanes) hold one block and no table:
 * they read as a table of one part in lane 0. They are all older than any
 * version 2 entry of their tenant, and lane 0 delivers them whole, in
 * order, while the other lanes wait until the tenant has none left.
 *
 * The lane function is part of the on-disk format: a stored entry's lanes
 * were chosen by it, and the cursors count on the same series staying in
 * the same lane. Never change it (nor the hash in wire.c) without a new
 * entry version.
 *
 * Pure functions: no LMDB here (store_queue.c and store_lanes.c use them).
 */
#ifndef RELAY_LANES_H
#define RELAY_LANES_H

#include <stddef.h>
#include <stdint.h>

#define LANES 8

/* The lane of a series whose label hash (wire.c) is h: its top 3 bits. */
static inline unsigned lanes_of(uint64_t h)
{
	return (unsigned)(h >> 61);
}

/* A run of a decoded request's top-level fields that all went to one
 * lane (wire.h's lane_runs): it starts where the run before it ends (the
 * first at 0) and ends before byte end. A decoded request is below 4 GiB
 * (snappy's preamble is a varint32). */
struct lane_run {
	uint32_t end;
	uint32_t lane;
};

/* The runs of one request, in order; grown by wire_scan. */
struct lane_runs {
	struct lane_run *run;    /* owned by whoever set it up */
	size_t n, cap;
};

/*
 * One record of a version 2 entry's lane table (little-endian, 20 bytes):
 *   +---------+----------+-----------+---------+---------+--------+
 *   | lane u8 | zero[3]  | block_len | raw_len | samples | series |
 *   |         |          |    u32    |   u32   |   u32   |  u32   |
 *   +---------+----------+-----------+---------+---------+--------+
 * Records are in ascending lane order, one per non-empty lane; the blocks
 * follow the table in the same order, each a whole snappy block
 * (preamble included) of block_len bytes decoding to raw_len bytes.
 */
struct lane_rec {
	uint8_t lane;
	uint8_t zero[3];
	uint32_t block_len;
	uint32_t raw_len;
	uint32_t samples;
	uint32_t series;
};

_Static_assert(sizeof(struct lane_rec) == 20, "lane_rec layout");

/* One lane's part of an entry, as read. */
struct lane_part {
	unsigned lane;
	const uint8_t *block;    /* ref: whole snappy block, preamble included */
	size_t len;
	uint32_t raw_len, samples, series;
};

/* An entry's parts: n of them, in ascending lane order. */
struct lane_table {
	unsigned n;
	unsigned mask;           /* bit L set: lane L has a part */
	struct lane_part part[LANES];
};

/*
 * Reads the lanes of a queue value v[0..len) whose 40-byte entry header
 * (store.h) says version (1 or 2), nlanes, raw_len, samples and series.
 * Version 1: one part in lane 0, the whole block. Version 2: checks the
 * table within len (1..LANES records, lanes ascending and below LANES,
 * zero bytes zero, block lengths that add up to the value's end, each
 * block's preamble stating its raw_len, and the sums of raw_len, samples
 * and series equal to the header's). Returns 0 with t filled, or -1 when
 * anything is out of place.
 */
int lanes_parse(const uint8_t *v, size_t len, unsigned version,
		unsigned nlanes, uint32_t raw_len, uint32_t samples,
		uint32_t series, struct lane_table *t);

/*
 * lanes_parse without looking at the blocks: the table alone (for version
 * 1, the header alone), so that reading one lane's part of an entry does
 * not touch the pages of the other lanes' blocks. Delivery reads entries
 * this way and checks only the part it sends, with lanes_part_ok.
 */
int lanes_table(const uint8_t *v, size_t len, unsigned version,
		unsigned nlanes, uint32_t raw_len, uint32_t samples,
		uint32_t series, struct lane_table *t);

/* 1 if p's block is there and its preamble states p->raw_len, else 0. */
int lanes_part_ok(const struct lane_part *p);

/* The part of lane in t, or NULL when the entry has none. */
const struct lane_part *lanes_find(const struct lane_table *t, unsigned lane);

#endif
