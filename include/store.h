/*
 * store.h - the durable buffer: an LMDB environment in [storage] path.
 *
 * The store is the only code that knows the layout below: the rest of the
 * relay holds a closed struct store and calls the operations in this
 * header (the insides are in store_int.h, for store*.c only). Files:
 * store.c (open, format check, transactions), store_queue.c (entries),
 * store_tail.c (entries' tails),
 * store_lanes.c (delivery cursors), store_setaside.c, store_dedup.c,
 * store_usage.c, store_dest.c, store_ha.c, store_series.c.
 *
 * On-disk format, version 6 (STORE_FORMAT). Named databases:
 *
 *   meta      "format" -> u32 STORE_FORMAT; "next_seq" -> u64;
 *             "usage_format" -> u32 USAGE_FORMAT (usage.h)
 *   queue     key: tenant id bytes, 0x00, u64 big-endian sequence number
 *             (so one tenant's entries are adjacent and oldest first)
 *             value: struct entry_hdr, a lane table, one snappy block per
 *             lane (version 2; version 1: the header and one block), or
 *             of such a value its head when it has a tail (below)
 *   tails     key: u64 big-endian sequence number, chunk u8 (0, 1, 2),
 *             tenant id bytes; value: the next bytes of the queue value
 *             (tenant, seq) after its head and the chunks before. An
 *             entry's tail: see "Heads and tails" below.
 *   lanes     key: tenant id bytes, 0x00, u64 big-endian lane number
 *             (0..STORE_LANES-1); value: u64 "delivered through": the
 *             lane's parts of the tenant's entries up to that sequence
 *             number went upstream (or were set aside). Written in the
 *             transaction that records the upstream's answer; an entry is
 *             deleted once every lane with a part in it is through it, in
 *             that transaction or, past its budget, a later one (see
 *             "Deleting what was delivered" below).
 *             A missing record is 0. Records below the tenant's first
 *             entry are harmless (eviction leaves them).
 *   setaside  same key; value: struct setaside_hdr, the upstream's reason,
 *             then the queue value as it was
 *   dedup     empty (format 1 kept digest -> time here)
 *   dedup_time key: u64 big-endian ms when the request was stored, then
 *             the SHA-256 of tenant id, 0x00, request body; empty value
 *             (a resend within the window is not stored again; dedup.h)
 *   usage, usage_hll  key: tenant id, 0x00, u64 big-endian hour; values
 *             are the usage module's (usage.h, USAGE_FORMAT); in usage,
 *             the hour STORE_USAGE_CARRIED (all ones) keys a tenant's
 *             carried record (usage format 4 on)
 *   dest      key: tenant id, 0x00, u64 big-endian first sequence number;
 *             value: struct store_dest as below. Where the tenant's
 *             entries from that sequence number on (up to the next
 *             record's) go: the account and project ids the tenant had
 *             when they were accepted. The writer adds one in the
 *             transaction of an entry whose ids differ from the tenant's
 *             latest record; records no queued or set-aside entry needs
 *             any more are deleted with the entries, but for the
 *             tenant's latest (so that one whose ids do not change adds
 *             no record while its buffer drains and fills). An entry below the
 *             tenant's first record (written by format 2) has none and
 *             goes where the configuration in force says.
 *   ha        key: tenant id, 0x00, cluster (the HA cluster label's value)
 *             value: struct ha_hdr, then the elected replica's value
 *             (ha.h). Added without a format change: a store without it
 *             gets it when opened writable; an older relay ignores it.
 *   series    key: tenant id, 0x00, u64 big-endian series hash (the hash
 *             of the series' labels as stored, wire.h); value: struct
 *             store_series_rec below. The series a tenant with [tenant]
 *             max_series sent, with when each was last seen (written
 *             with the batch that added it, then again at most every
 *             quarter of the window; series_limit.h). A record whose
 *             seen_ms + window_ms has passed is expired: deleted a few
 *             hundred at a time by every commit round, never loaded.
 *
 *   queue value, entry version 2 (STORE_ENTRY_VERSION):
 *   +---------+-------+--------+---------+--------------------------------+
 *   | version | flags | nlanes | raw_len | created_ms                     |
 *   |  u8 (2) |  u8   |  u16   |   u32   |   u64                          |
 *   +---------+-------+--------+---------+--------------------------------+
 *   | series u32 | samples u32 | histograms u32 | exemplars u32 |         |
 *   | metadata u32 | requests u32 |                                       |
 *   +---------------------------------------------------------------------+
 *   | lane table: nlanes (1..8) records of 20 bytes, lanes ascending:     |
 *   | lane u8, zero u8[3], block_len u32, raw_len u32, samples u32,       |
 *   | series u32 (lanes.h, struct lane_rec)                               |
 *   +---------------------------------------------------------------------+
 *   | the lanes' snappy blocks, in table order: each varint32 raw_len,    |
 *   | elements (a prometheus.WriteRequest of the lane's series, ready to  |
 *   | send upstream as it is)                                             |
 *   +---------------------------------------------------------------------+
 *   The header's raw_len, series and samples are the sums of the table's.
 *   flags: bit 0 (STORE_ENTRY_TAIL) the value has a tail; other bits 0.
 *
 *   Heads and tails (format 6). LMDB stores a value larger than a leaf
 *   node in a run of overflow pages of its own: k pages hold exactly
 *   k * page_size - 16 bytes, and the rest of the last page is wasted
 *   (half a page per entry on average, about 2% of the buffer). So a
 *   version 2 value of len bytes (len + 16 >= page_size) may be cut
 *   (store_tail.c): its first head = floor((len + 16) / page_size) *
 *   page_size - 16 bytes, whole pages exactly filled, are the queue
 *   record, with STORE_ENTRY_TAIL set; the other len - head bytes (the
 *   tail, under a page) are one to three records of the tails database
 *   (chunks 0, 1, 2), each small enough to stay in a leaf page (LMDB's
 *   node limit: 8 + key + value <= (page_size - 16) / 2 - 2): chunk 0
 *   fills what the database's last leaf page has left (smaller than the
 *   limit when little is left), the rest take the limit each. A value is
 *   kept whole when nothing is past whole pages or its last page is
 *   nearly full (the tail would not fit in two records of the limit).
 *   The head holds the header and the lane
 *   table (a head is at least page_size - 16 bytes), so len is known
 *   from the head alone: the header, the table and the blocks the table
 *   lists. A reader joins head and tail records where it reads blocks
 *   that pass the head (the forwarder copies only such a lane's block);
 *   deleting an entry deletes its tail records; set-aside values are
 *   whole (STORE_ENTRY_TAIL clear), but for the head of an entry whose
 *   tail was lost, kept as it is (read as unreadable: set-aside values
 *   are read within their length, store_entry_read). A queue record
 *   with the flag that is not shorter than its table says is read as
 *   whole. The tail keys begin
 *   with the sequence number (numbers grow across tenants) so that a new
 *   tail is appended at the end of the tree (MDB_APPEND): full leaf
 *   pages.
 *   Version 1 (format 3 and before): nlanes 0, no table, one block; it
 *   reads as one part in lane 0 (lanes.h).
 *
 *   The lane of a series: the top 3 bits of a 64-bit hash wire.c takes
 *   of its instance label's value (else its metric name, else its final
 *   label set; lanes.h, wire.c lane_hash). Part of this format: a change
 *   needs a new entry version.
 *
 *   dest value:
 *   +------------+------------+------------------+------------------+
 *   | acct_len u8| proj_len u8| account_id bytes | project_id bytes |
 *   +------------+------------+------------------+------------------+
 *   (each at most STORE_DEST_ID_MAX bytes; length 0: the tenant had none)
 *
 *   series value (struct store_series_rec):
 *   +-------------------+-------------------+
 *   | seen_ms u64       | window_ms u64     |
 *   +-------------------+-------------------+
 *   (seen_ms: wall-clock ms when it was last seen, as clock_age_now_ms
 *   says; window_ms: the tenant's max_series_window then)
 *
 *   setaside value:
 *   +-----------+---------------+--------------+--------+-------------+
 *   | status u32| reason_len u32| set_aside_ms | reason | queue value |
 *   |           |               |     u64      |        | (as above)  |
 *   +-----------+---------------+--------------+--------+-------------+
 *
 * Integers are little-endian unless said otherwise. An entry holds one or
 * more acknowledged requests of one tenant, merged when they were
 * committed together, their series sorted into lanes. A lane's block is a
 * request body the forwarder sends (the same lane's blocks of several
 * entries are merged again, without recompressing; see sblock.h and
 * lanes.h).
 *
 * Versions. STORE_FORMAT covers the databases and keys; the entry header
 * has its own (STORE_ENTRY_VERSION, in every queue value), the usage
 * records theirs (USAGE_FORMAT in meta, and in each record). When a
 * meaning changes, bump the number (never reuse one) and teach store_open
 * to convert the older layout or to refuse it with a message that says
 * what to do. store_open checks them all:
 *   format 1 -> 2  the dedup database held digest -> time records that
 *                  nothing reads now: it is emptied, format becomes 2.
 *   format 2 -> 3  the dest database is created, empty: the entries
 *                  already buffered have no record and go where the
 *                  configuration says, as format 2 sent them.
 *   format 3 -> 4  the series database is created, empty: the tenants'
 *                  series counts (max_series) start from nothing. Nothing
 *                  else changed: a relay of format 3 cannot open it (it
 *                  refuses a newer format), a reader of format 4 reads a
 *                  format 3 directory as it is.
 *   format 4 -> 5  the lanes database is created, empty. The entries
 *                  already buffered are of version 1, older than any
 *                  written after: lane 0 delivers them whole, in order,
 *                  and the other lanes wait until the tenant has none.
 *   format 5 -> 6  the tails database is created, empty. The entries
 *                  already buffered are whole (their flag clear) and read
 *                  as they are; a relay of format 5 refuses a format 6
 *                  directory (it would take heads for whole values).
 *   newer format   refused ("written by a newer relay").
 *   usage_format   missing (format 1): set; older: the usage module reads
 *                  older records (shorter ones with zeros), and a
 *                  directory without carried records (before format 5)
 *                  has carried nothing, so it is raised; newer: refused.
 *   entry version  versions 1 and 2 are read; an entry of another version
 *                  (or a lane table out of bounds) is not misread: it is
 *                  skipped with a warning when the queue is loaded, and
 *                  sent alone (and so set aside) if it is ever read.
 *
 * Threads: one writer thread owns every write transaction (writer.h);
 * readers use short read transactions (MDB_NOTLS, so any thread may); a
 * forwarder's lasts one upstream request (struct store_body).
 *
 * Errors: 0 ok, 1 where a comment says so, ERR_* codes (err.h) on failure.
 *
 * Tests: every write, commit and sync goes through a function pointer
 * (store_int.h: store_seam_put, store_seam_commit, store_seam_sync) that a
 * test swaps for one that fails, to see a full disk or a failed commit.
 */
