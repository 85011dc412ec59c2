/*
 * store.h - the durable buffer: an LMDB environment in [storage] path.
 *
 * On-disk format, version 1 (STORE_FORMAT). Named databases:
 *
 *   meta      "format" -> u32 STORE_FORMAT; "next_seq" -> u64
 *   queue     key: tenant id bytes, 0x00, u64 big-endian sequence number
 *             (so one tenant's entries are adjacent and oldest first)
 *             value: struct entry_hdr, then one snappy block
 *   setaside  same key; value: struct setaside_hdr, the upstream's reason,
 *             then the queue value as it was
 *   dedup     empty; earlier versions kept digest -> time here, and
 *             dedup_open empties it
 *   dedup_time key: u64 big-endian ms when the request was stored, then
 *             the SHA-256 of tenant id, 0x00, request body; empty value
 *             (a resend within the window is not stored again; dedup.h)
 *   usage, usage_hll  see usage.h
 *
 *   queue value:
 *   +---------+-------+----------+---------+-----------------------------+
 *   | version | flags | reserved | raw_len | created_ms                  |
 *   |  u8 (1) |  u8   |   u16    |   u32   |   u64                       |
 *   +---------+-------+----------+---------+-----------------------------+
 *   | series u32 | samples u32 | histograms u32 | exemplars u32 |        |
 *   | metadata u32 | requests u32 |                                      |
 *   +-----------------------------------------------------------------  -+
 *   | snappy block: varint32 raw_len, elements  (raw_len decoded bytes    |
 *   | of a prometheus.WriteRequest, ready to send upstream as it is)      |
 *   +---------------------------------------------------------------------+
 *
 * Integers are little-endian. An entry holds one or more acknowledged
 * requests of one tenant, merged when they were committed together. The
 * block is the request body the forwarder sends (several entries are merged
 * again, without recompressing; see sblock.h).
 *
 * Changing the layout: bump STORE_FORMAT and teach store_open to read or
 * convert the old one; never reuse a version number.
 *
 * Threads: one writer thread owns every write transaction (writer.h);
 * readers use short read transactions (MDB_NOTLS, so any thread may); a
 * forwarder's lasts one upstream request (struct store_body).
 */
#ifndef RELAY_STORE_H
#define RELAY_STORE_H

#include <lmdb.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "config.h"
#include "sblock.h"

#define STORE_FORMAT 1
#define STORE_KEY_MAX (TENANT_ID_MAX + 1 + 8)

struct entry_hdr {
	uint8_t version;
	uint8_t flags;
	uint16_t reserved;
	uint32_t raw_len;
	uint64_t created_ms;
	uint32_t series;
	uint32_t samples;
	uint32_t histograms;
	uint32_t exemplars;
	uint32_t metadata;
	uint32_t requests;
};

struct setaside_hdr {
	uint32_t status;       /* upstream's HTTP status */
	uint32_t reason_len;   /* bytes of reason after this header */
	uint64_t set_aside_ms;
};

_Static_assert(sizeof(struct entry_hdr) == 40, "entry_hdr layout");
_Static_assert(sizeof(struct setaside_hdr) == 16, "setaside_hdr layout");
#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "store.h: the on-disk format is written by little-endian hosts only"
#endif

struct store {
	MDB_env *env;
	MDB_dbi meta;
	MDB_dbi queue;
	MDB_dbi setaside;
	MDB_dbi dedup;
	MDB_dbi dedup_time;
	MDB_dbi usage;
	MDB_dbi usage_hll;
	uint64_t max_size;
	uint64_t next_seq;    /* writer's: next sequence number to assign */
	unsigned page_size;
	int lock_fd;          /* flock on PATH/relay.lock; -1 if none */
};

/* Totals of entries read or removed. */
struct store_span {
	uint64_t first_seq, last_seq;
	uint64_t entries;
	uint64_t bytes;       /* value bytes */
	uint64_t raw;         /* decoded bytes */
	uint64_t series, samples, histograms, exemplars;
	uint64_t created_ms;  /* of the first entry */
};

/*
 * Opens (creating path 0700 if missing; an existing one is checked, never
 * chmod'ed, and a damaged data file refused: store_check.h) the
 * environment, holding an
 * exclusive lock on PATH/relay.lock so that one process at a time writes
 * it. Clears reader slots left by dead processes. Returns 0, or -1 with a
 * reason in err.
 */
int store_open(struct store *st, const char *path, uint64_t max_size,
	       char *err, size_t errlen);

/* Opens an existing environment to read only, without the lock (safe
 * beside a running relay). Returns 0, or -1 with a reason in err. */
int store_open_readonly(struct store *st, const char *path, char *err,
			size_t errlen);
void store_close(struct store *st);

/* Takes PATH/relay.lock. Returns its fd, -2 if another process holds it,
 * or -1 if it cannot be taken (no directory, ...). */
int store_lock(const char *path);
void store_unlock(int fd);

/* Fills q with what the queue database holds. Returns 0 or -1. */
struct queue;
int store_load_queue(struct store *st, struct queue *q);

