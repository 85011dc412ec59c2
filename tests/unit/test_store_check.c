/*
 * test_store_check.c - the data file reader (lmdb_read) and the data
 * directory checks (store_check) on real LMDB files, damaged by hand: a
 * cut file, a node offset outside its page, keys out of order, a branch
 * pointing past the file, a zeroed overflow page, a database record whose
 * counts differ from its tree, a broken meta page; a missing or empty
 * data.mdb beside relay.id; a path that is a file, a shared or a foreign
 * directory. Each must be reported as damage, never read past a page.
 */
#include "lmdb_read.h"
#include "store_check.h"

#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "err.h"
#include "tmpdir.h"
#include "unit.h"

#define NKEYS 400
#define BIG_EVERY 50       /* every 50th value is large: an overflow run */
#define BIG_LEN 9000

static char dir[64], file[128], why[1024];

static void key_of(int i, char *k)
{
	snprintf(k, 16, "key%06d", i);
}

/* A fresh store directory with one named database "queue": NKEYS keys,
 * small values but every BIG_EVERY-th one of BIG_LEN bytes. */
static int make_env(void)
{
	static uint8_t big[BIG_LEN];
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	char k[16], small[100];
	int rc;

	snprintf(dir, sizeof(dir), "/tmp/relay-test-check-XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	chmod(dir, 0700);
	snprintf(file, sizeof(file), "%s/data.mdb", dir);
	memset(big, 'b', sizeof(big));
	if ((rc = mdb_env_create(&env)) != 0 ||
	    (rc = mdb_env_set_maxdbs(env, 4)) != 0 ||
	    (rc = mdb_env_set_mapsize(env, 64 << 20)) != 0 ||
	    (rc = mdb_env_open(env, dir, 0, 0600)) != 0)
		return -1;
	if ((rc = mdb_txn_begin(env, NULL, 0, &txn)) == 0 &&
	    (rc = mdb_dbi_open(txn, "queue", MDB_CREATE, &dbi)) == 0) {
		for (int i = 0; i < NKEYS && rc == 0; i++) {
			MDB_val kv, vv;
			key_of(i, k);
			memset(small, 'a' + i % 26, sizeof(small));
			kv.mv_data = k;
			kv.mv_size = strlen(k);
			vv.mv_data = i % BIG_EVERY ? small : (char *)big;
			vv.mv_size = i % BIG_EVERY ? sizeof(small) : sizeof(big);
			rc = mdb_put(txn, dbi, &kv, &vv, 0);
		}
		if (rc == 0)
			rc = mdb_txn_commit(txn);
		else
			mdb_txn_abort(txn);
	}
	mdb_env_close(env);
	return rc == 0 ? 0 : -1;
}

static void cleanup(void)
{
	tmpdir_remove(dir);
	dir[0] = '\0';
}

/* Finds the queue's record and tree through the reader. */
static int find_queue(struct lmdb_file *f, struct lmdb_db *db)
{
	struct lmdb_walk w;

	memset(&w, 0, sizeof(w));
	if (lmdb_file_open(f, file, 1, why, sizeof(why)) < 0)
		return -1;
	return lmdb_find_db(f, "queue", db, &w);
}

static int poke(uint64_t off, const void *p, size_t n)
{
	int fd = open(file, O_WRONLY);
	ssize_t w;

	if (fd < 0)
		return -1;
	w = pwrite(fd, p, n, (off_t)off);
	close(fd);
	return w == (ssize_t)n ? 0 : -1;
}

static int peek(uint64_t off, void *p, size_t n)
{
	int fd = open(file, O_RDONLY);
	ssize_t r;

	if (fd < 0)
		return -1;
	r = pread(fd, p, n, (off_t)off);
	close(fd);
	return r == (ssize_t)n ? 0 : -1;
}

struct pages {
	uint64_t leaf[64];
	size_t nleaf;
};

static int note_leaf(void *arg, const struct lmdb_entry *e)
{
	struct pages *p = arg;

	if ((p->nleaf == 0 || p->leaf[p->nleaf - 1] != e->leaf_pgno) &&
	    p->nleaf < 64)
		p->leaf[p->nleaf++] = e->leaf_pgno;
	return 0;
}

/* The queue's leaf pages in key order, its root, and the page size. */
static int queue_pages(struct pages *p, uint64_t *root, unsigned *psize)
{
	struct lmdb_file f;
	struct lmdb_db db;
	struct lmdb_walk w;
	int rc;

	memset(p, 0, sizeof(*p));
	if (find_queue(&f, &db) != 0)
		return -1;
	memset(&w, 0, sizeof(w));
	rc = lmdb_walk_tree(&f, &db, 0, note_leaf, p, &w);
	*root = db.root;
	*psize = f.psize;
	lmdb_file_close(&f);
	return rc;
}

/* store_check_data must refuse with a message that holds want. */
static int refused_with(const char *want)
{
	int rc;

	why[0] = '\0';
	rc = store_check_data(dir, why, sizeof(why));
	if (rc != ERR_CORRUPT || strstr(why, want) == NULL) {
		snprintf(unit_msg, sizeof(unit_msg), "rc %d, wanted ERR_CORRUPT "
			 "and \"%s\" in: %.300s", rc, want, why);
		return 0;
	}
	return 1;
}

#define CHECK_REFUSED(want)                                                   \
	do {                                                                  \
		if (!refused_with(want)) {                                    \
			unit_cur_failed = 1;                                  \
			cleanup();                                            \
			return;                                               \
		}                                                             \
	} while (0)

static void test_intact_store_passes(void)
{
	struct lmdb_file f;
	struct lmdb_db db;
	struct lmdb_walk w;
	int rc;

	CHECK(make_env() == 0);
	rc = store_check_data(dir, why, sizeof(why));
	CHECK_EQ_INT(rc, 0);
	CHECK(find_queue(&f, &db) == 0);
	memset(&w, 0, sizeof(w));
	w.want_values = 1;
	rc = lmdb_walk_tree(&f, &db, 0, NULL, NULL, &w);
	lmdb_file_close(&f);
	cleanup();
	CHECK_EQ_INT(rc, 0);
	CHECK_EQ_INT(w.entries, NKEYS);
	CHECK_EQ_INT(db.entries, NKEYS);
	CHECK_EQ_INT(w.leaf_pages, db.leaf_pages);
	CHECK_EQ_INT(w.overflow_pages, db.overflow_pages);
	CHECK(w.overflow_pages >= NKEYS / BIG_EVERY * 3);
	CHECK(db.depth >= 2);
}

static void test_cut_file(void)
{
	struct pages p;
	uint64_t root;
	unsigned psize;

	CHECK(make_env() == 0);
	CHECK(queue_pages(&p, &root, &psize) == 0);
	CHECK(truncate(file, 3 * (off_t)psize) == 0);
	CHECK_REFUSED("past the end of the file");
	CHECK_REFUSED("relay salvage");
	CHECK(truncate(file, 100) == 0);
	CHECK_REFUSED("meta page 0: past the end");
	cleanup();
}

static void test_node_offset_outside_page(void)
{
	struct pages p;
	uint64_t root;
	unsigned psize;
	uint8_t off[2];
	char want[64];

	CHECK(make_env() == 0);
	CHECK(queue_pages(&p, &root, &psize) == 0 && p.nleaf > 2);
	off[0] = (uint8_t)((psize - 2) & 0xff);
	off[1] = (uint8_t)((psize - 2) >> 8);
	CHECK(poke(p.leaf[1] * psize + 16, off, 2) == 0);
	snprintf(want, sizeof(want), "page %llu of queue: node 0 at offset",
		 (unsigned long long)p.leaf[1]);
	CHECK_REFUSED(want);
	cleanup();
}

static void test_keys_out_of_order(void)
{
	struct pages p;
	uint64_t root;
	unsigned psize;
	uint8_t ptrs[4], swapped[4];

	CHECK(make_env() == 0);
	CHECK(queue_pages(&p, &root, &psize) == 0 && p.nleaf > 2);
	CHECK(peek(p.leaf[2] * psize + 16, ptrs, 4) == 0);
	memcpy(swapped, ptrs + 2, 2);
	memcpy(swapped + 2, ptrs, 2);
	CHECK(poke(p.leaf[2] * psize + 16, swapped, 4) == 0);
	CHECK_REFUSED("keys out of order");
	cleanup();
}

static void test_branch_points_past_file(void)
{
	struct pages p;
	uint64_t root;
	unsigned psize;
	uint8_t hdr[16], node[8];
	unsigned off;
	struct lmdb_file f;
	struct lmdb_db db;
	struct lmdb_walk w;

	CHECK(make_env() == 0);
	CHECK(queue_pages(&p, &root, &psize) == 0);
	CHECK(peek(root * psize, hdr, 16) == 0);
	CHECK_EQ_INT(hdr[10] & LMDB_P_TYPES, LMDB_P_BRANCH);
	/* The second child of the root: lo/hi/flags hold its page number. */
	CHECK(peek(root * psize + 18, hdr, 2) == 0);
	off = hdr[0] | hdr[1] << 8;
	CHECK(peek(root * psize + off, node, 8) == 0);
	node[0] = node[1] = node[2] = 0xff;
	node[3] = 0x7f;
	CHECK(poke(root * psize + off, node, 6) == 0);
	CHECK_REFUSED("points past the last page");
	/* The walk goes on past the damage: the other leaves are read. */
	CHECK(find_queue(&f, &db) == 0);
	memset(&w, 0, sizeof(w));
	CHECK_EQ_INT(lmdb_walk_tree(&f, &db, 0, NULL, NULL, &w), ERR_CORRUPT);
	lmdb_file_close(&f);
	cleanup();
	CHECK_EQ_INT(w.bad_pages, 1);
	CHECK(w.entries > 0 && w.entries < NKEYS);
}

/* The first overflow run's first page zeroed: the entry is lost, the
 * others on its leaf page are still read. */
static void test_zeroed_overflow_page(void)
{
	static uint8_t page[65536];
	struct pages p;
	uint64_t root, ovpg;
	unsigned psize;
	struct lmdb_file f;
	struct lmdb_db db;
	struct lmdb_walk w;
	uint8_t *k;

	CHECK(make_env() == 0);
	CHECK(queue_pages(&p, &root, &psize) == 0);
	CHECK(peek(p.leaf[0] * psize, page, psize) == 0);
	k = memmem(page, psize, "key000000", 9);
	CHECK(k != NULL && (k[-4] & LMDB_F_BIGDATA));
	memcpy(&ovpg, k + 9, 8);
	memset(page, 0, psize);
	CHECK(poke(ovpg * psize, page, psize) == 0);
	CHECK_REFUSED("not the overflow run");
	CHECK(find_queue(&f, &db) == 0);
	memset(&w, 0, sizeof(w));
	w.want_values = 1;
	CHECK_EQ_INT(lmdb_walk_tree(&f, &db, 0, NULL, NULL, &w), ERR_CORRUPT);
	lmdb_file_close(&f);
	cleanup();
	CHECK_EQ_INT(w.bad_entries, 1);
	CHECK_EQ_INT(w.bad_pages, 0);
	CHECK_EQ_INT(w.entries, NKEYS);
}

/* The queue's record in the main DB says one entry more than its tree. */
static void test_record_counts_differ(void)
{
	static uint8_t page[65536];
	struct lmdb_file f;
	uint64_t entries;
	uint8_t *k;

	CHECK(make_env() == 0);
	CHECK(lmdb_file_open(&f, file, 1, why, sizeof(why)) == 0);
	CHECK(f.main_db.depth == 1);
	CHECK(peek(f.main_db.root * f.psize, page, f.psize) == 0);
	k = memmem(page, f.psize, "queue", 5);
	CHECK(k != NULL && (k[-4] & LMDB_F_SUBDATA));
	memcpy(&entries, k + 5 + 32, 8);
	entries++;
	CHECK(poke(f.main_db.root * f.psize + (uint64_t)(k - page) + 5 + 32,
		   &entries, 8) == 0);
	lmdb_file_close(&f);
	CHECK_REFUSED("its record says");
	cleanup();
}

/* Deletes the first n keys in a transaction of its own: the pages it
 * frees are listed in the free-page DB. */
static int delete_keys(int n)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	char k[16];
	int rc;

	if (mdb_env_create(&env) != 0)
		return -1;
	mdb_env_set_maxdbs(env, 4);
	rc = mdb_env_open(env, dir, 0, 0600);
	if (rc == 0 && (rc = mdb_txn_begin(env, NULL, 0, &txn)) == 0) {
		rc = mdb_dbi_open(txn, "queue", 0, &dbi);
		for (int i = 0; i < n && rc == 0; i++) {
			MDB_val kv;
			key_of(i, k);
			kv.mv_data = k;
			kv.mv_size = strlen(k);
			rc = mdb_del(txn, dbi, &kv, NULL);
		}
		if (rc == 0)
			rc = mdb_txn_commit(txn);
		else
			mdb_txn_abort(txn);
	}
	mdb_env_close(env);
	return rc == 0 ? 0 : -1;
}

