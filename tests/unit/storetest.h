/*
 * storetest.h - what test_store.c and test_writer.c share: the captured
 * requests under tests/fixtures (decoded for comparison), a test's own
 * store directory, config, queue and writer thread (struct env E), batches
 * made from fixtures and their done callbacks (with a gate that can hold
 * the writer in a round), and reading the store back as the forwarder
 * does. A header only, like testlib.h: every function is static inline.
 *
 * Fixtures are read from $RELAY_FIXTURES, or tests/fixtures when unset
 * (run from the top of the tree).
 */
#ifndef RELAY_STORETEST_H
#define RELAY_STORETEST_H

#include "store_int.h"  /* the store's own tests look inside */

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "clock.h"
#include "config.h"
#include "err.h"
#include "ingest.h"
#include "lanes.h"
#include "queue.h"
#include "remote.pb-c.h"
#include "testlib.h"
#include "tmpdir.h"
#include "unit.h"
#include "usage.h"
#include "wire.h"
#include "writer.h"

/* Upper bounds on waiting, so that a broken writer fails a test instead of
 * hanging it (generous: valgrind runs these too). */
#define WAIT_DONE_S 300
#define POLL_TRIES 60000
#define POLL_SLEEP_NS 1000000L

#define MIB (1024ull * 1024)

/* ---- fixtures ---------------------------------------------------------- */

struct fixture {
	const char *name;
	uint8_t *z;        /* compressed body as Prometheus sent it */
	size_t zlen;
	uint8_t *raw;      /* decoded WriteRequest */
	size_t rawlen;
	Prometheus__WriteRequest *req;
	struct wire_counts counts;
};

static struct fixture fx[] = {
	{ .name = "req00000.bin" }, { .name = "req00001.bin" },
	{ .name = "req00002.bin" }, { .name = "req00003.bin" },
	{ .name = "req00004.bin" }, { .name = "req00014.bin" },
	{ .name = "req00044.bin" }, { .name = "req00046.bin" },
};
#define NFX ((int)(sizeof(fx) / sizeof(fx[0])))

/* Reads, decodes and unpacks every fixture of fx[]. Returns 0, or -1 with
 * what was loaded left for free_fixtures() to free. */
static inline int load_fixtures(void)
{
	for (int i = 0; i < NFX; i++) {
		if ((fx[i].z = fixture(fx[i].name, &fx[i].zlen)) == NULL ||
		    (fx[i].raw = uncompress(fx[i].z, fx[i].zlen,
					    &fx[i].rawlen)) == NULL ||
		    (fx[i].req = prometheus__write_request__unpack(
			     NULL, fx[i].rawlen, fx[i].raw)) == NULL) {
			fprintf(stderr, "cannot load fixture %s/%s\n",
				fixture_dir(), fx[i].name);
			return -1;
		}
		ref_counts(fx[i].req, &fx[i].counts);
	}
	return 0;
}

static inline void free_fixtures(void)
{
	for (int i = 0; i < NFX; i++) {
		free(fx[i].z);
		free(fx[i].raw);
		if (fx[i].req != NULL)
			prometheus__write_request__free_unpacked(fx[i].req, NULL);
	}
}

/* ---- the environment of a test ----------------------------------------- */

struct env {
	char dir[64];        /* the test's temporary directory */
	char path[128];      /* the store inside it */
	struct config cfg;
	int have_cfg;
	struct store *st;
	int st_open;
	struct queue q;
	int q_init;
	struct writer *w;
	struct batch *b;     /* the test's batches */
	size_t nb;
};

static struct env E;

/* Done callbacks: a count, and a gate that can hold the writer thread. */
struct gate {
	int entered;
	int open;
};

static pthread_mutex_t done_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t done_cond = PTHREAD_COND_INITIALIZER;
static size_t done_count;

static inline void on_done(struct batch *b, void *arg)
{
	struct gate *g = arg;

	(void)b;
	pthread_mutex_lock(&done_lock);
	done_count++;
	pthread_cond_broadcast(&done_cond);
	if (g != NULL) {
		g->entered = 1;
		while (!g->open)
			pthread_cond_wait(&done_cond, &done_lock);
	}
	pthread_mutex_unlock(&done_lock);
}