#ifndef RELAY_STORE_H
#define RELAY_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "config.h"
#include "sblock.h"

#define STORE_FORMAT 6
#define STORE_ENTRY_VERSION 2
#define STORE_ENTRY_TAIL 0x01    /* entry_hdr.flags: a tail (format 6) */
#define STORE_LANES 8            /* LANES in lanes.h */
#define STORE_KEY_MAX (TENANT_ID_MAX + 1 + 8)

struct entry_hdr {
	uint8_t version;         /* STORE_ENTRY_VERSION */
	uint8_t flags;           /* STORE_ENTRY_TAIL, or 0 */
	uint16_t nlanes;         /* version 2: lane records; version 1: 0 */
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

/*
 *   ha value (version STORE_HA_VERSION):
 *   +---------+----------+-------------+------------+--------------+---------+
 *   | version | reserved | replica_len | elected_ms | last_seen_ms | replica |
 *   |  u8 (1) |  u8[3]   |     u32     |    u64     |     u64      |  bytes  |
 *   +---------+----------+-------------+------------+--------------+---------+
 * elected_ms: wall-clock time the replica was elected; last_seen_ms: of
 * its last stored request, written at most once a second (for operators:
 * the fail-over timer is not taken from it, see ha.h).
 */
#define STORE_HA_VERSION 1
#define STORE_HA_VALUE_MAX 256   /* longest cluster or replica value kept */

struct ha_hdr {
	uint8_t version;
	uint8_t reserved[3];
	uint32_t replica_len;
	uint64_t elected_ms;
	uint64_t last_seen_ms;
};

struct store_series_rec {
	uint64_t seen_ms;
	uint64_t window_ms;
};

_Static_assert(sizeof(struct entry_hdr) == 40, "entry_hdr layout");
_Static_assert(sizeof(struct store_series_rec) == 16, "series layout");
_Static_assert(sizeof(struct ha_hdr) == 24, "ha_hdr layout");
_Static_assert(sizeof(struct setaside_hdr) == 16, "setaside_hdr layout");
#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "store.h: the on-disk format is written by little-endian hosts only"
#endif

/* Where a tenant's entries go: the ids they were accepted under. */
#define STORE_DEST_ID_MAX 32
struct store_dest {
	char account_id[STORE_DEST_ID_MAX + 1]; /* "" when the tenant had none */
	char project_id[STORE_DEST_ID_MAX + 1];
};

struct store;        /* closed: the environment and its databases */
struct store_txn;    /* closed: the one write transaction */
struct store_read;   /* closed: a read transaction */
struct store_body_copy; /* closed: a block copied for a body */

/* Where a walk over a database of (tenant, u64) keys stands, between the
 * short read transactions of its pages: after the key (tenant, hour) (a
 * sequence number in set-aside entries), or before the first key
 * (started = 0). */
struct store_pos {
	char tenant[TENANT_ID_MAX];
	size_t tlen;
	uint64_t hour;
	int started;
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
 * it; checks (and where it can, converts) the format versions above.
 * Clears reader slots left by dead processes. Returns the store (the
 * caller closes it), or NULL with a reason in err.
 */
struct store *store_open(const char *path, uint64_t max_size, char *err,
			 size_t errlen);

/* Opens an existing environment to read only, without the lock (safe
 * beside a running relay); refuses a format it cannot read. Returns the
 * store or NULL with a reason in err. */
struct store *store_open_readonly(const char *path, char *err, size_t errlen);

/* Syncs (when writable) and closes; frees st. Accepts NULL. */
void store_close(struct store *st);

/* Takes PATH/relay.lock. Returns its fd, ERR_BUSY if another process
 * holds it, or ERR_FAIL if it cannot be taken (no directory, ...). */
int store_lock(const char *path);
void store_unlock(int fd);

/* Fills q with what the queue database holds, the lanes' cursors, and
 * where the tenants' entries of version 1 end (queue.h). Returns 0 or an
 * ERR_*. */
struct queue;
int store_load_queue(struct store *st, struct queue *q);

/*
 * Write transactions: one at a time, the writer thread's (or a CLI's when
 * no relay runs). Begin returns 0 and *t, or an ERR_* code. Commit saves
 * the sequence numbers taken in it and syncs; abort gives them back.
 * After commit (whatever it returns) or abort, t is gone.
 */
int store_txn_begin(struct store *st, struct store_txn **t);
int store_txn_commit(struct store_txn *t);
void store_txn_abort(struct store_txn *t);

/* One lane of an entry to write: the block merging parts, counted. */
struct store_lane_in {
	unsigned lane;                   /* 0..STORE_LANES-1 */
	const struct sblock_part *parts; /* ref: whole snappy blocks */
	size_t nparts;
	uint32_t samples, series;
};

/*
 * Stores one entry (version 2) whose lanes are lanes[0..n) (in ascending
 * lane order, each with at least one part), under the next sequence
 * number (set in *seq). hdr's version, nlanes and raw_len are set here;
 * its samples and series must be the lanes' sums. Returns 0 or an ERR_*
 * code (ERR_FULL: the map is full; ERR_FAIL: lanes out of order, a
 * malformed part, or more than SBLOCK_MAX_RAW decoded bytes).
 */
int store_put_lanes(struct store_txn *t, const char *tenant, size_t tlen,
		    struct entry_hdr *hdr, const struct store_lane_in *lanes,
		    size_t n, uint64_t *seq, uint64_t *value_bytes);

/* store_put_lanes with one lane, 0, merging parts (counted as hdr says). */
int store_put_entry(struct store_txn *t, const char *tenant, size_t tlen,
		    struct entry_hdr *hdr, const struct sblock_part *parts,
		    size_t nparts, uint64_t *seq, uint64_t *value_bytes);

/* Stores a whole queue value as it is (any version this relay reads;
 * salvage) under the next sequence number, a version 2 value cut into
 * head and tail as store_put_lanes cuts its own. Returns 0 or an ERR_*
 * code (ERR_CORRUPT: not a whole value this relay reads). */
int store_put_value(struct store_txn *t, const char *tenant, size_t tlen,
		    const void *value, size_t len, uint64_t *seq);

/*
 * Deletes the tenant's entries with first <= seq <= last, adding what it
 * removed to *gone; *next (entries = 0 if none) describes the tenant's
 * oldest entry left, wherever it is. Returns 0 or an ERR_* code.
 */
int store_delete_range(struct store_txn *t, const char *tenant, size_t tlen,
		       uint64_t first, uint64_t last, struct store_span *gone,
		       struct store_span *next);

/*
 * Sets aside what the upstream refused for good, with its answer.
 * lane < 0: moves the whole entry seq into setaside, adding it to *gone;
 * *next as in store_delete_range. lane >= 0: copies only the lane's part
 * of entry seq into setaside as an entry of version 2 with that one lane
 * (added to the set-aside value of seq when another lane's part is there
 * already), and leaves the entry in the queue: the caller then acks the
 * lane through seq (store_lane_ack), which deletes the entry when no other
 * lane needs it (gone and next are untouched). An entry whose tail
 * records are lost (damage) is set aside as its head is, when the part
 * (or the entry) needs the tail: the set-aside record is then unreadable
 * but kept. Returns 0, ERR_NOTFOUND (no such entry, or no part in lane;
 * never for an entry that is there with a part in lane), or an ERR_*
 * code.
 */
int store_set_aside(struct store_txn *t, const char *tenant, size_t tlen,
		    int lane, uint64_t seq, long status, const char *reason,
		    struct store_span *gone, struct store_span *next);

/* ---- Delivery cursors (store_lanes.c; the lanes database) ---- */

/* An entry a body looked at: which lanes have a part in it (lane table
 * mask) and the samples of the body's lane's part (0: none). The writer
 * uses them to decide which entries an acknowledgement frees without
 * reading each entry again (store_lane_ack_seen). */
struct store_seen {
	uint64_t seq;
	uint32_t samples;
	uint8_t mask;
};
_Static_assert(STORE_LANES <= 8, "struct store_seen's mask has a bit per lane");

/*
 * The upstream took (or refused for good) lane's parts of the tenant's
 * entries first..last: the lane's cursor moves to last (never back), and
 * every entry in first..last whose lanes with a part are all through it
 * now is deleted and added to *gone. *delivered gets the samples of the
 * lane's parts in first..last the cursor had not passed before. *next as
 * in store_delete_range. Returns 0 or an ERR_* code.
 */
int store_lane_ack(struct store_txn *t, const char *tenant, size_t tlen,
		   unsigned lane, uint64_t first, uint64_t last,
		   struct store_span *gone, struct store_span *next,
		   uint64_t *delivered);

/*
 * store_lane_ack, told by seen[0..nseen) (sorted by seq; a body's, see
 * struct store_body) what entries of first..last hold: an entry listed
 * there is read only when it is deleted. Entries stay as written until
 * deleted and a sequence number is never used twice, so what a forwarder
 * read is what the entry holds. The rest are read as by store_lane_ack.
 */
int store_lane_ack_seen(struct store_txn *t, const char *tenant, size_t tlen,
			unsigned lane, uint64_t first, uint64_t last,
			const struct store_seen *seen, size_t nseen,
			struct store_span *gone, struct store_span *next,
			uint64_t *delivered, uint64_t *rest);

/*
 * Deleting what was delivered. LMDB copies each page a write transaction
 * changes into memory of its own and keeps the single pages for later
 * transactions, so the most pages one transaction ever changed stay
 * resident. Deleting an entry changes its tail records (up to a page,
 * about half of one on average) and its node on a leaf page (an entry
 * whose value has overflow pages frees them without changing them); one
 * answer for a large body covers hundreds of entries. So deletions have
 * a budget per transaction: STORE_DELETE_BYTES_PER_TXN bytes of tails and
 * leaf nodes (about 32 entries of 500 series; one entry at least). With
 * rest != NULL, store_lane_ack_seen deletes within what is left of it and
 * sets *rest to the first entry of first..last it left (0: none); the
 * cursor moves and the delivered samples are counted all the same.
 * store_sweep deletes those later. With rest == NULL (store_lane_ack too)
 * the budget does not apply.
 *
 * An entry every lane is through is never sent again, so one left behind
 * (the budget, a failed sweep, a stop or a crash in between) stays only
 * until a sweep, at the latest the one every start runs
 * (writer_sweep_start), deletes it. Meanwhile it counts in the buffer's
 * and the tenant's size as it did before its answer; eviction, when it
 * comes to it (it is the oldest of its tenant), deletes it without
 * counting it as dropped, and of an entry some lanes delivered it counts
 * only the other lanes' samples (store_entry_undelivered).
 */
#define STORE_DELETE_BYTES_PER_TXN (64 * 1024)
/* Entries the sweeps of one transaction look at, at most. */
#define STORE_SWEEP_LOOKS_PER_TXN 4096

/* Deletes the tenant's entries in first..last whose lanes with a part are
 * all through them, within the transaction's budgets; gone and next as in
 * store_lane_ack; *rest as above. Returns 0 or an ERR_* code. */
int store_sweep(struct store_txn *t, const char *tenant, size_t tlen,
		uint64_t first, uint64_t last, struct store_span *gone,
		struct store_span *next, uint64_t *rest);

/* What of the tenant's entry seq its lanes have not delivered: 0 when
 * every lane with a part in it is through it (delivered, or set aside;
 * its deletion was left to a sweep), else 1 with *samples the samples of
 * the parts of the lanes not through it. 1 with *samples UINT64_MAX (all
 * of it) when there is no such entry, or when its head is unreadable
 * (lane 0's, whole, as delivery reads it) and lane 0 is not through it. */
int store_entry_undelivered(struct store_txn *t, const char *tenant,
			    size_t tlen, uint64_t seq, uint64_t *samples);


/* The tenant's cursors, in a read transaction: through[L] for each lane
 * (0 when none). Returns 0 or an ERR_* code. */
int store_lane_cursors(struct store *st, const char *tenant, size_t tlen,
		       uint64_t through[STORE_LANES]);

/* Salvage: sets the (tenant, lane) cursor to through, as it is (it may go
 * back). Returns 0 or an ERR_* code. */
int store_lane_set(struct store_txn *t, const char *tenant, size_t tlen,
		   unsigned lane, uint64_t through);

/* Bytes of the pages the databases use now (branch, leaf and overflow
 * pages of every database), as the transaction sees them. */
uint64_t store_used_bytes(struct store_txn *t);

/* Bytes a queue value of n bytes of a tenant whose id is tlen bytes
 * takes on disk, at most: whole pages when it overflows a leaf page and
 * is kept whole; when it is cut (store.h, "Heads and tails"), the head's
 * pages, exactly filled, and the tail's bytes in leaf records. */
uint64_t store_value_footprint(const struct store *st, size_t tlen,
			       uint64_t n);

/* The data file, for the preallocator (prealloc.h): its descriptor, its
 * path into out (0 or ERR_FAIL), where LMDB's pages end (only between
 * write transactions), the map's size, the page size. */
int store_data_fd(const struct store *st);
int store_data_path(const struct store *st, char *out, size_t outlen);
uint64_t store_data_end(const struct store *st);
uint64_t store_map_size(const struct store *st);
unsigned store_page_size(const struct store *st);

/* ---- Set-aside entries (store_setaside.c) ---- */

/* Which set-aside entries an operation takes. */
struct setaside_filter {
	char tenant[TENANT_ID_MAX + 1];
	size_t tlen;
	int any_tenant;          /* 1: every tenant */
	uint64_t seq;            /* 0: every entry */
};

/* Called for each entry replayed (now in the queue as seq) or deleted. */
struct setaside_sink {
	void (*replayed)(void *arg, const char *tenant, size_t tlen, uint64_t seq,
			 uint64_t bytes, uint64_t samples, uint64_t created_ms);
	void (*deleted)(void *arg, const char *tenant, size_t tlen,
			uint64_t samples);
	void *arg;
};

/* One set-aside entry as a listing shows it (refs into the map). */
struct setaside_item {
	const char *tenant;
	size_t tlen;
	uint64_t seq;
	uint32_t status;
	const char *reason;
	size_t reason_len;
	uint64_t set_aside_ms;
	uint32_t samples, series;
	size_t bytes;            /* of the queue value kept */
};

/* Calls fn for at most max matching entries after *pos, in key order, in a
 * read transaction of its own that ends before it returns, and moves *pos
 * to each entry before fn gets it (pos->hour holds its sequence number).
 * fn returns 0 to go on, 1 to stop, or an ERR_* code. Returns 1 when it
 * stopped before the last entry (more may follow *pos), 0 at the end, or
 * an ERR_* code. */
int store_setaside_page(struct store *st, const struct setaside_filter *f,
			struct store_pos *pos, unsigned max,
			int (*fn)(void *arg, const struct setaside_item *it),
			void *arg);

/* Moves the matching entries back to the queue behind what it holds, with
 * new sequence numbers; with max_bytes > 0, stops once entries of that
 * many bytes moved (one at least), and sets *more when matching entries
 * are left (the next call goes on: those moved are no longer set aside).
 * Returns 0 or an ERR_* code; *n counts them. */
int store_setaside_replay(struct store_txn *t, const struct setaside_filter *f,
			  const struct setaside_sink *sink, uint64_t max_bytes,
			  uint64_t *n, int *more);

/* Deletes the matching entries, bounded as store_setaside_replay. Returns
 * 0 or an ERR_* code. */
int store_setaside_purge(struct store_txn *t, const struct setaside_filter *f,
			 const struct setaside_sink *sink, uint64_t max_bytes,
			 uint64_t *n, int *more);

/* Deletes entries older than max_age_ms, then the oldest until the
 * database's pages fit in max_bytes (passes that each read every entry
 * once, keeping the earliest 1024, 2048, ... of them: deleting d of n
 * entries reads about n * log2(d / 1024 + 2)). Returns 0 or an ERR_*
 * code. */
int store_setaside_trim(struct store_txn *t, uint64_t max_bytes,
			uint64_t max_age_ms, uint64_t now,
			const struct setaside_sink *sink, uint64_t *n);

/* ---- Dedup records (store_dedup.c): (time ms, SHA-256) ---- */

/* Calls fn for each record, oldest first. Returns 0 or an ERR_* code
 * (fn's, if it returns one). */
int store_dedup_each(struct store_txn *t,
		     int (*fn)(void *arg, uint64_t ms, const uint8_t digest[32]),
		     void *arg);

/* Whether a record of digest exists with a time in [from_ms, to_ms]: 1, 0,
 * or an ERR_* code. Reads every record in that range. */
int store_dedup_find(struct store_txn *t, uint64_t from_ms, uint64_t to_ms,
		     const uint8_t digest[32]);

/* Adds the record (ms, digest). Returns 0 or an ERR_* code. */
int store_dedup_put(struct store_txn *t, uint64_t ms, const uint8_t digest[32]);

/* Deletes records older than before_ms (and unreadable ones), oldest
 * first, at most max of them, calling gone for each readable one.
 * Returns 0 or an ERR_* code. */
int store_dedup_expire(struct store_txn *t, uint64_t before_ms, unsigned max,
		       void (*gone)(void *arg, uint64_t ms,
				    const uint8_t digest[32]),
		       void *arg);

/* ---- Usage records (store_usage.c): per tenant and hour ---- */

/* The (tenant, hour) value of the usage (hll = 0) or usage_hll (hll = 1)
 * database: 1 with *val and *len referring to it until the transaction's next
 * write, 0 if there is none, or an ERR_* code. */
int store_usage_get(struct store_txn *t, int hll, const char *tenant,
		    size_t tlen, uint64_t hour, const void **val, size_t *len);

/* Writes the (tenant, hour) value. Returns 0 or an ERR_* code. */
int store_usage_put(struct store_txn *t, int hll, const char *tenant,
		    size_t tlen, uint64_t hour, const void *val, size_t len);

/* Reserves len bytes as the (tenant, hour) value and sets *out to them,
 * for the caller to fill before the transaction's next write (nothing is
 * copied). Returns 0 or an ERR_* code. */
int store_usage_reserve(struct store_txn *t, int hll, const char *tenant,
			size_t tlen, uint64_t hour, size_t len, void **out);

/*
 * The hour in the key of a tenant's carried record in the usage database
 * (usage.h: what was deleted past usage_retention): all ones, not a
 * multiple of 3600, so no hour's, and after every hour of the tenant in
 * key order. store_usage_page, store_usage_each and store_usage_range
 * never pass it to fn; store_usage_cleanup never deletes it;
 * store_usage_get and store_usage_put reach it with this hour.
 */
#define STORE_USAGE_CARRIED UINT64_MAX

/* Deletes sketches of hours before hll_before_s and records of hours
 * before usage_before_s (none when it is 0). Each record is passed to
 * gone (when not NULL) before it is deleted: the value is valid until
 * gone returns 0 (go on) or an ERR_* code (stops: the cleanup returns it).
 * Returns 0 or an ERR_* code. */
int store_usage_cleanup(struct store_txn *t, uint64_t hll_before_s,
			uint64_t usage_before_s,
			int (*gone)(void *arg, const char *tenant, size_t tlen,
				    uint64_t hour, const void *val, size_t len),
			void *arg);

/*
 * One page of a walk over the usage records that never holds a read
 * transaction for long: calls fn for at most max records in key order
 * after *pos (only tenant's, from its hour from_s on, when tenant is not
 * NULL), in a read transaction of its own that ends before it returns, and
 * moves *pos to each record before fn gets it; the next call resumes
 * after the last key. fn returns 0 to go on, 1 to stop, or an ERR_* code.
 * Returns 1 when it stopped before the last record (max records, or fn's
 * 1): more may follow *pos; 0 when the walk reached the end; or an ERR_*
 * code (fn's, or the store's). max 0 only checks that the store can be
 * read (1, or an ERR_* code).
 */
int store_usage_page(struct store *st, const char *tenant, size_t tlen,
		     uint64_t from_s, struct store_pos *pos, unsigned max,
		     int (*fn)(void *arg, const char *tenant, size_t tlen,
			       uint64_t hour, const void *val, size_t len),
		     void *arg);

/* Calls fn for each usage record in key order (tenant, then hour), from
 * tenant's hour from_s on when tenant is not NULL (and only its records);
 * in a read transaction. fn returns 0 to go on, 1 to stop, or an ERR_*
 * code. Returns 0 or an ERR_* code. */
int store_usage_each(struct store *st, const char *tenant, size_t tlen,
		     uint64_t from_s,
		     int (*fn)(void *arg, const char *tenant, size_t tlen,
			       uint64_t hour, const void *val, size_t len),
		     void *arg);

/* Calls fn for each usage record whose hour is in [from_s, to_s), tenant
 * by tenant in key order, in one read transaction; the other hours of a
 * tenant are skipped with a seek, not read, so a walk over recent hours
 * costs about one seek per tenant. fn returns 0 to go on, 1 to stop, or
 * an ERR_* code. Returns 0 or an ERR_* code (fn's, or the store's). */
int store_usage_range(struct store *st, uint64_t from_s, uint64_t to_s,
		      int (*fn)(void *arg, const char *tenant, size_t tlen,
				uint64_t hour, const void *val, size_t len),
		      void *arg);

/* store_usage_range, and in the same read transaction each tenant's
 * carried record (hour STORE_USAGE_CARRIED), after its hours. */
int store_usage_range_carried(struct store *st, uint64_t from_s,
			      uint64_t to_s,
			      int (*fn)(void *arg, const char *tenant,
					size_t tlen, uint64_t hour,
					const void *val, size_t len),
			      void *arg);

/* ---- Destination records (store_dest.c) ---- */

/*
 * Writer: the tenant's entries from the transaction's next sequence
 * number on go to d. Adds a record when the tenant's latest one says
 * otherwise (or it has none); call it before store_put_entry, in the
 * same transaction. Returns 0 or an ERR_* code (ERR_FAIL: an id longer
 * than STORE_DEST_ID_MAX).
 */
int store_dest_note(struct store_txn *t, const char *tenant, size_t tlen,
		    const struct store_dest *d);

/*
 * The record in force for the tenant's entry seq, in a read transaction:
 * 1 with *d, and in *until the first sequence number of the next record
 * (UINT64_MAX if none); 0 when there is none (*until as said); or an
 * ERR_* code.
 */
int store_dest_get(struct store *st, const char *tenant, size_t tlen,
		   uint64_t seq, struct store_dest *d, uint64_t *until);

/* Whether two destinations are the same: 1 or 0. */
int store_dest_equal(const struct store_dest *a, const struct store_dest *b);
/* ---- HA elections (store_ha.c): per tenant and cluster ---- */

/* One stored election. */
struct store_ha_rec {
	const char *tenant;       /* ref: the key, or the caller's */
	size_t tlen;
	const char *cluster;
	size_t clen;
	const char *replica;
	size_t rlen;
	uint64_t elected_ms, last_seen_ms;
};

/* Calls fn for each election (records of another version, or malformed,
 * are skipped). fn returns 0 to go on or an ERR_* code to stop with.
 * Returns 0 or an ERR_* code. */
int store_ha_each(struct store_txn *t,
		  int (*fn)(void *arg, const struct store_ha_rec *rec),
		  void *arg);

/* Reads one record of the ha database (key and value as stored) into
 * rec, whose pointers then refer into key and val. Returns 0, or -1 when
 * it is malformed or of another version (store_ha_each skips those). */
int store_ha_parse(const void *key, size_t klen, const void *val,
		   size_t vlen, struct store_ha_rec *rec);

/* Writes the election of (rec->tenant, rec->cluster). Returns 0 or an
 * ERR_* code (ERR_FAIL: a value over STORE_HA_VALUE_MAX). */
int store_ha_put(struct store_txn *t, const struct store_ha_rec *rec);

/* ---- Series of tenants with a limit (store_series.c) ---- */

/* Writes the record of (tenant, hash). Returns 0 or an ERR_* code
 * (ERR_FAIL: no tenant, or a store without the database). */
int store_series_put(struct store_txn *t, const char *tenant, size_t tlen,
		     uint64_t hash, uint64_t seen_ms, uint64_t window_ms);

/* Calls fn for each readable record, in key order, in a read transaction
 * of its own. fn returns 0 to go on or an ERR_* code to stop with.
 * Returns 0 or an ERR_* code. */
int store_series_each(struct store *st,
		      int (*fn)(void *arg, const char *tenant, size_t tlen,
				uint64_t hash, uint64_t seen_ms,
				uint64_t window_ms),
		      void *arg);

/* Looks at up to max records after *pos (pos->hour holds the hash;
 * started = 0: from the first), deleting the expired and unreadable ones,
 * and moves *pos past them (back to the start at the end). Returns 0 or
 * an ERR_* code; *deleted counts the records deleted. */
int store_series_expire(struct store_txn *t, struct store_pos *pos,
			unsigned max, uint64_t now_ms, uint64_t *deleted);

/* ---- The forwarder's reads (store_queue.c) ---- */

/* Most entries one request body merges: a lane's part of an entry is
 * about an eighth of it, so a lane request reaches max_request_size only
 * by merging many. */
#define STORE_BODY_MAX_ENTRIES 2048
/* Most pieces its blocks lie in (a block that passes its entry's head
 * lies in the head and tail records: store.h, "Heads and tails"). */
#define STORE_BODY_MAX_PIECES (2 * STORE_BODY_MAX_ENTRIES)

/*
 * One upstream request body left where its entries lie in the map: a read
 * transaction, and for each entry its snappy block's elements (after the
 * 40-byte entry header and the block's own preamble), read behind one
 * merged preamble by stream. A block that passes its entry's head (into
 * the tails database) is read in pieces where they lie; one whose
 * preamble is cut in two is the one thing copied, joined, into copies.
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
	struct store_read *read; /* owned; NULL when nothing is held */
	struct store_dest dest;  /* where the entries go, when has_dest */
	int has_dest;            /* 0: no record; the configuration decides */
	size_t nseen;            /* entries of seen[] filled */
	/* owned: blocks whose preamble the cut of their entry's head falls
	 * in, joined with the tail (store.h "Heads and tails"); freed by
	 * store_body_release */
	struct store_body_copy *copies;
	struct sblock_part elements[STORE_BODY_MAX_PIECES]; /* ref: the map */
	struct sblock_stream stream;
	/* The readable entries looked at, in order (the first
	 * STORE_BODY_MAX_ENTRIES of them), parts taken or not. */
	struct store_seen seen[STORE_BODY_MAX_ENTRIES];
};

/*
 * Forwarder: sets body to the one snappy block merging lane's parts of the
 * tenant's entries with seq <= their sequence number <= max_seq, oldest
 * first, as long as the decoded total stays within max_raw (at least one
 * part) and at most max_entries parts (at most STORE_BODY_MAX_ENTRIES),
 * and all under one destination record (body->dest; see the dest database
 * above: a body never spans two). Entries without a part in lane are
 * passed over; an entry whose header or lane table is unreadable reads as
 * lane 0's and travels alone. span describes the parts taken (entries:
 * how many; samples, series, raw, bytes: theirs; first_seq: the first
 * one's sequence number), and span->last_seq is the last entry looked at
 * that the body covers, parts or not: the lane is through it once the
 * body is delivered. span->entries is 0 when the lane has no part in the
 * range (span->last_seq is then the last entry there, or 0). body->stream
 * reads the block from the map (its length is body->stream.len); nothing
 * is copied.
 *
 * Only the lane's own blocks are looked at (the other lanes' parts are
 * known from the lane table alone), and each one before it is taken: a
 * part whose block is missing or whose snappy preamble is malformed or
 * disagrees with the table ends the body before it; when it comes first,
 * store_body_open returns 1, holding nothing, with span describing that
 * one entry (entries 1, first_seq = last_seq = its sequence number): it
 * cannot be sent, and the forwarder sets it aside.
 *
 * Returns 0, with a read transaction held in body that the caller ends
 * with store_body_release as soon as the request is done (nothing is held
 * when span->entries is 0); 1 as just said. Returns -1, holding nothing,
 * when the store cannot be read or the merged decoded length passes
 * SBLOCK_MAX_RAW.
 */
int store_body_open(struct store *st, const char *tenant, size_t tlen,
		    unsigned lane, uint64_t seq, uint64_t max_seq, uint64_t max_raw,
		    uint64_t max_entries, struct store_body *body,
		    struct store_span *span);

/* Ends body's read transaction; its parts are not to be read after this.
 * Does nothing when nothing is held. */
void store_body_release(struct store_body *body);

/*
 * The block store_body_open describes, appended to body (bounded as body
 * is), with the transaction released before returning. Returns 0 or -1
 * (store_body_open's failures, a malformed first part, or body's bound).
 */
int store_read_batch(struct store *st, const char *tenant, size_t tlen,
		     unsigned lane, uint64_t seq, uint64_t max_seq, uint64_t max_raw,
		     uint64_t max_entries, struct buf *body,
		     struct store_span *span);

#endif
