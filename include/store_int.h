/*
 * store_int.h - the store's insides, shared by its files (store.c,
 * store_queue.c, store_lanes.c, store_setaside.c, store_dedup.c,
 * store_usage.c, store_dest.c, store_ha.c, store_series.c, and salvage's
 * store_salvage.c and salvage_state.c) and read by the store's own unit
 * tests. No other module includes it: the rest of
 * the relay sees struct store and struct store_txn as closed types and
 * calls the operations in store.h.
 */
#ifndef RELAY_STORE_INT_H
#define RELAY_STORE_INT_H

#include <lmdb.h>

#include "err.h"
#include "store.h"

/* The one write transaction (the writer thread's, or a CLI's). Sequence
 * numbers are taken from next_seq; the store's own counter moves only
 * when the transaction commits, so an abort gives them back. */
struct store_txn {
	struct store *st;        /* ref */
	MDB_txn *txn;            /* NULL when none is open */
	uint64_t next_seq;
	size_t tails_room;       /* store's, as this transaction left it */
	/* What acks and sweeps may still change (store.h, "Deleting what
	 * was delivered"): bytes of pages, and entries a sweep looks at. */
	size_t delete_bytes_left;
	size_t sweep_looks_left;
};

struct store {
	MDB_env *env;
	MDB_dbi meta;
	MDB_dbi queue;
	MDB_dbi setaside;
	MDB_dbi dedup;
	MDB_dbi dedup_time;
	MDB_dbi usage;
	MDB_dbi usage_hll;
	MDB_dbi dest;            /* 0 in a reader of a format 2 directory */
	MDB_dbi ha;              /* 0 when absent (read only, older store) */
	MDB_dbi series;          /* 0 when absent (read only, format 3) */
	MDB_dbi lanes;           /* 0 in a reader of a format 4 directory */
	MDB_dbi tails;           /* 0 in a reader of a format 5 directory */
	uint64_t max_size;
	uint64_t next_seq;       /* next sequence number, as last committed */
	/* Bytes free on the tails database's last leaf page, as far as the
	 * appends of committed transactions tell (0: unknown); only sizes
	 * tail records to fill pages (store_tail.c), never trusted. */
	size_t tails_room;
	unsigned page_size;
	int lock_fd;             /* flock on PATH/relay.lock; -1 if none */
	int readonly;
	struct store_txn wtxn;   /* the write transaction, when open */
};

/*
 * Failure seams: every write of the store goes through store_seam_put,
 * every commit through store_seam_commit, every sync through
 * store_seam_sync. They are LMDB's own functions; a test swaps one for a
 * function that fails (MDB_MAP_FULL, ENOSPC, EIO) to see a full disk or a
 * failed commit without root or a small filesystem, as beanstalkd's dat.h
 * exports falloc. A commit seam ends the transaction whatever it returns,
 * as mdb_txn_commit does (a failing one calls mdb_txn_abort).
 */
extern int (*store_seam_put)(MDB_txn *txn, MDB_dbi dbi, MDB_val *key,
			     MDB_val *val, unsigned flags);
extern int (*store_seam_commit)(MDB_txn *txn);
extern int (*store_seam_sync)(MDB_env *env, int force);

/* The LMDB transaction behind a read handle, and back. */
static inline MDB_txn *store_read_txn(struct store_read *r)
{
	return (MDB_txn *)(void *)r;
}

static inline struct store_read *store_read_of(MDB_txn *txn)
{
	return (struct store_read *)(void *)txn;
}

/* Writes the key for (tenant, seq) into key (STORE_KEY_MAX bytes); returns
 * its length. */
size_t store_key(uint8_t *key, const char *tenant, size_t tlen, uint64_t seq);

/* Splits a key; returns 0, or -1 if it is not a (tenant, u64) key. */
int store_key_parse(const MDB_val *k, const char **tenant, size_t *tlen,
		    uint64_t *seq);

/* Reads an entry header from a queue value, and checks its lane table
 * (lanes_table in lanes.h: the blocks themselves are not looked at); 0,
 * or -1 if malformed or of another version. An entry that fails this is
 * "unreadable": lane 0's, whole (store.h). */
int store_entry_hdr(const MDB_val *v, struct entry_hdr *hdr);

/* The header and lane table (refs into v) of a whole value: every block
 * the table lists lies within v (else -1), whatever v's STORE_ENTRY_TAIL
 * flag says. For values that are whole by construction (set-aside
 * records, values joined with their tails, salvage's). A part is checked
 * (lanes_part_ok) where its block is read. */
struct lane_table;
int store_entry_read(const MDB_val *v, struct entry_hdr *hdr,
		     struct lane_table *t);

/* store_entry_read of a queue record, which may be a head (store_tail.c,
 * store_value_len): the table then describes the whole value, and a part
 * whose block passes v's end lies partly or wholly in the tail records
 * (read it with store_tail_pieces or store_value_whole, never through
 * its block pointer). Queue readers only. */
int store_head_read(const MDB_val *v, struct entry_hdr *hdr,
		    struct lane_table *t);

/* store_entry_hdr that also checks every block's preamble (lanes_parse);
 * for whole values taken from outside the queue (a head fails it). */
int store_entry_check(const MDB_val *v, struct entry_hdr *hdr);

/* Adds entry seq (value v, header h) to span s. */
void store_span_add(struct store_span *s, uint64_t seq, const MDB_val *v,
		    const struct entry_hdr *h);

/* Fills next with the tenant's oldest entry (entries = 0 if none), using
 * cur on the queue database. Returns an LMDB code. */
int store_tenant_head(MDB_cursor *cur, const char *tenant, size_t tlen,
		      struct store_span *next);