/* Waits until n done callbacks ran in all. Returns 0, or -1 on timeout. */
static inline int wait_done(size_t n)
{
	struct timespec ts;
	int rc = 0;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += WAIT_DONE_S;
	pthread_mutex_lock(&done_lock);
	while (done_count < n && rc == 0)
		rc = pthread_cond_timedwait(&done_cond, &done_lock, &ts);
	rc = done_count >= n ? 0 : -1;
	pthread_mutex_unlock(&done_lock);
	return rc;
}

/* Waits until the writer is held in g's callback. Returns 0 or -1. */
static inline int gate_wait_entered(struct gate *g)
{
	struct timespec ts;
	int rc = 0;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += WAIT_DONE_S;
	pthread_mutex_lock(&done_lock);
	while (!g->entered && rc == 0)
		rc = pthread_cond_timedwait(&done_cond, &done_lock, &ts);
	rc = g->entered ? 0 : -1;
	pthread_mutex_unlock(&done_lock);
	return rc;
}

static inline void gate_open(struct gate *g)
{
	pthread_mutex_lock(&done_lock);
	g->open = 1;
	pthread_cond_broadcast(&done_cond);
	pthread_mutex_unlock(&done_lock);
}

/* Makes the test's directory. Returns NULL or what failed. */
static inline const char *env_mkdir(void)
{
	snprintf(E.dir, sizeof(E.dir), "/tmp/relay-test-store-XXXXXX");
	if (mkdtemp(E.dir) == NULL) {
		E.dir[0] = '\0';
		return err("mkdtemp: %s", strerror(errno));
	}
	snprintf(E.path, sizeof(E.path), "%s/buf", E.dir);
	return NULL;
}

/* Opens the store at a fresh E.path without the writer. */
static inline const char *store_direct(void)
{
	const char *e;
	char why[512];

	if ((e = env_mkdir()) != NULL)
		return e;
	if ((E.st = store_open(E.path, 64 * MIB, why, sizeof(why))) == NULL)
		return err("store_open: %s", why);
	E.st_open = 1;
	return NULL;
}

/* Makes the closed store at E.path look as an older format left it: the
 * format record fmt, the database named drop (which that format did not
 * have) gone. Returns NULL or what failed. */
/* Opens the closed store at E.path with LMDB itself and begins a write
 * transaction in *txn. Returns an LMDB code; on 0 the caller commits or
 * aborts *txn and closes *env. */
static inline int store_raw_begin(MDB_env **env, MDB_txn **txn)
{
	int rc;

	if ((rc = mdb_env_create(env)) != 0)
		return rc;
	rc = mdb_env_set_maxdbs(*env, 16);
	if (rc == 0)
		rc = mdb_env_set_mapsize(*env, 128 * MIB);
	if (rc == 0)
		rc = mdb_env_open(*env, E.path, 0, 0600);
	if (rc == 0)
		rc = mdb_txn_begin(*env, NULL, 0, txn);
	if (rc != 0)
		mdb_env_close(*env);
	return rc;
}

static inline const char *store_older_format(uint32_t fmt, const char *drop)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi, meta;
	MDB_val k = { 6, "format" }, v = { sizeof(fmt), &fmt };
	int rc;

	if ((rc = store_raw_begin(&env, &txn)) != 0)
		return mdb_strerror(rc);
	if ((rc = mdb_dbi_open(txn, drop, 0, &dbi)) == 0 &&
	    (rc = mdb_drop(txn, dbi, 1)) == 0 &&
	    (rc = mdb_dbi_open(txn, "meta", 0, &meta)) == 0 &&
	    (rc = mdb_put(txn, meta, &k, &v, 0)) == 0)
		rc = mdb_txn_commit(txn);
	else
		mdb_txn_abort(txn);
	mdb_env_close(env);
	return rc == 0 ? NULL : mdb_strerror(rc);
}

/* Opens the store, fills the queue from it and starts the writer. */
static inline const char *env_start(void)
{
	char why[512];

	if ((E.st = store_open(E.path, E.cfg.max_size, why, sizeof(why))) == NULL)
		return err("store_open: %s", why);
	E.st_open = 1;
	queue_init(&E.q);
	E.q_init = 1;
	if (store_load_queue(E.st, &E.q) < 0)
		return "store_load_queue failed";
	if ((E.w = writer_start(&E.cfg, E.st, &E.q)) == NULL)
		return "writer_start failed";
	return NULL;
}

/* Stops the writer (after it wrote all it was given), closes the store and
 * drops the queue. */