/* A free-page record that lists a page past the last one. */
static void test_free_list_past_last_page(void)
{
	static uint8_t page[65536];
	struct lmdb_file f;
	unsigned off;
	uint64_t bogus = (uint64_t)1 << 40;
	int rc;

	CHECK(make_env() == 0);
	CHECK(delete_keys(100) == 0);
	rc = store_check_data(dir, why, sizeof(why));
	CHECK_EQ_INT(rc, 0);
	CHECK(lmdb_file_open(&f, file, 1, why, sizeof(why)) == 0);
	lmdb_file_close(&f);
	CHECK(f.free_db.root != LMDB_NOPAGE && f.free_db.depth == 1);
	CHECK(peek(f.free_db.root * f.psize, page, f.psize) == 0);
	/* The first record: node header, 8-byte key, count, first page. */
	off = page[16] | page[17] << 8;
	CHECK((page[off + 4] & LMDB_F_BIGDATA) == 0);
	CHECK(poke(f.free_db.root * f.psize + off + 8 + 8 + 8, &bogus, 8) == 0);
	CHECK_REFUSED("the free-page DB: leaf page");
	CHECK_REFUSED("as free (last page");
	cleanup();
}

static void test_meta_pages(void)
{
	struct lmdb_file f;
	uint32_t bad = 0x12345678;
	int rc;

	CHECK(make_env() == 0);
	CHECK(poke(16, &bad, 4) == 0);
	CHECK_REFUSED("meta page 0: not an LMDB meta page");
	/* salvage opens it with the other meta page */
	rc = lmdb_file_open(&f, file, 0, why, sizeof(why));
	lmdb_file_close(&f);
	cleanup();
	CHECK_EQ_INT(rc, 0);
	CHECK_EQ_INT(f.meta, 1);
	CHECK_EQ_INT(f.metas_ok, 1);
}

