/*
 * store.c - the LMDB buffer: opening, the format check, transactions and
 * the failure seams (see store.h and store_int.h).
 */
#include "store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "store_check.h"
#include "usage.h"

#define STORE_MAX_DBS 16
#define STORE_MAX_READERS 512

int (*store_seam_put)(MDB_txn *txn, MDB_dbi dbi, MDB_val *key, MDB_val *val,
		      unsigned flags) = mdb_put;
int (*store_seam_commit)(MDB_txn *txn) = mdb_txn_commit;
int (*store_seam_sync)(MDB_env *env, int force) = mdb_env_sync;

int store_lock(const char *path)
{
	char file[4200];
	int fd;

	snprintf(file, sizeof(file), "%s/relay.lock", path);
	fd = open(file, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return ERR_FAIL;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno;
		close(fd);
		return e == EWOULDBLOCK ? ERR_BUSY : ERR_FAIL;
	}
	return fd;
}

void store_unlock(int fd)
{
	if (fd >= 0)
		close(fd);
}

/* A u32 from meta: 1 and *out, 0 if absent, or an LMDB code (ERR_CORRUPT
 * when the value is not 4 bytes). */
static int meta_u32(MDB_txn *txn, const struct store *st, const char *name,
		    uint32_t *out)
{
	MDB_val k = {strlen(name), (void *)name}, v;
	int rc = mdb_get(txn, st->meta, &k, &v);

	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc != 0)
		return rc;
	if (v.mv_size != sizeof(*out))
		return MDB_CORRUPTED;
	memcpy(out, v.mv_data, sizeof(*out));
	return 1;
}

static int meta_put_u32(MDB_txn *txn, const struct store *st,
			const char *name, uint32_t val)
{
	MDB_val k = {strlen(name), (void *)name}, v = {sizeof(val), &val};

	return store_seam_put(txn, st->meta, &k, &v, 0);
}

/* Format 1 -> 2: the dedup database's digest records mean nothing now. */
static int migrate_1(MDB_txn *txn, struct store *st)
{
	int rc = mdb_drop(txn, st->dedup, 0);

	if (rc == 0)
		log_msg(LOG_INFO, "buffer format 1 converted to 2",
			"what=\"old dedup records emptied\"");
	return rc;
}

/*
 * Checks (writable: converts) the versions in meta (see store.h) and reads
 * next_seq. Returns 0, or an ERR_* code with a reason in err (whatever
 * failed: a newer format, or LMDB's own error).
 */