static inline void env_stop(void)
{
	if (E.w != NULL)
		writer_stop(E.w);
	E.w = NULL;
	if (E.st_open)
		store_close(E.st);
	E.st_open = 0;
	if (E.q_init)
		queue_destroy(&E.q);
	E.q_init = 0;
}

/* A fresh directory and config (defaults, path set), then env_start. */
static inline const char *env_create(uint64_t max_size, uint64_t max_request_size)
{
	const char *e;

	if ((e = env_mkdir()) != NULL)
		return e;
	config_defaults(&E.cfg);
	E.have_cfg = 1;
	free(E.cfg.path);
	if ((E.cfg.path = strdup(E.path)) == NULL)
		return "out of memory";
	E.cfg.max_size = max_size;
	E.cfg.max_request_size = max_request_size;
	return env_start();
}

/* Undoes everything a test set up, whether it passed or not. */
static inline void env_cleanup(void)
{
	env_stop();
	for (size_t i = 0; i < E.nb; i++)
		batch_release(&E.b[i]);
	free(E.b);
	tmpdir_remove(E.dir);
	if (E.have_cfg)
		config_free(&E.cfg);
	memset(&E, 0, sizeof(E));
	pthread_mutex_lock(&done_lock);
	done_count = 0;
	pthread_mutex_unlock(&done_lock);
}

/* ---- batches ----------------------------------------------------------- */

/* Allocates the test's n batches (zeroed). */
static inline const char *batches_new(size_t n)
{
	if ((E.b = calloc(n, sizeof(*E.b))) == NULL)
		return "out of memory";
	E.nb = n;
	return NULL;
}

/* Adds a chunk holding raw[0..len) compressed, counted as c. */
static inline const char *batch_add_chunk(struct batch *b, const uint8_t *raw,
				   size_t len, const struct wire_counts *c)
{
	struct chunk *ch;
	size_t zlen;
	uint8_t *z;

	if ((z = compress(raw, len, &zlen)) == NULL)
		return "snappy_compress failed";
	if ((ch = realloc(b->chunks, (b->nchunks + 1) * sizeof(*ch))) == NULL) {
		free(z);
		return "out of memory";
	}
	b->chunks = ch;
	ch = &b->chunks[b->nchunks++];
	ch->block = z;
	ch->len = zlen;
	ch->raw_len = (uint32_t)len;
	ch->lane = 0;
	ch->counts = *c;
	b->value_bytes += zlen + sizeof(struct entry_hdr);
	return NULL;
}

/* Makes b a batch of tenant holding fixture f, with done callback arg g. */
static inline const char *batch_fixture(struct batch *b, const char *tenant, int f,
				 struct gate *g)
{
	memset(b, 0, sizeof(*b));
	b->tlen = strlen(tenant);
	memcpy(b->tenant, tenant, b->tlen);
	b->done = on_done;
	b->arg = g;
	return batch_add_chunk(b, fx[f].raw, fx[f].rawlen, &fx[f].counts);
}

/* Submits batches [from, to) and waits for all done callbacks so far. */
static inline const char *submit_wait(size_t from, size_t to)
{
	for (size_t i = from; i < to; i++)
		writer_submit(E.w, &E.b[i]);
	if (wait_done(to) < 0)
		return "timed out waiting for the writer";
	return NULL;
}

/* Submits batches one at a time, each in its own commit (one entry each). */
static inline const char *submit_each(size_t from, size_t to)
{
	const char *e = NULL;

	for (size_t i = from; i < to && e == NULL; i++)
		e = submit_wait(i, i + 1);
	return e;
}

/* Polls the queue until it holds want entries. */
static inline const char *wait_entries(uint64_t want)
{
	struct timespec ts = { 0, POLL_SLEEP_NS };
	struct queue_totals t;

	for (int i = 0; i < POLL_TRIES; i++) {
		queue_totals(&E.q, &t);
		if (t.entries == want)
			return NULL;
		nanosleep(&ts, NULL);
	}
	return err("queue holds %llu entries, not %llu",
		   (unsigned long long)t.entries, (unsigned long long)want);
}