static void test_identity(void)
{
	char p[160];
	int rc;

	CHECK(make_env() == 0);
	CHECK_EQ_INT(store_check_mark(dir), 0);
	snprintf(p, sizeof(p), "%s/%s", dir, STORE_ID_FILE);
	CHECK(access(p, R_OK) == 0);
	/* A relay.id of another format is refused. */
	{
		FILE *fp = fopen(p, "w");
		CHECK(fp != NULL);
		fputs("relay store\nformat=2\n", fp);
		fclose(fp);
	}
	why[0] = '\0';
	rc = store_check_data(dir, why, sizeof(why));
	CHECK_EQ_INT(rc, ERR_FORMAT);
	CHECK(strstr(why, "format 2, this relay reads 1") != NULL);
	CHECK(unlink(p) == 0);
	CHECK_EQ_INT(store_check_mark(dir), 0);
	CHECK(truncate(file, 0) == 0);
	CHECK_REFUSED("data.mdb is empty (0 bytes)");
	CHECK(unlink(file) == 0);
	CHECK_REFUSED("data.mdb is missing");
	/* Without relay.id an empty directory is a new store. */
	CHECK(unlink(p) == 0);
	rc = store_check_data(dir, why, sizeof(why));
	cleanup();
	CHECK_EQ_INT(rc, 0);
}