static int check_format(MDB_txn *txn, struct store *st, const char *path,
			char *err, size_t errlen)
{
	uint32_t fmt = 0, ufmt = 0;
	MDB_val k = {8, "next_seq"}, v;
	int rc, have_fmt, have_ufmt;

	if ((rc = have_fmt = meta_u32(txn, st, "format", &fmt)) < 0 ||
	    (rc = have_ufmt = meta_u32(txn, st, "usage_format", &ufmt)) < 0)
		goto lmdb;
	if (have_fmt == 0 && st->readonly) {
		snprintf(err, errlen, "%s holds no relay buffer (no format record)",
			 path);
		return ERR_FORMAT;
	}
	if (have_fmt == 0)
		fmt = STORE_FORMAT;
	if (fmt > STORE_FORMAT || fmt == 0) {
		snprintf(err, errlen, "%s: buffer format %u, this relay reads "
			 "1 to %u; run the newer relay that wrote it, or move the "
			 "directory away", path, fmt, STORE_FORMAT);
		return ERR_FORMAT;
	}
	if (have_ufmt == 1 && ufmt > USAGE_FORMAT) {
		snprintf(err, errlen, "%s: usage records of format %u, this relay "
			 "reads up to %u; run the newer relay that wrote them, or "
			 "move the directory away", path, ufmt, USAGE_FORMAT);
		return ERR_FORMAT;
	}
	/* A reader takes formats 1 to 3 as they are: only the dedup
	 * database, which it does not read, changed, and a dest or series
	 * database that is missing reads as empty. */
	if (!st->readonly) {
		if (fmt == 1 && (rc = migrate_1(txn, st)) != 0)
			goto lmdb;
		/* Format 2 -> 3: open_dbs made the dest database; the
		 * entries buffered have no record (store.h). */
		if (fmt == 2)
			log_msg(LOG_INFO, "buffer format 2 converted to 3",
				"what=\"destination records added; entries "
				"already buffered go where the configuration says\"");
		/* Format 3 -> 4: open_dbs made the series database, empty:
		 * the tenants' series counts start from nothing. */
		if (fmt >= 2 && fmt <= 3)
			log_msg(LOG_INFO, "buffer format 3 converted to 4",
				"what=\"series database added (max_series)\"");
		/* Format 4 -> 5: open_dbs made the lanes database; the
		 * entries buffered are of version 1 (store.h). */
		if (fmt <= 4)
			log_msg(LOG_INFO, "buffer format 4 converted to 5",
				"what=\"delivery lanes added; entries already "
				"buffered go first, whole, in order\"");
		/* Format 5 -> 6: open_dbs made the tails database; the
		 * entries buffered are whole, as they were (store.h). */
		if (fmt <= 5)
			log_msg(LOG_INFO, "buffer format 5 converted to 6",
				"what=\"tails database added; entries already "
				"buffered are read as they are\"");
		if (fmt != STORE_FORMAT || have_fmt == 0) {
			if ((rc = meta_put_u32(txn, st, "format", STORE_FORMAT)) != 0)
				goto lmdb;
		}
		if (have_ufmt == 0 || ufmt != USAGE_FORMAT) {
			if ((rc = meta_put_u32(txn, st, "usage_format",
					       USAGE_FORMAT)) != 0)
				goto lmdb;
		}
	}
	rc = mdb_get(txn, st->meta, &k, &v);
	if (rc == 0 && v.mv_size == 8)
		memcpy(&st->next_seq, v.mv_data, 8);
	else if (rc != 0 && rc != MDB_NOTFOUND)
		goto lmdb;
	return 0;
lmdb:
	/* Every failure gets its reason, LMDB's negative codes too. */
	snprintf(err, errlen, "cannot read the format of %s: %s", path,
		 mdb_strerror(rc));
	return err_from_mdb(rc);
}

/* The databases, created when writable. Returns an LMDB code. */
static int open_dbs(MDB_txn *txn, struct store *st)
{
	static const char *const names[] = {"meta", "queue", "setaside", "dedup",
					    "dedup_time", "usage", "usage_hll",
					    "dest", "ha", "series", "lanes", "tails"};
	MDB_dbi *dbis[] = {&st->meta, &st->queue, &st->setaside, &st->dedup,
			   &st->dedup_time, &st->usage, &st->usage_hll,
			   &st->dest, &st->ha, &st->series, &st->lanes,
			   &st->tails};
	unsigned flags = st->readonly ? 0 : MDB_CREATE;
	int rc;

	for (size_t i = 0; i < sizeof(dbis) / sizeof(dbis[0]); i++) {
		rc = mdb_dbi_open(txn, names[i], flags, dbis[i]);
		/* Read only: a database an older relay did not make is
		 * absent (handle 0, LMDB's free list: never read as ours). */
		if (rc == MDB_NOTFOUND && st->readonly) {
			*dbis[i] = 0;
			continue;
		}
		if (rc != 0)
			return rc;
	}
	return 0;
}

static void store_free(struct store *st)
{
	if (st->env != NULL)
		mdb_env_close(st->env);
	store_unlock(st->lock_fd);
	free(st);
}