/* Writes the key for (tenant, seq) into key (STORE_KEY_MAX bytes); returns
 * its length. */
size_t store_key(uint8_t *key, const char *tenant, size_t tlen, uint64_t seq);

/* Splits a key; returns 0, or -1 if it is not a queue key. */
int store_key_parse(const MDB_val *k, const char **tenant, size_t *tlen,
		    uint64_t *seq);

/*
 * Writer: stores one entry whose block is the merge of parts. hdr's
 * raw_len is set here. Returns 0 or an LMDB error code.
 */
int store_put_entry(MDB_txn *txn, struct store *st, const char *tenant,
		    size_t tlen, uint64_t seq, struct entry_hdr *hdr,
		    const struct sblock_part *parts, size_t nparts,
		    uint64_t *value_bytes);

/*
 * Writer: deletes the tenant's entries with first <= seq <= last, adding
 * what it removed to *gone; *next (entries = 0 if none) describes the
 * tenant's oldest entry left, wherever it is. Returns 0 or an LMDB error
 * code.
 */
int store_delete_range(MDB_txn *txn, struct store *st, const char *tenant,
		       size_t tlen, uint64_t first, uint64_t last,
		       struct store_span *gone, struct store_span *next);

/* Writer: moves one entry into setaside with the upstream's answer,
 * adding it to *gone; *next describes the tenant's oldest entry left, as
 * in store_delete_range. Returns 0, MDB_NOTFOUND (no such entry), or an
 * LMDB error code. */
int store_set_aside(MDB_txn *txn, struct store *st, const char *tenant,
		    size_t tlen, uint64_t seq, long status, const char *reason,
		    struct store_span *gone, struct store_span *next);

/* Writer: records next_seq in meta. Returns 0 or an LMDB error code. */
int store_put_next_seq(MDB_txn *txn, struct store *st);

/* Most entries one request body merges. */
#define STORE_BODY_MAX_ENTRIES 256

/*
 * One upstream request body left where its entries lie in the map: a read
 * transaction, and for each entry its snappy block's elements (after the
 * 40-byte entry header and the block's own preamble), read behind one
 * merged preamble by stream.
 *
 * Holding the transaction while the body is sent is safe: the entries
 * being delivered are deleted only after the upstream acknowledged them,
 * and in any case a read transaction keeps its snapshot's pages as they
 * were. It is not free, though: while a reader is open LMDB cannot reuse
 * the pages freed by commits after its snapshot, so the file grows with
 * every write while it lasts. The caller therefore holds it for one
 * request only (bounded by [upstream] timeout) and releases it promptly.
 */
struct store_body {
	MDB_txn *txn;        /* owned; NULL when nothing is held */
	struct sblock_part elements[STORE_BODY_MAX_ENTRIES]; /* ref: the map */
	struct sblock_stream stream;
};

/*
 * Forwarder: sets body to the one snappy block merging the tenant's
 * entries with seq <= their sequence number <= max_seq, oldest first, as
 * long as the decoded total stays within max_raw (at least one entry) and
 * at most max_entries (at most STORE_BODY_MAX_ENTRIES). An entry whose
 * header is unreadable travels alone. span describes them; span->entries
 * is 0 if there were none. body->stream reads the block from the map (its
 * length is body->stream.len); nothing is copied.
 *
 * Returns 0, with a read transaction held in body that the caller ends
 * with store_body_release as soon as the request is done (nothing is held
 * when span->entries is 0). Returns -1, holding nothing, when the store
 * cannot be read, an entry's block is malformed or the merged decoded
 * length passes SBLOCK_MAX_RAW.
 */
int store_body_open(struct store *st, const char *tenant, size_t tlen,
		    uint64_t seq, uint64_t max_seq, uint64_t max_raw,
		    uint64_t max_entries, struct store_body *body,
		    struct store_span *span);

/* Ends body's read transaction; its parts are not to be read after this.
 * Does nothing when nothing is held. */
void store_body_release(struct store_body *body);

/*
 * The block store_body_open describes, appended to body (bounded as body
 * is), with the transaction released before returning. Returns 0 or -1
 * (store_body_open's failures, or body's bound).
 */
int store_read_batch(struct store *st, const char *tenant, size_t tlen,
		     uint64_t seq, uint64_t max_seq, uint64_t max_raw,
		     uint64_t max_entries, struct buf *body,
		     struct store_span *span);

/* Reads an entry header from a value; returns 0, or -1 if malformed. */
int store_entry_hdr(const MDB_val *v, struct entry_hdr *hdr);

/* Bytes of the pages the databases use now (branch, leaf and overflow
 * pages of every database), as the transaction sees them. */
uint64_t store_used_bytes(MDB_txn *txn, struct store *st);

/* Bytes a value of n bytes takes on disk, at most (whole pages when it
 * overflows a leaf page). */
uint64_t store_value_footprint(struct store *st, uint64_t n);

/* "No space", "map full" ... for an LMDB or errno code. */
const char *store_strerror(int rc);

#endif