/* Copies the queue's state of a tenant. Returns 0, or -1 if unknown. */
static inline int tenant_state(const char *id, struct queue_tenant *out)
{
	struct queue_tenant *t;

	pthread_mutex_lock(&E.q.lock);
	t = queue_tenant_get(&E.q, id, strlen(id), 0);
	if (t != NULL)
		*out = *t;
	pthread_mutex_unlock(&E.q.lock);
	return t != NULL ? 0 : -1;
}

/* ---- reading the store ------------------------------------------------- */

struct entry {
	char tenant[TENANT_ID_MAX + 1];
	uint64_t seq;
	struct entry_hdr h;
	uint8_t *val;    /* the whole value, copied */
	size_t vlen;
};

struct entries {
	struct entry *e;
	size_t n;
};

/* Where the block of a one-lane entry starts in its value (after the
 * header and the lane table, store.h), and its length. */
static inline size_t entry_block_off(const struct entry *en)
{
	return sizeof(struct entry_hdr) +
	       (en->h.version >= 2 ? en->h.nlanes * sizeof(struct lane_rec) : 0);
}
#define ENTRY_BLOCK(en) ((en)->val + entry_block_off(en))
#define ENTRY_BLOCK_LEN(en) ((en)->vlen - entry_block_off(en))

static inline void entries_free(struct entries *es)
{
	for (size_t i = 0; i < es->n; i++)
		free(es->e[i].val);
	free(es->e);
	es->e = NULL;
	es->n = 0;
}

/* Reads every record of dbi, in key order, in one read transaction.
 * Returns NULL or what failed. */
static inline const char *entries_read(MDB_dbi dbi, struct entries *es)
{
	const char *e = NULL, *t;
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k, v;
	size_t tlen, cap = 0;
	int rc;

	memset(es, 0, sizeof(*es));
	if (mdb_txn_begin(E.st->env, NULL, MDB_RDONLY, &txn) != 0)
		return "cannot begin a read transaction";
	if (mdb_cursor_open(txn, dbi, &cur) != 0) {
		mdb_txn_abort(txn);
		return "cannot open a cursor";
	}
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0 && e == NULL;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		struct entry *en;

		if (es->n == cap) {
			cap = cap ? cap * 2 : 64;
			if ((en = realloc(es->e, cap * sizeof(*en))) == NULL) {
				e = "out of memory";
				break;
			}
			es->e = en;
		}
		en = &es->e[es->n];
		memset(en, 0, sizeof(*en));
		if (store_key_parse(&k, &t, &tlen, &en->seq) < 0) {
			e = "a key that is not a queue key";
			break;
		}
		memcpy(en->tenant, t, tlen);
		/* A queue value whole, as its readers see it: a head joined
		 * with its tail (store.h, "Heads and tails"). */
		MDB_val w = v;
		if (dbi == E.st->queue &&
		    store_value_whole(txn, E.st, t, tlen, en->seq, &v, &w) != 0) {
			e = "a head without its tail";
			break;
		}
		if ((en->val = malloc(w.mv_size + 1)) == NULL) {
			e = "out of memory";
			break;
		}
		memcpy(en->val, w.mv_data, w.mv_size);
		en->vlen = w.mv_size;
		if (w.mv_data != v.mv_data)
			free(w.mv_data);
		es->n++;
		if (dbi == E.st->queue && store_entry_hdr(&v, &en->h) < 0)
			e = "an unreadable entry header";
	}
	if (e == NULL && rc != MDB_NOTFOUND)
		e = err("cursor: %s", mdb_strerror(rc));
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	if (e != NULL)
		entries_free(es);
	return e;
}

/* The entries of one tenant, in order (indexes into es). */
static inline size_t entries_of(const struct entries *es, const char *tenant,
			 size_t *idx, size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < es->n; i++)
		if (strcmp(es->e[i].tenant, tenant) == 0 && n < max)
			idx[n++] = i;
	return n;
}

/*
 * Checks that the snappy block p[0..len) decodes to a WriteRequest holding
 * exactly the series, then the metadata, of fixtures want[0..n) in that
 * order. Returns NULL or what differs.
 */
