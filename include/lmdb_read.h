/*
 * lmdb_read.h - a bounds-checked reader of LMDB's data file (data.mdb),
 * independent of liblmdb: it reads pages with pread, checks every offset
 * against the page and every page number against the file before using
 * it, and reports what is wrong instead of crashing. The relay uses it to
 * check a data directory before LMDB walks it (store_check.h) and to read
 * what is left of a damaged one (salvage.h).
 *
 * LMDB's on-disk format, as liblmdb 0.9 (MDB_DATA_VERSION 1) writes it on
 * a 64-bit little-endian host (mdb.c: MDB_page, MDB_meta, MDB_db,
 * MDB_node). The file is an array of pages of psize bytes; page n starts
 * at n * psize. Every page begins with a 16-byte header:
 *
 *   +--------------------+--------+---------+-----------------------------+
 *   | pgno u64           | pad u16| flags u16| lower u16 | upper u16       |
 *   +--------------------+--------+---------+-----------------------------+
 *   (an overflow page has one u32 "pages" where lower/upper are)
 *
 *   flags: P_BRANCH 0x01, P_LEAF 0x02, P_OVERFLOW 0x04, P_META 0x08,
 *          P_LEAF2 0x20, P_SUBP 0x40 (others are in-memory only)
 *
 * Pages 0 and 1 are meta pages (P_META); after the header:
 *
 *   magic u32 0xBEEFC0DE | version u32 (1) | address u64 | mapsize u64 |
 *   free DB: MDB_db | main DB: MDB_db | last_pgno u64 | txnid u64
 *
 * The meta with the larger txnid is the current one; the free DB's pad
 * field holds the page size. MDB_db (48 bytes):
 *
 *   pad u32 | flags u16 | depth u16 | branch_pages u64 | leaf_pages u64 |
 *   overflow_pages u64 | entries u64 | root u64 (~0: empty tree)
 *
 * Branch and leaf pages: after the header, (lower - 16) / 2 u16 offsets
 * (from the page start) of their nodes, sorted by key; the nodes lie
 * between upper and the end of the page, each on an even offset:
 *
 *   lo u16 | hi u16 | flags u16 | ksize u16 | key | data
 *
 *   branch node: the child's page number is lo | hi << 16 | flags << 32;
 *                the key of node 0 is not used (the child holds the
 *                smallest keys); child i holds keys >= key i and
 *                < key i+1.
 *   leaf node:   data size lo | hi << 16; flags F_BIGDATA 0x01 (data is
 *                the u64 page number of an overflow run holding it),
 *                F_SUBDATA 0x02 (data is the MDB_db of a named database,
 *                in the main DB), F_DUPDATA 0x04 (not used by the relay).
 *   overflow:    "pages" consecutive pages; the value starts after the
 *                first page's header.
 *
 * Keys sort by memcmp, a shorter key first when one is a prefix of the
 * other; the free DB's keys are u64 transaction ids (integer order).
 * A tree of depth d has branch pages on levels d..2 and leaves on level 1.
 *
 * What the reader checks on each branch and leaf page it reads: the page
 * number is inside the file and matches the page's own pgno; the type is
 * what the tree's depth says; 16 <= lower <= upper <= psize; each node lies
 * in [upper, psize); key sizes are 1..511 (not node 0 of a branch); keys
 * rise strictly and stay within the bounds the parent gives; a leaf's
 * flags are known; an overflow run's first page is an overflow page, inside
 * the file and large enough for its value. At the end of a tree the pages
 * and entries counted equal its MDB_db record's. Overflow contents are not
 * read unless the caller wants the values.
 */
#ifndef RELAY_LMDB_READ_H
#define RELAY_LMDB_READ_H

#include <stddef.h>
#include <stdint.h>

#define LMDB_PAGEHDRSZ 16
#define LMDB_NODESIZE 8
#define LMDB_MAGIC 0xBEEFC0DEu
#define LMDB_VERSION 1
#define LMDB_MAXKEY 511
#define LMDB_MAXDEPTH 32
#define LMDB_NOPAGE UINT64_MAX

#define LMDB_P_BRANCH 0x01
#define LMDB_P_LEAF 0x02
#define LMDB_P_OVERFLOW 0x04
#define LMDB_P_META 0x08
#define LMDB_P_LEAF2 0x20
#define LMDB_P_SUBP 0x40
#define LMDB_P_TYPES 0x6f