static void test_directory(void)
{
	char p[160], q[160];
	struct stat sb;
	int r1, r2, r3, r4, r5;
	FILE *fp;

	snprintf(dir, sizeof(dir), "/tmp/relay-test-checkdir-XXXXXX");
	CHECK(mkdtemp(dir) != NULL);
	snprintf(p, sizeof(p), "%s/new/store", dir);
	r1 = store_check_dir(p, 1, why, sizeof(why));
	r2 = stat(p, &sb) == 0 && S_ISDIR(sb.st_mode) && (sb.st_mode & 0777) == 0700;
	snprintf(q, sizeof(q), "%s/file", dir);
	fp = fopen(q, "w");
	if (fp != NULL)
		fclose(fp);
	r3 = store_check_dir(q, 1, why, sizeof(why)) < 0 &&
	     strstr(why, "not a directory") != NULL;
	chmod(p, 01777);
	r4 = store_check_dir(p, 1, why, sizeof(why)) < 0 &&
	     strstr(why, "writable by others") != NULL &&
	     stat(p, &sb) == 0 && (sb.st_mode & 07777) == 01777;
	chmod(p, 0750);
	snprintf(q, sizeof(q), "%s/new/store/notes", dir);
	fp = fopen(q, "w");
	if (fp != NULL)
		fclose(fp);
	r5 = store_check_dir(p, 1, why, sizeof(why)) < 0 &&
	     strstr(why, "\"notes\"") != NULL &&
	     stat(p, &sb) == 0 && (sb.st_mode & 0777) == 0750;
	cleanup();
	CHECK_EQ_INT(r1, 0);
	CHECK(r2);
	CHECK(r3);
	CHECK(r4);
	CHECK(r5);
}