static inline const char *block_is(const uint8_t *p, size_t len, const int *want,
			    size_t n)
{
	Prometheus__WriteRequest *m;
	size_t rawlen, si = 0, mi = 0;
	const char *e = NULL;
	uint8_t *raw;

	if ((raw = uncompress(p, len, &rawlen)) == NULL)
		return "snappy cannot decode the block";
	m = prometheus__write_request__unpack(NULL, rawlen, raw);
	free(raw);
	if (m == NULL)
		return "protobuf-c cannot unpack the block";
	for (size_t f = 0; f < n && e == NULL; f++) {
		const Prometheus__WriteRequest *r = fx[want[f]].req;

		for (size_t i = 0; i < r->n_timeseries && e == NULL; i++, si++)
			if (si >= m->n_timeseries ||
			    !message_equal(r->timeseries[i], m->timeseries[si]))
				e = err("series %zu is not series %zu of %s", si,
					i, fx[want[f]].name);
		for (size_t i = 0; i < r->n_metadata && e == NULL; i++, mi++)
			if (mi >= m->n_metadata ||
			    !message_equal(r->metadata[i], m->metadata[mi]))
				e = err("metadata %zu is not metadata %zu of %s",
					mi, i, fx[want[f]].name);
	}
	if (e == NULL && (si != m->n_timeseries || mi != m->n_metadata))
		e = err("%zu series and %zu metadata, expected %zu and %zu",
			m->n_timeseries, m->n_metadata, si, mi);
	prometheus__write_request__free_unpacked(m, NULL);
	return e;
}

/* Reads the tenant's whole queue as the forwarder would and checks it. */
/*
 * What ingest stored for tenant, read lane by lane: every series of the
 * fixtures want[0..n) once, each lane's in the fixtures' order (a lane
 * keeps the order of its series), and the metadata in lane 0. *series
 * gets how many series were read.
 */
static inline const char *lanes_are(const char *tenant, const int *want,
				    size_t n, size_t *series)
{
	const Prometheus__TimeSeries *all[4096];
	unsigned char used[4096];
	size_t total = 0, seen = 0;
	const char *e = NULL;

	for (size_t f = 0; f < n; f++)
		for (size_t i = 0; i < fx[want[f]].req->n_timeseries; i++)
			if (total < 4096)
				all[total++] = fx[want[f]].req->timeseries[i];
	memset(used, 0, sizeof(used));
	for (unsigned l = 0; l < LANES && e == NULL; l++) {
		struct store_span span;
		struct buf body;
		Prometheus__WriteRequest *m = NULL;
		uint8_t *raw = NULL;
		size_t rawlen, j = 0;

		buf_init(&body, 1u << 30);
		if (store_read_batch(E.st, tenant, strlen(tenant), l, 0,
				     UINT64_MAX, UINT64_MAX, 256, &body, &span) < 0)
			e = "store_read_batch failed";
		else if (span.entries > 0 &&
			 ((raw = uncompress(body.p, body.len, &rawlen)) == NULL ||
			  (m = prometheus__write_request__unpack(NULL, rawlen,
								 raw)) == NULL))
			e = "a lane's block does not decode";
		for (size_t i = 0; m != NULL && i < m->n_timeseries && e == NULL;
		     i++, seen++) {
			while (j < total && (used[j] ||
					     !message_equal(all[j], m->timeseries[i])))
				j++;
			if (j == total)
				e = err("lane %u: series %zu out of order or unknown",
					l, i);
			else
				used[j++] = 1;
		}
		if (m != NULL && l != 0 && m->n_metadata != 0)
			e = "metadata outside lane 0";
		if (m != NULL)
			prometheus__write_request__free_unpacked(m, NULL);
		free(raw);
		buf_free(&body);
	}
	if (e == NULL && seen != total)
		e = err("%zu series read, %zu sent", seen, total);
	if (series != NULL)
		*series = seen;
	return e;
}

static inline const char *queue_is(const char *tenant, const int *want, size_t n,
			    struct store_span *span)
{
	struct buf body;
	const char *e;

	buf_init(&body, 1u << 30);
	if (store_read_batch(E.st, tenant, strlen(tenant), 0, 0, UINT64_MAX, UINT64_MAX, 256,
			     &body, span) < 0)
		e = "store_read_batch failed";
	else if (span->entries == 0)
		e = "store_read_batch found nothing";
	else
		e = block_is(body.p, body.len, want, n);
	buf_free(&body);
	return e;
}

static inline uint64_t fx_samples(const int *f, size_t n)
{
	uint64_t s = 0;

	for (size_t i = 0; i < n; i++)
		s += fx[f[i]].counts.samples;
	return s;
}

/* Every fixture, in order. */
static const int all8[] = { 0, 1, 2, 3, 4, 5, 6, 7 };

#endif