#define LMDB_F_BIGDATA 0x01
#define LMDB_F_SUBDATA 0x02
#define LMDB_F_DUPDATA 0x04

/* An MDB_db record, decoded. */
struct lmdb_db {
	uint32_t pad;
	uint16_t flags;
	uint16_t depth;
	uint64_t branch_pages, leaf_pages, overflow_pages, entries;
	uint64_t root;
};

/* An open data file and its current meta page. */
struct lmdb_file {
	int fd;
	char path[4096];
	uint64_t size;        /* bytes of the file */
	unsigned psize;
	uint64_t pages;       /* whole pages in the file */
	uint64_t last_pgno;   /* the meta's last used page */
	uint64_t txnid;
	int meta;             /* 0 or 1: the current meta page */
	int metas_ok;         /* how many meta pages passed their checks */
	struct lmdb_db free_db, main_db;
};

/* Where a walk found damage (kept for the first few). */
#define LMDB_SAMPLES 8

/* What one walk of a tree met. */
struct lmdb_walk {
	const char *name;     /* in: the tree's name, for messages */
	int want_values;      /* in: read overflow values for the callback */
	uint64_t branch_pages, leaf_pages, overflow_pages, entries;
	uint64_t bad_pages;   /* branch/leaf pages that failed (not read on) */
	uint64_t bad_entries; /* entries whose overflow run failed */
	uint64_t bad_pgno[LMDB_SAMPLES];
	unsigned nbad;
	char problem[512];    /* the first failure, "" if none */
};

/* One entry of a leaf page that passed its checks. val is NULL when the
 * walk does not want values and the value is in an overflow run. */
struct lmdb_entry {
	const uint8_t *key;   /* ref: the page buffer */
	size_t klen;
	const uint8_t *val;   /* ref: valid during the callback only */
	size_t vlen;
	unsigned flags;       /* F_BIGDATA, F_SUBDATA */
	uint64_t leaf_pgno;
};

/* Returns 0 to go on, anything else to stop the walk (returned by it). */
typedef int (*lmdb_entry_fn)(void *arg, const struct lmdb_entry *e);

/*
 * Opens path and reads its meta pages. strict: both meta pages must pass
 * (as liblmdb requires); otherwise one is enough (for salvage). Returns 0,
 * ERR_NOTFOUND (no such file), ERR_IO, or ERR_CORRUPT with the reason in
 * err (the file is then closed).
 */
int lmdb_file_open(struct lmdb_file *f, const char *path, int strict,
		   char *err, size_t errlen);
void lmdb_file_close(struct lmdb_file *f);

/*
 * Walks the tree db (of f) in key order, calling fn for each entry of each
 * leaf page that passed its checks. integer_keys: the free DB's order.
 * Damage is counted in w (which the caller zeroes, setting want_values)
 * and the walk goes on past it. Returns 0 when the walk found nothing
 * wrong, ERR_CORRUPT when it did (w says what), ERR_NOMEM, or what fn
 * returned to stop it.
 */
int lmdb_walk_tree(struct lmdb_file *f, const struct lmdb_db *db,
		   int integer_keys, lmdb_entry_fn fn, void *arg,
		   struct lmdb_walk *w);

/*
 * Looks key up in the tree db (of f, byte-ordered keys), checking each
 * page on the way down as the walk does, and calls fn with its entry
 * (value read, overflow or not). Returns what fn returned, ERR_NOTFOUND
 * (no such key), ERR_CORRUPT (a page on the way, or the value's overflow
 * run, failed its checks: the key may be there), or ERR_NOMEM.
 */
int lmdb_get(struct lmdb_file *f, const struct lmdb_db *db,
	     const uint8_t *key, size_t klen, lmdb_entry_fn fn, void *arg);

/* Decodes a 48-byte MDB_db record. */
void lmdb_db_decode(const uint8_t *p, struct lmdb_db *db);

/*
 * Finds the named database name in the main DB. Returns 0, ERR_NOTFOUND,
 * or ERR_CORRUPT (the main DB's walk failed; w says how, and a database
 * on a damaged page may be missed).
 */
int lmdb_find_db(struct lmdb_file *f, const char *name, struct lmdb_db *db,
		 struct lmdb_walk *w);

#endif