/* Pages (in bytes) that database dbi uses, as txn sees it. */
uint64_t store_db_bytes(MDB_txn *txn, const struct store *st, MDB_dbi dbi);

/* store_dest_get in txn: an LMDB code, or 1 / 0 as it says. */
int store_dest_lookup(MDB_txn *txn, const struct store *st,
		      const char *tenant, size_t tlen, uint64_t seq,
		      struct store_dest *d, uint64_t *until);

/* Reads a dest record's value into d; 0, or -1 if malformed. */
int store_dest_parse(const MDB_val *v, struct store_dest *d);

/* Deletes the tenant's destination records that none of its entries in
 * the queue or setaside needs, but for its latest. Returns an LMDB code. */
int store_dest_prune(MDB_txn *txn, const struct store *st,
		     const char *tenant, size_t tlen);

/* Gives the entry replayed from setaside seq (now new_seq) the record it
 * had. Returns an LMDB code. */
int store_dest_carry(MDB_txn *txn, const struct store *st,
		     const char *tenant, size_t tlen, uint64_t seq,
		     uint64_t new_seq);

/* Entries the size trim of store_setaside_trim has read, since start
 * (for its test: each pass reads every entry once). */
extern uint64_t store_setaside_trim_reads;

/* Hands q every lane cursor (queue_lane_through) of the lanes database.
 * Returns an LMDB code. */
struct queue;
int store_load_cursors(MDB_txn *txn, const struct store *st, struct queue *q);

/* ---- Entries' tails (store_tail.c; the tails database, store.h) ---- */

/* Bytes of the head of a queue value of len bytes of the tenant (its
 * whole overflow pages, exactly filled), the rest going to the tails
 * database; 0 when the value is stored whole. */
size_t store_tail_cut(const struct store *st, size_t tlen, size_t len);

/* The length of the queue value whose stored record is v: the lane
 * table's when v is a head (STORE_ENTRY_TAIL set, and the table, within
 * v, describes more than v holds), else v's own. */
size_t store_value_len(const MDB_val *v);

/* 1 when v's header has STORE_ENTRY_TAIL set (tail records may exist). */
int store_tail_flagged(const MDB_val *v);

/* Most records of one tail. */
#define STORE_TAIL_CHUNKS 3

/* Writes the tail[0..n) of entry (tenant, seq) as 1 to STORE_TAIL_CHUNKS
 * records, the first sized to fill the tails database's last leaf page
 * (t->tails_room). Returns an LMDB code. */
int store_tail_put(struct store_txn *t, const char *tenant, size_t tlen,
		   uint64_t seq, const uint8_t *tail, size_t n);

/* Record chunk of the tail of entry (tenant, seq) into *v (a ref into
 * the map). Returns an LMDB code (MDB_NOTFOUND: none). */
int store_tail_get(MDB_txn *txn, const struct store *st, const char *tenant,
		   size_t tlen, uint64_t seq, unsigned chunk, MDB_val *v);

/* Deletes the tail records of entry (tenant, seq), if any. Returns an
 * LMDB code. */
int store_tail_del(MDB_txn *txn, const struct store *st, const char *tenant,
		   size_t tlen, uint64_t seq);

/* Copies bytes off..off+n of the value of entry (tenant, seq), whose
 * queue record is head, into dst: from head, then from the tail records.
 * Returns an LMDB code (MDB_NOTFOUND: the tail records are missing). */
int store_value_copy(MDB_txn *txn, const struct store *st, const char *tenant,
		     size_t tlen, uint64_t seq, const MDB_val *head, size_t off,
		     size_t n, uint8_t *dst);

/* The whole value of entry (tenant, seq) whose queue record is head: head
 * itself when it is whole, else a malloc'ed copy joined with its tail,
 * STORE_ENTRY_TAIL cleared, that the caller frees (whole->mv_data !=
 * head->mv_data). Returns an LMDB code (ENOMEM, MDB_NOTFOUND). */
int store_value_whole(MDB_txn *txn, const struct store *st, const char *tenant,
		      size_t tlen, uint64_t seq, const MDB_val *head,
		      MDB_val *whole);

/* Most pieces one lane's block of an entry lies in: the head, then each
 * tail record. */
#define STORE_TAIL_PIECES (1 + STORE_TAIL_CHUNKS)

/* The pieces of lp's block (of entry seq, whose queue record is head)
 * where they lie in the map (refs, valid as long as txn): its bytes in
 * the head, then in each tail record. Returns how many (1 to
 * STORE_TAIL_PIECES) in out; ERR_NOTFOUND when the tail is missing
 * (damage); another ERR_* code when the store cannot be read now. */
struct lane_part;
struct sblock_part;
int store_tail_pieces(MDB_txn *txn, const struct store *st,
		      const char *tenant, size_t tlen, uint64_t seq,
		      const MDB_val *head, const struct lane_part *lp,
		      struct sblock_part *out);

/* Sets *out to lp's block (as store_tail_pieces) copied whole into
 * memory that body owns until store_body_release. Returns 0,
 * ERR_NOTFOUND when the tail is missing (damage), ERR_NOMEM, or another
 * ERR_* code when the store cannot be read now. */
int store_tail_joined(MDB_txn *txn, const struct store *st,
		      struct store_body *body, const char *tenant, size_t tlen,
		      uint64_t seq, const MDB_val *head,
		      const struct lane_part *lp, struct sblock_part *out);

/* Frees what store_tail_joined copied for body. */
void store_tail_copies_free(struct store_body *body);

/* A read transaction on st; 0 or an ERR_* code. */
int store_read_begin(struct store *st, MDB_txn **txn);

#endif
