/*
 * salvage_int.h - the insides of `relay salvage` (salvage.h), shared by
 * its files: store_salvage.c copies the entries (queue, set-aside,
 * usage, HA elections) and runs the CLI; salvage_state.c carries what
 * goes with the entries and is keyed by their sequence numbers, which the
 * copy changes: the lanes' delivery cursors and the destination records;
 * salvage_tails.c joins the queue entries' heads with their tails.
 * No other module includes it.
 */
#ifndef RELAY_SALVAGE_INT_H
#define RELAY_SALVAGE_INT_H

#include <stddef.h>
#include <stdint.h>

#include "lmdb_read.h"
#include "salvage.h"

struct store_txn;

/*
 * Walks the named database of f, calling fn for each entry of the pages
 * that pass their checks; db (zeroed here) gets what the walk met, and
 * db->missing when there is no such database (not an error). Returns 0,
 * or fn's negative code (fn writes its reason into err), or ERR_NOMEM.
 */
int salvage_walk(struct lmdb_file *f, const char *name, struct salvage_db *db,
		 lmdb_entry_fn fn, void *arg, char *err, size_t errlen);

/* Counts an entry read but not copied in db, and keeps the reason of the
 * report's first one (r->invalid_sample). */
void salvage_invalid(struct salvage_report *r, struct salvage_db *db,
		     const char *tenant, size_t tlen, uint64_t seq,
		     const char *why);

/*
 * The old store's cursors and destination records, read before the
 * entries are copied, and translated as they are. Every function that
 * writes does so in the caller's transaction t of the new store.
 */
struct salvage_cursors;
struct salvage_dest;
struct salvage_state {
	struct salvage_cursors *cur;  /* owned: one per tenant, sorted */
	size_t ncur;
	struct salvage_dest *dest;    /* owned: sorted by (tenant, seq) */
	size_t ndest;
	/* The old store's tails database, looked up per entry
	 * (salvage_tails.c); has_tails 0 when it has none */
	struct lmdb_file *file;       /* ref: the old store */
	struct lmdb_db tails;
	int has_tails;
};

/* Reads f's lanes and dest databases into s (counted in r->lanes and
 * r->dest; what is damaged is skipped and counted). Returns 0 or a
 * negative ERR_* code (ERR_NOMEM) with the reason in err. */
int salvage_state_load(struct salvage_state *s, struct lmdb_file *f,
		       struct salvage_report *r, char *err, size_t errlen);

/* The tenant's entry old_seq (queue or set-aside) is about to be written
 * under t's next sequence number: notes the destination it had (none if
 * it had no record). Returns 0 or an ERR_* code. */
int salvage_state_dest(struct salvage_state *s, struct store_txn *t,
		       const char *tenant, size_t tlen, uint64_t old_seq);

/* The tenant's queue entry old_seq was written as new_seq; call it in
 * the old order (each tenant's entries oldest first). */
void salvage_state_moved(struct salvage_state *s, const char *tenant,
			 size_t tlen, uint64_t old_seq, uint64_t new_seq);

/* After the entries: writes each lane's cursor in the new numbers (a lane
 * is through the last copied entry it was through) and each tenant's
 * latest destination. Returns 0 or an ERR_* code. */
int salvage_state_write(struct salvage_state *s, struct store_txn *t,
			struct salvage_report *r);

void salvage_state_free(struct salvage_state *s);

/* Finds f's tails database (store.h, "Heads and tails") for s to look
 * tails up in (called by salvage_state_load; f must outlive s's use). A
 * store without one (before format 6), or whose main DB is damaged where
 * its record was, has nothing to join: its heads count invalid. Returns
 * 0 (or a negative ERR_* code with the reason in err). */
int salvage_tails_load(struct salvage_state *s, struct lmdb_file *f,
		       char *err, size_t errlen);

/* Sets out to the whole value of the tenant's queue entry seq, len bytes,
 * whose head[0..hlen) was read: the head, then its tail records (looked
 * up in the old store's tails database, on disk), with STORE_ENTRY_TAIL
 * cleared. Returns 0, ERR_NOMEM, or -1 when the tail is missing, lies on
 * a damaged page or does not make len bytes (or out's bound). */
struct buf;
int salvage_tails_join(const struct salvage_state *s, const char *tenant,
		       size_t tlen, uint64_t seq, const uint8_t *head,
		       size_t hlen, size_t len, struct buf *out);

void salvage_tails_free(struct salvage_state *s);

#endif