/* An overflow page number of the queue (its first large value's run). */
static int note_overflow(void *arg, const struct lmdb_entry *e)
{
	uint64_t *ov = arg;

	if ((e->flags & LMDB_F_BIGDATA) && *ov == 0)
		memcpy(ov, e->key + e->klen, 8);
	return 0;
}

/* The main DB's node of "queue" (a named database) gets F_BIGDATA and the
 * page number of an intact overflow run: a node liblmdb never writes, that
 * the check must refuse, not crash on (it ran in a child: a signal there
 * is the crash). store_check.c's collect_named once decoded the NULL
 * value the walk hands it for such a node. */
static void test_named_db_node_bigdata(void)
{
	struct lmdb_file f;
	struct lmdb_db db;
	struct lmdb_walk w;
	uint64_t ov = 0, mroot;
	uint8_t hdr[18], flags[2];
	unsigned psize, node;
	pid_t pid;
	int status = 0;

	CHECK(make_env() == 0);
	CHECK(find_queue(&f, &db) == 0);
	memset(&w, 0, sizeof(w));
	lmdb_walk_tree(&f, &db, 0, note_overflow, &ov, &w);
	mroot = f.main_db.root;
	psize = f.psize;
	lmdb_file_close(&f);
	CHECK(ov != 0);
	CHECK(peek(mroot * psize, hdr, sizeof(hdr)) == 0);
	node = (unsigned)(hdr[16] | hdr[17] << 8);
	CHECK(peek(mroot * psize + node + 4, flags, 2) == 0);
	flags[0] |= LMDB_F_BIGDATA;
	CHECK(poke(mroot * psize + node + 4, flags, 2) == 0);
	CHECK(poke(mroot * psize + node + 8 + 5, &ov, 8) == 0); /* "queue" */
	fflush(NULL);
	if ((pid = fork()) == 0)
		_exit(store_check_data(dir, why, sizeof(why)) == ERR_CORRUPT ? 0 : 1);
	CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
	cleanup();
	if (WIFSIGNALED(status))
		snprintf(unit_msg, sizeof(unit_msg), "store_check_data died of "
			 "signal %d", WTERMSIG(status));
	CHECK(!WIFSIGNALED(status));
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

int main(void)
{
	RUN(test_intact_store_passes);
	RUN(test_cut_file);
	RUN(test_node_offset_outside_page);
	RUN(test_keys_out_of_order);
	RUN(test_branch_points_past_file);
	RUN(test_zeroed_overflow_page);
	RUN(test_record_counts_differ);
	RUN(test_free_list_past_last_page);
	RUN(test_meta_pages);
	RUN(test_identity);
	RUN(test_directory);
	RUN(test_named_db_node_bigdata);
	return unit_done();
}