/* Opens the environment and checks its format. Returns st or NULL. */
static struct store *open_env(struct store *st, const char *path,
			      uint64_t map, char *err, size_t errlen)
{
	unsigned flags = MDB_NOTLS | (st->readonly ? MDB_RDONLY : 0);
	MDB_txn *txn = NULL;
	MDB_stat ms;
	int rc, dead = 0;

	if ((rc = mdb_env_create(&st->env)) != 0 ||
	    (rc = mdb_env_set_maxdbs(st->env, STORE_MAX_DBS)) != 0 ||
	    (rc = mdb_env_set_maxreaders(st->env, STORE_MAX_READERS)) != 0 ||
	    (map > 0 && (rc = mdb_env_set_mapsize(st->env, (size_t)map)) != 0) ||
	    (rc = mdb_env_open(st->env, path, flags, 0600)) != 0) {
		snprintf(err, errlen, "cannot open LMDB in %s: %s", path,
			 mdb_strerror(rc));
		goto fail;
	}
	mdb_env_stat(st->env, &ms);
	st->page_size = ms.ms_psize;
	if (!st->readonly) {
		mdb_reader_check(st->env, &dead);
		if (dead > 0)
			log_msg(LOG_INFO, "cleared stale LMDB readers", "count=%d", dead);
	}
	if ((rc = mdb_txn_begin(st->env, NULL, st->readonly ? MDB_RDONLY : 0,
				&txn)) != 0 ||
	    (rc = open_dbs(txn, st)) != 0) {
		snprintf(err, errlen, "cannot open databases in %s: %s", path,
			 mdb_strerror(rc));
		goto fail;
	}
	if (st->meta == 0 && st->readonly) {
		snprintf(err, errlen, "%s holds no relay buffer", path);
		goto fail;
	}
	if (check_format(txn, st, path, err, errlen) != 0)
		goto fail;
	rc = st->readonly ? mdb_txn_commit(txn) : store_seam_commit(txn);
	txn = NULL;
	if (rc != 0) {
		snprintf(err, errlen, "cannot initialise %s: %s", path,
			 mdb_strerror(rc));
		goto fail;
	}
	return st;
fail:
	if (txn != NULL)
		mdb_txn_abort(txn);
	store_free(st);
	return NULL;
}

