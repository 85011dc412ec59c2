/*
 * store_check.h - what the relay checks about [storage] path before LMDB
 * touches it, so that a damaged or foreign data directory is refused with
 * a reason instead of crashing the relay or being replaced by an empty
 * store.
 *
 * 1. The directory. path must be a directory that holds only the relay's
 *    files; a missing one is created 0700 (with missing parents). An
 *    existing directory is never chmod'ed; it is refused when it is
 *    writable by others (a shared directory such as /tmp) or holds any
 *    other name. The relay's files:
 *
 *      data.mdb    LMDB's data file (store.h has the layout of its content)
 *      lock.mdb    LMDB's reader table
 *      relay.lock  flock held by the one relay (or CLI) writing the store
 *      relay.id    this store's identity (below)
 *      lost+found  when path is the root of a filesystem of its own
 *
 * 2. The identity. Once a store was opened, PATH/relay.id says that this
 *    directory holds a store (format version 1 of the file, text):
 *
 *      relay store
 *      format=1
 *      id=<32 hex digits, random>
 *      created_ms=<Unix ms>
 *
 *    A relay.id of another format is refused (bump STORE_ID_FORMAT when
 *    the meaning of the file changes). With relay.id, a missing or empty
 *    data.mdb is damage (the data is gone), not a fresh start. Without relay.id
 *    and without data.mdb the directory gets a new store. A data.mdb
 *    without relay.id (a store of an earlier relay) gets its relay.id
 *    once it passed the checks below.
 *
 * 3. The data file. Before liblmdb opens data.mdb, lmdb_read.h reads it:
 *    both meta pages; then every branch and leaf page of every tree (the
 *    free-page DB, the main DB and each named database it lists), and the
 *    first page of each overflow run (its header, not its content). Any
 *    page outside the file, misplaced, of the wrong type, with offsets
 *    outside the page, keys out of order or counts that differ from its
 *    database record is damage; so is a free-page record (u64 count, then
 *    the page numbers) that lists a meta page or a page past the last one,
 *    which LMDB would hand out again over live data. This reads the tree
 *    pages (and the free-page lists) only: entries
 *    are mostly overflow runs, so a store of 1 GB takes one read per
 *    entry plus a few hundred tree pages (measured in README.md).
 *    The content of overflow runs is not checked here; a damaged entry
 *    there fails the forwarder's snappy/protobuf checks and is set aside.
 *
 * A refusal names the file, the page and what is wrong, and says to run
 * `relay salvage` (salvage.h), which copies every intact entry into a new
 * directory.
 */
#ifndef RELAY_STORE_CHECK_H
#define RELAY_STORE_CHECK_H

#include <stddef.h>

#define STORE_ID_FILE "relay.id"
#define STORE_ID_FORMAT 1

/*
 * Checks (1) for path. With create, a missing directory is created 0700;
 * without, a missing one passes (relay -n). Returns 0, or a negative
 * ERR_* code with the reason (and errno's text) in err.
 */
int store_check_dir(const char *path, int create, char *err, size_t errlen);

/*
 * Checks (2) and (3) for path, whose directory passed store_check_dir.
 * The caller holds PATH/relay.lock (no relay writes it meanwhile).
 * Returns 0 (also for a directory that has no store yet), ERR_CORRUPT with
 * what is damaged and what to do in err, or another ERR_* code.
 */
int store_check_data(const char *path, char *err, size_t errlen);

/* Writes PATH/relay.id if it is not there yet (after the store was
 * opened). Returns 0 or a negative ERR_* code. */
int store_check_mark(const char *path);

/*
 * relay -n: checks (1) without creating anything, then (2) and (3) when
 * the directory holds a store and no relay holds its lock. Returns 0 or a
 * negative ERR_* code with the reason in err.
 */
int store_check_config(const char *path, char *err, size_t errlen);

#endif
