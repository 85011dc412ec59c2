/*
 * prealloc.h - zeros written ahead of the end of LMDB's data file.
 *
 * While the buffer grows, every commit appends pages to data.mdb, and the
 * fdatasync that makes it durable then also writes the inode (the file got
 * longer, new blocks were allocated): one more ordered write per commit.
 * A thread keeps a margin of zeros, written and synced, past the last page
 * LMDB uses, so that commits overwrite blocks that already exist.
 *
 * The thread writes only past LMDB's last committed page and only while
 * holding the lock that the writer holds for each whole write transaction,
 * so it never races a write of LMDB's. What lies past that page is not
 * part of the database: a crash leaves zeros there, which LMDB ignores.
 * A clean stop cuts the file back to LMDB's end.
 */
#ifndef RELAY_PREALLOC_H
#define RELAY_PREALLOC_H

#include <stdint.h>

#include "store.h"

struct prealloc;

/*
 * Keeps up to max_margin bytes of zeros past LMDB's end (a quarter of the
 * data at most, so a small buffer stays small). With direct, the zeros
 * bypass the page cache where the filesystem allows O_DIRECT; without, or
 * where it does not, they go through the cache. NULL when max_margin is 0
 * or the thread cannot start; the relay then works as before.
 */
struct prealloc *prealloc_start(struct store *st, uint64_t max_margin,
				int direct);

/* The writer: around each write transaction, from begin to commit or
 * abort. Both accept NULL. */
void prealloc_lock(struct prealloc *p);
void prealloc_unlock(struct prealloc *p);

/* Joins the thread and, with no write transaction left to come, cuts the
 * file back to LMDB's end. Accepts NULL. */
void prealloc_stop(struct prealloc *p);

/* Bytes of zeros past LMDB's end that this process has written and synced
 * so far (for the tests). */
uint64_t prealloc_margin(struct prealloc *p);

#endif