struct store *store_open(const char *path, uint64_t max_size, char *err,
			 size_t errlen)
{
	struct store *st = calloc(1, sizeof(*st));
	uint64_t map;

	if (st == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	st->max_size = max_size;
	st->next_seq = 1;
	st->lock_fd = -1;
	if (store_check_dir(path, 1, err, errlen) < 0) {
		free(st);
		return NULL;
	}
	st->lock_fd = store_lock(path);
	if (st->lock_fd < 0) {
		if (st->lock_fd == ERR_BUSY)
			snprintf(err, errlen, "another relay is using %s", path);
		else
			snprintf(err, errlen, "cannot lock %s/relay.lock: %s",
				 path, strerror(errno));
		free(st);
		return NULL;
	}
	if (store_check_data(path, err, errlen) < 0)
		goto fail;
	/* Headroom above max_size: deletes need free pages to copy on write
	 * even when the buffer is at its limit. The file grows only as pages
	 * are used; the map is address space. */
	map = max_size + (max_size / 4 > (64u << 20) ? max_size / 4 : (64u << 20));
	st = open_env(st, path, map, err, errlen);
	if (st != NULL)
		store_check_mark(path);
	return st;
fail:
	store_free(st);
	return NULL;
}

struct store *store_open_readonly(const char *path, char *err, size_t errlen)
{
	struct store *st = calloc(1, sizeof(*st));

	if (st == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	st->lock_fd = -1;
	st->readonly = 1;
	st->next_seq = 1;
	return open_env(st, path, 0, err, errlen);
}

void store_close(struct store *st)
{
	int rc;

	if (st == NULL)
		return;
	if (st->wtxn.txn != NULL)
		store_txn_abort(&st->wtxn);
	if (!st->readonly && (rc = store_seam_sync(st->env, 1)) != 0)
		log_msg(LOG_ERROR, "cannot sync the buffer", "error=\"%s\"",
			mdb_strerror(rc));
	store_free(st);
}

int store_txn_begin(struct store *st, struct store_txn **t)
{
	int rc;

	if (st->readonly || st->wtxn.txn != NULL)
		return ERR_FAIL;
	if ((rc = mdb_txn_begin(st->env, NULL, 0, &st->wtxn.txn)) != 0) {
		st->wtxn.txn = NULL;
		return err_from_mdb(rc);
	}
	st->wtxn.st = st;
	st->wtxn.next_seq = st->next_seq;
	st->wtxn.tails_room = st->tails_room;
	st->wtxn.delete_bytes_left = STORE_DELETE_BYTES_PER_TXN;
	st->wtxn.sweep_looks_left = STORE_SWEEP_LOOKS_PER_TXN;
	*t = &st->wtxn;
	return 0;
}

int store_txn_commit(struct store_txn *t)
{
	struct store *st = t->st;
	MDB_val k = {8, "next_seq"}, v = {8, &t->next_seq};
	int rc = 0;

	if (t->next_seq != st->next_seq)
		rc = store_seam_put(t->txn, st->meta, &k, &v, 0);
	if (rc != 0)
		mdb_txn_abort(t->txn);
	else
		rc = store_seam_commit(t->txn);  /* ends it, failed or not */
	t->txn = NULL;
	if (rc == 0) {
		st->next_seq = t->next_seq;
		st->tails_room = t->tails_room;
	}
	return err_from_mdb(rc);
}

void store_txn_abort(struct store_txn *t)
{
	if (t->txn != NULL)
		mdb_txn_abort(t->txn);
	t->txn = NULL;
}

int store_read_begin(struct store *st, MDB_txn **txn)
{
	int rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, txn);

	if (rc != 0)
		*txn = NULL;
	return err_from_mdb(rc);
}

uint64_t store_db_bytes(MDB_txn *txn, const struct store *st, MDB_dbi dbi)
{
	MDB_stat ms;

	if (mdb_stat(txn, dbi, &ms) != 0)
		return 0;
	return (ms.ms_branch_pages + ms.ms_leaf_pages + ms.ms_overflow_pages) *
	       (uint64_t)st->page_size;
}

uint64_t store_used_bytes(struct store_txn *t)
{
	const struct store *st = t->st;
	MDB_dbi dbis[] = {1 /* main */, st->meta, st->queue, st->setaside,
			  st->dedup, st->dedup_time, st->usage, st->usage_hll,
			  st->dest, st->ha, st->series, st->lanes, st->tails};
	uint64_t bytes = 0;

	for (size_t i = 0; i < sizeof(dbis) / sizeof(dbis[0]); i++)
		bytes += store_db_bytes(t->txn, st, dbis[i]);
	return bytes;
}

uint64_t store_value_footprint(const struct store *st, size_t tlen, uint64_t n)
{
	uint64_t ps = st->page_size ? st->page_size : 4096;
	uint64_t node = 16 + STORE_KEY_MAX;   /* node header, key, index slot */
	size_t cut = store_tail_cut(st, tlen, (size_t)n);

	/* Cut (store_tail.c): the head's overflow pages, exactly filled,
	 * and its node; the tail's bytes in leaf records, a node each. */
	if (cut > 0)
		return cut + 16 + node + (n - cut) + STORE_TAIL_CHUNKS * node;
	/* Node header and key; a large value gets overflow pages of its own. */
	n += node;
	if (n < ps / 4)
		return n;
	return (n + ps - 1) / ps * ps;
}

int store_data_fd(const struct store *st)
{
	int fd;

	return mdb_env_get_fd(st->env, &fd) == 0 ? fd : ERR_FAIL;
}

int store_data_path(const struct store *st, char *out, size_t outlen)
{
	const char *dir;

	if (mdb_env_get_path(st->env, &dir) != 0 ||
	    (size_t)snprintf(out, outlen, "%s/data.mdb", dir) >= outlen)
		return ERR_FAIL;
	return 0;
}

uint64_t store_data_end(const struct store *st)
{
	MDB_envinfo info;

	mdb_env_info(st->env, &info);
	return ((uint64_t)info.me_last_pgno + 1) * store_page_size(st);
}

uint64_t store_map_size(const struct store *st)
{
	MDB_envinfo info;

	mdb_env_info(st->env, &info);
	return info.me_mapsize;
}

unsigned store_page_size(const struct store *st)
{
	return st->page_size ? st->page_size : 4096;
}
