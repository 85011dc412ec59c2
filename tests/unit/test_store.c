/*
 * test_store.c - the durable buffer: the LMDB format and keys, and what the
 * writer thread makes of batches, acknowledgements and set-asides, read
 * back the way the forwarder reads it and decoded with snappy and
 * protobuf-c. Request bodies read in place (store_body_open) must stream
 * the very bytes sblock_concat makes of the same entries.
 *
 * Every test works in its own directory under /tmp and removes it. Batches
 * go through the real writer thread; a test waits for their done callbacks
 * (and, for acknowledgements, polls the queue totals a bounded number of
 * times). To put several batches in one commit round deterministically, the
 * first batch's done callback holds the writer until the others are queued.
 *
 * Fixtures are read from $RELAY_FIXTURES, or tests/fixtures when unset
 * (run from the top of the tree).
 */
#include "store.h"

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
#include "ingest.h"
#include "queue.h"
#include "remote.pb-c.h"
#include "testlib.h"
#include "tmpdir.h"
#include "unit.h"
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
static int load_fixtures(void)
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

static void free_fixtures(void)
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
	struct store st;
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

static void on_done(struct batch *b, void *arg)
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
static int wait_done(size_t n)
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
static int gate_wait_entered(struct gate *g)
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

static void gate_open(struct gate *g)
{
	pthread_mutex_lock(&done_lock);
	g->open = 1;
	pthread_cond_broadcast(&done_cond);
	pthread_mutex_unlock(&done_lock);
}

/* Makes the test's directory. Returns NULL or what failed. */
static const char *env_mkdir(void)
{
	snprintf(E.dir, sizeof(E.dir), "/tmp/relay-test-store-XXXXXX");
	if (mkdtemp(E.dir) == NULL) {
		E.dir[0] = '\0';
		return err("mkdtemp: %s", strerror(errno));
	}
	snprintf(E.path, sizeof(E.path), "%s/buf", E.dir);
	return NULL;
}

/* Opens the store, fills the queue from it and starts the writer. */
static const char *env_start(void)
{
	char why[512];

	if (store_open(&E.st, E.path, E.cfg.max_size, why, sizeof(why)) < 0)
		return err("store_open: %s", why);
	E.st_open = 1;
	queue_init(&E.q);
	E.q_init = 1;
	if (store_load_queue(&E.st, &E.q) < 0)
		return "store_load_queue failed";
	if ((E.w = writer_start(&E.cfg, &E.st, &E.q)) == NULL)
		return "writer_start failed";
	return NULL;
}

/* Stops the writer (after it wrote all it was given), closes the store and
 * drops the queue. */
static void env_stop(void)
{
	if (E.w != NULL)
		writer_stop(E.w);
	E.w = NULL;
	if (E.st_open)
		store_close(&E.st);
	E.st_open = 0;
	if (E.q_init)
		queue_destroy(&E.q);
	E.q_init = 0;
}

/* A fresh directory and config (defaults, path set), then env_start. */
static const char *env_create(uint64_t max_size, uint64_t max_request_size)
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
static void env_cleanup(void)
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
static const char *batches_new(size_t n)
{
	if ((E.b = calloc(n, sizeof(*E.b))) == NULL)
		return "out of memory";
	E.nb = n;
	return NULL;
}

/* Adds a chunk holding raw[0..len) compressed, counted as c. */
static const char *batch_add_chunk(struct batch *b, const uint8_t *raw,
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
	ch->counts = *c;
	b->value_bytes += zlen + sizeof(struct entry_hdr);
	return NULL;
}

/* Makes b a batch of tenant holding fixture f, with done callback arg g. */
static const char *batch_fixture(struct batch *b, const char *tenant, int f,
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
static const char *submit_wait(size_t from, size_t to)
{
	for (size_t i = from; i < to; i++)
		writer_submit(E.w, &E.b[i]);
	if (wait_done(to) < 0)
		return "timed out waiting for the writer";
	return NULL;
}

/* Submits batches one at a time, each in its own commit (one entry each). */
static const char *submit_each(size_t from, size_t to)
{
	const char *e = NULL;

	for (size_t i = from; i < to && e == NULL; i++)
		e = submit_wait(i, i + 1);
	return e;
}

/* Polls the queue until it holds want entries. */
static const char *wait_entries(uint64_t want)
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
static int tenant_state(const char *id, struct queue_tenant *out)
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

static void entries_free(struct entries *es)
{
	for (size_t i = 0; i < es->n; i++)
		free(es->e[i].val);
	free(es->e);
	es->e = NULL;
	es->n = 0;
}

/* Reads every record of dbi, in key order, in one read transaction.
 * Returns NULL or what failed. */
static const char *entries_read(MDB_dbi dbi, struct entries *es)
{
	const char *e = NULL, *t;
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k, v;
	size_t tlen, cap = 0;
	int rc;

	memset(es, 0, sizeof(*es));
	if (mdb_txn_begin(E.st.env, NULL, MDB_RDONLY, &txn) != 0)
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
		if ((en->val = malloc(v.mv_size + 1)) == NULL) {
			e = "out of memory";
			break;
		}
		memcpy(en->val, v.mv_data, v.mv_size);
		en->vlen = v.mv_size;
		es->n++;
		if (dbi == E.st.queue && store_entry_hdr(&v, &en->h) < 0)
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
static size_t entries_of(const struct entries *es, const char *tenant,
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
static const char *block_is(const uint8_t *p, size_t len, const int *want,
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
static const char *queue_is(const char *tenant, const int *want, size_t n,
			    struct store_span *span)
{
	struct buf body;
	const char *e;

	buf_init(&body, 1u << 30);
	if (store_read_batch(&E.st, tenant, strlen(tenant), 0, UINT64_MAX, UINT64_MAX, 256,
			     &body, span) < 0)
		e = "store_read_batch failed";
	else if (span->entries == 0)
		e = "store_read_batch found nothing";
	else
		e = block_is(body.p, body.len, want, n);
	buf_free(&body);
	return e;
}

static uint64_t fx_samples(const int *f, size_t n)
{
	uint64_t s = 0;

	for (size_t i = 0; i < n; i++)
		s += fx[f[i]].counts.samples;
	return s;
}

/* ---- format, directory, keys ------------------------------------------- */

static void test_open_creates_dir_0700(void)
{
	char why[512], nested[256];
	struct stat sb;
	MDB_txn *txn;
	MDB_val k = { 6, "format" }, v;
	uint32_t fmt = 0;
	int rc, ok;

	CHECK_NOERR(env_mkdir());
	snprintf(nested, sizeof(nested), "%s/a/b/buf", E.dir);
	rc = store_open(&E.st, nested, MIB, why, sizeof(why));
	CHECK_EQ_INT(rc, 0);
	E.st_open = 1;
	CHECK(stat(nested, &sb) == 0 && S_ISDIR(sb.st_mode));
	CHECK_EQ_INT(sb.st_mode & 0777, 0700);
	snprintf(nested, sizeof(nested), "%s/a", E.dir);
	CHECK(stat(nested, &sb) == 0 && (sb.st_mode & 077) == 0);
	/* The format record, written on creation. */
	CHECK(mdb_txn_begin(E.st.env, NULL, MDB_RDONLY, &txn) == 0);
	rc = mdb_get(txn, E.st.meta, &k, &v);
	ok = rc == 0 && v.mv_size == sizeof(fmt);
	if (ok)
		memcpy(&fmt, v.mv_data, sizeof(fmt));
	mdb_txn_abort(txn);
	CHECK(ok);
	CHECK_EQ_INT(fmt, STORE_FORMAT);
	CHECK_EQ_INT(E.st.next_seq, 1);
	store_close(&E.st);
	E.st_open = 0;
	/* A directory that exists with wider permissions is narrowed. */
	snprintf(nested, sizeof(nested), "%s/wide", E.dir);
	CHECK(mkdir(nested, 0755) == 0 && chmod(nested, 0755) == 0);
	rc = store_open(&E.st, nested, MIB, why, sizeof(why));
	CHECK_EQ_INT(rc, 0);
	E.st_open = 1;
	CHECK(stat(nested, &sb) == 0);
	CHECK_EQ_INT(sb.st_mode & 0777, 0700);
}

/* An entry written and committed is there after closing and reopening. */
static void test_reopen_keeps_data(void)
{
	static const int want[] = { 2, 5 };
	struct sblock_part parts[2];
	struct entry_hdr h;
	struct store_span span;
	struct queue_totals t;
	uint64_t bytes = 0;
	char why[512];
	MDB_txn *txn;
	int rc;

	CHECK_NOERR(env_mkdir());
	E.cfg.max_size = 64 * MIB;
	CHECK(store_open(&E.st, E.path, E.cfg.max_size, why, sizeof(why)) == 0);
	E.st_open = 1;
	memset(&h, 0, sizeof(h));
	h.series = (uint32_t)(fx[2].counts.series + fx[5].counts.series);
	h.samples = (uint32_t)(fx[2].counts.samples + fx[5].counts.samples);
	h.metadata = (uint32_t)fx[5].counts.metadata;
	h.requests = 2;
	h.created_ms = 1700000000123ull;
	parts[0].p = fx[2].z;
	parts[0].len = fx[2].zlen;
	parts[1].p = fx[5].z;
	parts[1].len = fx[5].zlen;
	CHECK(mdb_txn_begin(E.st.env, NULL, 0, &txn) == 0);
	rc = store_put_entry(txn, &E.st, "keep", 4, 41, &h, parts, 2, &bytes);
	E.st.next_seq = 42;
	if (rc == 0)
		rc = store_put_next_seq(txn, &E.st);
	if (rc == 0)
		rc = mdb_txn_commit(txn);
	else
		mdb_txn_abort(txn);
	CHECK_EQ_INT(rc, 0);
	CHECK_EQ_INT(h.raw_len, fx[2].rawlen + fx[5].rawlen);
	{
		uint32_t r2, r5;
		size_t p2 = sblock_preamble(fx[2].z, fx[2].zlen, &r2);
		size_t p5 = sblock_preamble(fx[5].z, fx[5].zlen, &r5);

		CHECK_EQ_INT(bytes, sizeof(h) + fx[2].zlen - p2 + fx[5].zlen -
					    p5 + varint_size(r2 + r5));
	}
	store_close(&E.st);
	E.st_open = 0;

	CHECK(store_open(&E.st, E.path, E.cfg.max_size, why, sizeof(why)) == 0);
	E.st_open = 1;
	CHECK_EQ_INT(E.st.next_seq, 42);
	queue_init(&E.q);
	E.q_init = 1;
	CHECK_EQ_INT(store_load_queue(&E.st, &E.q), 0);
	CHECK_EQ_INT(E.st.next_seq, 42);
	queue_totals(&E.q, &t);
	CHECK_EQ_INT(t.entries, 1);
	CHECK_EQ_INT(t.bytes, bytes);
	CHECK_EQ_INT(t.samples, h.samples);
	CHECK_EQ_INT(t.oldest_ms, 1700000000123ull);
	CHECK_NOERR(queue_is("keep", want, 2, &span));
	CHECK_EQ_INT(span.first_seq, 41);
	CHECK_EQ_INT(span.raw, fx[2].rawlen + fx[5].rawlen);
	CHECK_EQ_INT(span.series, h.series);

	/* An entry numbered past the recorded next_seq: the numbers go on
	 * after it, whatever meta says. */
	CHECK(mdb_txn_begin(E.st.env, NULL, 0, &txn) == 0);
	rc = store_put_entry(txn, &E.st, "other", 5, 77, &h, parts, 1, &bytes);
	if (rc == 0)
		rc = mdb_txn_commit(txn);
	else
		mdb_txn_abort(txn);
	CHECK_EQ_INT(rc, 0);
	store_close(&E.st);
	E.st_open = 0;
	queue_destroy(&E.q);
	E.q_init = 0;
	CHECK(store_open(&E.st, E.path, E.cfg.max_size, why, sizeof(why)) == 0);
	E.st_open = 1;
	queue_init(&E.q);
	E.q_init = 1;
	CHECK_EQ_INT(store_load_queue(&E.st, &E.q), 0);
	CHECK_EQ_INT(E.st.next_seq, 78);
	queue_totals(&E.q, &t);
	CHECK_EQ_INT(t.entries, 2);
}

/* Writes value into meta "format" of the environment at E.path directly. */
static const char *poke_format(const void *value, size_t len)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_val k = { 6, "format" }, v = { len, (void *)value };
	int rc;

	if ((rc = mdb_env_create(&env)) != 0)
		return mdb_strerror(rc);
	if ((rc = mdb_env_set_maxdbs(env, 16)) != 0 ||
	    (rc = mdb_env_set_mapsize(env, 128 * MIB)) != 0 ||
	    (rc = mdb_env_open(env, E.path, 0, 0600)) != 0 ||
	    (rc = mdb_txn_begin(env, NULL, 0, &txn)) != 0) {
		mdb_env_close(env);
		return mdb_strerror(rc);
	}
	if ((rc = mdb_dbi_open(txn, "meta", 0, &dbi)) != 0 ||
	    (rc = mdb_put(txn, dbi, &k, &v, 0)) != 0) {
		mdb_txn_abort(txn);
		mdb_env_close(env);
		return mdb_strerror(rc);
	}
	rc = mdb_txn_commit(txn);
	mdb_env_close(env);
	return rc == 0 ? NULL : mdb_strerror(rc);
}

/* Whether s holds the decimal number n as a whole word. */
static int has_number(const char *s, unsigned long n)
{
	for (const char *p = s; *p != '\0'; p++) {
		if (*p < '0' || *p > '9' || (p > s && p[-1] >= '0' && p[-1] <= '9'))
			continue;
		if (strtoul(p, NULL, 10) == n)
			return 1;
	}
	return 0;
}

static void test_wrong_format_refused(void)
{
	uint32_t other = 7, fmt = 0;
	char why[512];
	MDB_txn *txn;
	MDB_val k = { 6, "format" }, v;
	int rc;

	CHECK_NOERR(env_mkdir());
	CHECK(store_open(&E.st, E.path, MIB, why, sizeof(why)) == 0);
	store_close(&E.st);
	CHECK_NOERR(poke_format(&other, sizeof(other)));
	why[0] = '\0';
	rc = store_open(&E.st, E.path, MIB, why, sizeof(why));
	if (rc == 0)
		E.st_open = 1;
	CHECK_EQ_INT(rc, -1);
	CHECK(E.st.env == NULL);
	/* The message names both versions. */
	if (!has_number(why, other) || !has_number(why, STORE_FORMAT)) {
		snprintf(unit_msg, sizeof(unit_msg),
			 "%s:%d: message does not name versions %u and %u: %.200s",
			 __FILE__, __LINE__, other, STORE_FORMAT, why);
		unit_cur_failed = 1;
		return;
	}
	/* A record of the wrong size is refused too. */
	CHECK_NOERR(poke_format("\x01\0\0\0\0\0\0\0", 8));
	why[0] = '\0';
	rc = store_open(&E.st, E.path, MIB, why, sizeof(why));
	if (rc == 0)
		E.st_open = 1;
	CHECK_EQ_INT(rc, -1);
	CHECK(why[0] != '\0');
	/* The refused store was left as it was. */
	CHECK_NOERR(poke_format(&other, sizeof(other)));
	{
		MDB_env *env;
		MDB_dbi dbi;

		CHECK(mdb_env_create(&env) == 0);
		rc = mdb_env_set_maxdbs(env, 16);
		if (rc == 0)
			rc = mdb_env_open(env, E.path, MDB_RDONLY, 0600);
		if (rc == 0)
			rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn);
		if (rc == 0) {
			if ((rc = mdb_dbi_open(txn, "meta", 0, &dbi)) == 0 &&
			    (rc = mdb_get(txn, dbi, &k, &v)) == 0 &&
			    v.mv_size == 4)
				memcpy(&fmt, v.mv_data, 4);
			mdb_txn_abort(txn);
		}
		mdb_env_close(env);
	}
	CHECK_EQ_INT(rc, 0);
	CHECK_EQ_INT(fmt, other);
	rc = store_open(&E.st, E.path, MIB, why, sizeof(why));
	if (rc == 0)
		E.st_open = 1;
	CHECK_EQ_INT(rc, -1);
}

static void test_key_roundtrip(void)
{
	static const uint8_t want[] = { 'a', 'c', 'm', 'e', 0, 0x01, 0x02, 0x03,
					0x04, 0x05, 0x06, 0x07, 0x08 };
	char longest[TENANT_ID_MAX + 1];
	uint8_t key[STORE_KEY_MAX + 8];
	const char *t;
	size_t tlen, n;
	uint64_t seq;
	MDB_val k;

	n = store_key(key, "acme", 4, 0x0102030405060708ull);
	CHECK_EQ_INT(n, sizeof(want));
	CHECK(memcmp(key, want, n) == 0);
	k.mv_size = n;
	k.mv_data = key;
	CHECK_EQ_INT(store_key_parse(&k, &t, &tlen, &seq), 0);
	CHECK_EQ_INT(tlen, 4);
	CHECK(memcmp(t, "acme", 4) == 0);
	CHECK(seq == 0x0102030405060708ull);

	/* Extremes of sequence numbers and tenant lengths. */
	memset(longest, 'x', TENANT_ID_MAX);
	longest[TENANT_ID_MAX] = '\0';
	for (int i = 0; i < 4; i++) {
		static const uint64_t seqs[] = { 0, 1, 0x8000000000000000ull,
						 UINT64_MAX };
		k.mv_size = store_key(key, longest, TENANT_ID_MAX, seqs[i]);
		CHECK_EQ_INT(k.mv_size, STORE_KEY_MAX);
		CHECK_EQ_INT(store_key_parse(&k, &t, &tlen, &seq), 0);
		CHECK_EQ_INT(tlen, TENANT_ID_MAX);
		CHECK(seq == seqs[i]);
		k.mv_size = store_key(key, "", 0, seqs[i]);
		CHECK_EQ_INT(k.mv_size, 9);
		CHECK_EQ_INT(store_key_parse(&k, &t, &tlen, &seq), 0);
		CHECK_EQ_INT(tlen, 0);
		CHECK(seq == seqs[i]);
	}

	/* Not queue keys. */
	k.mv_size = store_key(key, "acme", 4, 9);
	key[4] = 'x';
	CHECK_EQ_INT(store_key_parse(&k, &t, &tlen, &seq), -1);
	k.mv_size = store_key(key, "ac\0e", 4, 9);
	CHECK_EQ_INT(store_key_parse(&k, &t, &tlen, &seq), -1);
	k.mv_size = 8;
	CHECK_EQ_INT(store_key_parse(&k, &t, &tlen, &seq), -1);
	memset(key, 'y', sizeof(key));
	key[TENANT_ID_MAX + 1] = 0;
	k.mv_size = TENANT_ID_MAX + 1 + 9;
	CHECK_EQ_INT(store_key_parse(&k, &t, &tlen, &seq), -1);
	k.mv_size = 6;
	k.mv_data = "format";
	CHECK_EQ_INT(store_key_parse(&k, &t, &tlen, &seq), -1);
}

/* In LMDB's order, a tenant's keys are adjacent and sorted by sequence
 * number, whatever the tenant names and numbers. */
static void test_key_order(void)
{
	static const char *const tenants[] = { "b", "a", "ab", "", "a.b",
					       "a-1", "A", "zz", "a0" };
	static const uint64_t seqs[] = { 256, 1, 0, 255, 65535, 65536,
					 1ull << 32, (1ull << 56) + 1,
					 0x7fffffffffffffffull, UINT64_MAX,
					 2, 0x100000000000ull };
	enum { NT = sizeof(tenants) / sizeof(tenants[0]),
	       NS = sizeof(seqs) / sizeof(seqs[0]) };
	uint8_t key[STORE_KEY_MAX];
	char why[512], last_tenant[TENANT_ID_MAX + 1] = "";
	int seen[NT];
	uint64_t last_seq = 0;
	size_t count = 0;
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k, v = { 1, "v" };
	const char *t, *e = NULL;
	size_t tlen;
	uint64_t seq;
	int rc;

	memset(seen, 0, sizeof(seen));
	CHECK_NOERR(env_mkdir());
	CHECK(store_open(&E.st, E.path, MIB, why, sizeof(why)) == 0);
	E.st_open = 1;
	CHECK(mdb_txn_begin(E.st.env, NULL, 0, &txn) == 0);
	/* Insert in an order unrelated to the keys'. */
	for (size_t i = 0; i < NS; i++) {
		for (size_t j = 0; j < NT; j++) {
			size_t tj = (j * 5 + i) % NT;
			k.mv_size = store_key(key, tenants[tj],
					      strlen(tenants[tj]), seqs[i]);
			k.mv_data = key;
			if ((rc = mdb_put(txn, E.st.queue, &k, &v, 0)) != 0) {
				mdb_txn_abort(txn);
				CHECK_EQ_INT(rc, 0);
			}
		}
	}
	if (mdb_cursor_open(txn, E.st.queue, &cur) != 0) {
		mdb_txn_abort(txn);
		CHECK(0);
	}
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0 && e == NULL;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		size_t ti;

		if (store_key_parse(&k, &t, &tlen, &seq) < 0) {
			e = "unparsable key";
			break;
		}
		for (ti = 0; ti < NT; ti++)
			if (strlen(tenants[ti]) == tlen &&
			    memcmp(tenants[ti], t, tlen) == 0)
				break;
		if (ti == NT) {
			e = "unknown tenant";
		} else if (count == 0 || strlen(last_tenant) != tlen ||
			   memcmp(last_tenant, t, tlen) != 0) {
			/* A new tenant: never seen before, and after the
			 * previous one in byte order. */
			if (seen[ti])
				e = err("tenant \"%s\" interleaves", tenants[ti]);
			else if (count > 0 && strcmp(last_tenant, tenants[ti]) >= 0)
				e = err("tenant \"%s\" after \"%s\"", tenants[ti],
					last_tenant);
			else if (seq != 0)
				e = err("tenant \"%s\" starts at %llu",
					tenants[ti], (unsigned long long)seq);
			seen[ti] = 1;
			snprintf(last_tenant, sizeof(last_tenant), "%s",
				 tenants[ti]);
		} else if (seq <= last_seq) {
			e = err("tenant \"%s\": %llu after %llu", tenants[ti],
				(unsigned long long)seq,
				(unsigned long long)last_seq);
		}
		last_seq = seq;
		count++;
	}
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	CHECK_NOERR(e);
	CHECK_EQ_INT(count, NT * NS);
	for (size_t i = 0; i < NT; i++)
		CHECK(seen[i]);
}

/*
 * store_delete_range on its own, in one write transaction: what it removes
 * and what it reports as the tenant's oldest entry left.
 */
static void test_delete_range_direct(void)
{
	struct sblock_part part = { fx[7].z, fx[7].zlen };
	struct store_span gone, next;
	struct entry_hdr h;
	uint64_t value = 0;
	char why[512];
	MDB_txn *txn;
	MDB_stat ms;
	int rc = 0;

	CHECK_NOERR(env_mkdir());
	CHECK(store_open(&E.st, E.path, 64 * MIB, why, sizeof(why)) == 0);
	E.st_open = 1;
	CHECK(mdb_txn_begin(E.st.env, NULL, 0, &txn) == 0);
	for (uint64_t s = 1; s <= 10 && rc == 0; s++) {
		memset(&h, 0, sizeof(h));
		h.samples = (uint32_t)s;
		h.created_ms = 1000 + s;
		rc = store_put_entry(txn, &E.st, "a", 1, s, &h, &part, 1, &value);
		if (rc == 0 && s <= 3)
			rc = store_put_entry(txn, &E.st, "b", 1, s, &h, &part, 1,
					     &value);
		if (rc == 0)
			rc = store_put_entry(txn, &E.st, "", 0, s, &h, &part, 1,
					     &value);
	}
	if (rc != 0)
		mdb_txn_abort(txn);
	CHECK_EQ_INT(rc, 0);

#define DELETE(tenant, first, last)                                           \
	do {                                                                  \
		memset(&gone, 0, sizeof(gone));                               \
		rc = store_delete_range(txn, &E.st, tenant, strlen(tenant),   \
					first, last, &gone, &next);           \
		if (rc != 0)                                                  \
			mdb_txn_abort(txn);                                   \
		CHECK_EQ_INT(rc, 0);                                          \
	} while (0)

	/* The middle: the oldest left is still the first. */
	DELETE("a", 4, 6);
	CHECK_EQ_INT(gone.entries, 3);
	CHECK_EQ_INT(gone.first_seq, 4);
	CHECK_EQ_INT(gone.last_seq, 6);
	CHECK_EQ_INT(gone.samples, 4 + 5 + 6);
	CHECK_EQ_INT(gone.bytes, 3 * value);
	CHECK_EQ_INT(gone.raw, 3 * fx[7].rawlen);
	CHECK_EQ_INT(gone.created_ms, 1004);
	CHECK_EQ_INT(next.entries, 1);
	CHECK_EQ_INT(next.first_seq, 1);
	CHECK_EQ_INT(next.created_ms, 1001);
	/* The head. */
	DELETE("a", 0, 2);
	CHECK_EQ_INT(gone.entries, 2);
	CHECK_EQ_INT(next.first_seq, 3);
	/* The tail, past the newest: the head stays. */
	DELETE("a", 9, UINT64_MAX);
	CHECK_EQ_INT(gone.entries, 2);
	CHECK_EQ_INT(next.first_seq, 3);
	/* Nothing in range. */
	DELETE("a", 4, 6);
	CHECK_EQ_INT(gone.entries, 0);
	CHECK_EQ_INT(next.first_seq, 3);
	/* A tenant that does not exist, between two that do. */
	DELETE("ab", 0, UINT64_MAX);
	CHECK_EQ_INT(gone.entries, 0);
	CHECK_EQ_INT(next.entries, 0);
	/* All of "b", the last tenant of the database. */
	DELETE("b", 0, UINT64_MAX);
	CHECK_EQ_INT(gone.entries, 3);
	CHECK_EQ_INT(next.entries, 0);
	/* The empty tenant id, the first of the database. */
	DELETE("", 2, 9);
	CHECK_EQ_INT(gone.entries, 8);
	CHECK_EQ_INT(next.first_seq, 1);
	DELETE("a", 3, 3);
	CHECK_EQ_INT(next.first_seq, 7);
#undef DELETE
	/* What is left: "" 1 and 10; "a" 7 and 8. */
	rc = mdb_stat(txn, E.st.queue, &ms);
	mdb_txn_abort(txn);
	CHECK_EQ_INT(rc, 0);
	CHECK_EQ_INT(ms.ms_entries, 4);
}

/* ---- request bodies read in place -------------------------------------- */

static const int all8[] = { 0, 1, 2, 3, 4, 5, 6, 7 };

/* Opens the store at a fresh E.path without the writer. */
static const char *store_direct(void)
{
	const char *e;
	char why[512];

	if ((e = env_mkdir()) != NULL)
		return e;
	if (store_open(&E.st, E.path, 64 * MIB, why, sizeof(why)) < 0)
		return err("store_open: %s", why);
	E.st_open = 1;
	return NULL;
}

/* Stores fixture f[i] as entry (tenant, first + i) for i < n, in one
 * write transaction, counted as the fixture. Returns NULL or what failed. */
static const char *put_fixtures(const char *tenant, uint64_t first,
				const int *f, size_t n)
{
	struct sblock_part part;
	struct entry_hdr h;
	uint64_t value;
	MDB_txn *txn;
	int rc = 0;

	if (mdb_txn_begin(E.st.env, NULL, 0, &txn) != 0)
		return "cannot begin a write transaction";
	for (size_t i = 0; i < n && rc == 0; i++) {
		part.p = fx[f[i]].z;
		part.len = fx[f[i]].zlen;
		memset(&h, 0, sizeof(h));
		h.series = (uint32_t)fx[f[i]].counts.series;
		h.samples = (uint32_t)fx[f[i]].counts.samples;
		h.created_ms = 1000 + first + i;
		rc = store_put_entry(txn, &E.st, tenant, strlen(tenant),
				     first + i, &h, &part, 1, &value);
	}
	if (rc != 0) {
		mdb_txn_abort(txn);
		return err("store_put_entry: %s", mdb_strerror(rc));
	}
	rc = mdb_txn_commit(txn);
	return rc == 0 ? NULL : err("commit: %s", mdb_strerror(rc));
}

/* Sets byte off of the value of (tenant, seq) to b, or cuts the value to
 * off bytes when b < 0. Returns NULL or what failed. */
static const char *poke_entry(const char *tenant, uint64_t seq, size_t off,
			      int b)
{
	uint8_t key[STORE_KEY_MAX], *copy = NULL;
	const char *e = NULL;
	MDB_val k, v;
	MDB_txn *txn;
	int rc;

	k.mv_size = store_key(key, tenant, strlen(tenant), seq);
	k.mv_data = key;
	if (mdb_txn_begin(E.st.env, NULL, 0, &txn) != 0)
		return "cannot begin a write transaction";
	if ((rc = mdb_get(txn, E.st.queue, &k, &v)) != 0 || off >= v.mv_size ||
	    (copy = malloc(v.mv_size)) == NULL) {
		mdb_txn_abort(txn);
		return rc != 0 ? mdb_strerror(rc) : "no such byte, or no memory";
	}
	memcpy(copy, v.mv_data, v.mv_size);
	if (b >= 0)
		copy[off] = (uint8_t)b;
	else
		v.mv_size = off;
	v.mv_data = copy;
	if ((rc = mdb_put(txn, E.st.queue, &k, &v, 0)) != 0) {
		mdb_txn_abort(txn);
		e = mdb_strerror(rc);
	} else if ((rc = mdb_txn_commit(txn)) != 0) {
		e = mdb_strerror(rc);
	}
	free(copy);
	return e;
}

/*
 * Opens the body of tenant for [seq, max_seq], max_raw and max_entries
 * and checks that it spans the entries of fixtures want[0..n) (stored by
 * put_fixtures from seq 1 on: fixture i at seq i + 1) and that its stream
 * gives what sblock_concat makes of their blocks, in pieces of any size
 * and after rewinds (stream_is). Leaves what it found in *span and
 * releases the body. Returns NULL or what differs.
 */
static const char *body_is(const char *tenant, uint64_t seq, uint64_t max_seq,
			   uint64_t max_raw, uint64_t max_entries,
			   const int *want, size_t n, struct store_span *span)
{
	struct sblock_part parts[NFX];
	struct store_body body;
	const char *e = NULL;
	struct buf ref;

	buf_init(&ref, 1u << 30);
	for (size_t i = 0; i < n; i++) {
		parts[i].p = fx[want[i]].z;
		parts[i].len = fx[want[i]].zlen;
	}
	if (sblock_concat(&ref, parts, n) < 0) {
		buf_free(&ref);
		return "sblock_concat failed";
	}
	if (store_body_open(&E.st, tenant, strlen(tenant), seq, max_seq,
			    max_raw, max_entries, &body, span) < 0) {
		buf_free(&ref);
		return "store_body_open failed";
	}
	if (span->entries != n)
		e = err("%llu entries, want %zu",
			(unsigned long long)span->entries, n);
	else if (span->first_seq != (uint64_t)want[0] + 1 ||
		 span->last_seq != (uint64_t)want[n - 1] + 1)
		e = err("entries %llu..%llu, want %d..%d",
			(unsigned long long)span->first_seq,
			(unsigned long long)span->last_seq, want[0] + 1,
			want[n - 1] + 1);
	else if (body.txn == NULL)
		e = "no read transaction held for the parts";
	else
		e = stream_is(&body.stream, ref.p, ref.len);
	store_body_release(&body);
	if (e == NULL && body.txn != NULL)
		e = "the read transaction outlived store_body_release";
	buf_free(&ref);
	return e;
}

/* The forwarder's spans, streamed: one entry, all of them, the cuts by
 * max_raw, max_entries (1: an isolated entry) and max_seq. */
static void test_body_streams_entries(void)
{
	static const int one[] = { 7 };
	struct store_body body;
	struct store_span span;
	uint64_t raw = 0;

	CHECK_NOERR(store_direct());
	CHECK_NOERR(put_fixtures("t", 1, one, 1));
	CHECK_NOERR(put_fixtures("t1", 1, all8, NFX));
	CHECK_NOERR(put_fixtures("t2", 1, one, 1));

	/* One entry: a range of one. */
	CHECK_NOERR(body_is("t1", 3, 3, UINT64_MAX, 256, all8 + 2, 1, &span));
	CHECK_EQ_INT(span.raw, fx[2].rawlen);
	/* Many: every entry of the tenant and nothing of its neighbours. */
	CHECK_NOERR(body_is("t1", 0, UINT64_MAX, UINT64_MAX, 256, all8, NFX,
			    &span));
	for (int i = 0; i < NFX; i++)
		raw += fx[i].rawlen;
	CHECK_EQ_INT(span.raw, raw);
	CHECK_EQ_INT(span.samples, fx_samples(all8, NFX));
	CHECK_EQ_INT(span.created_ms, 1001);
	/* max_raw: as many as fit, and at least one. */
	CHECK_NOERR(body_is("t1", 0, UINT64_MAX,
			    fx[0].rawlen + fx[1].rawlen + fx[2].rawlen - 1, 256,
			    all8, 2, &span));
	CHECK_NOERR(body_is("t1", 4, UINT64_MAX, 1, 256, all8 + 3, 1, &span));
	/* Isolation: one entry at a time, from the middle. */
	CHECK_NOERR(body_is("t1", 5, UINT64_MAX, UINT64_MAX, 1, all8 + 4, 1,
			    &span));
	/* max_entries and max_seq. */
	CHECK_NOERR(body_is("t1", 2, 7, UINT64_MAX, 3, all8 + 1, 3, &span));
	CHECK_NOERR(body_is("t1", 6, 7, UINT64_MAX, 256, all8 + 5, 2, &span));
	/* Nothing: past the tenant's newest, and a tenant with no entries
	 * (a prefix of one that has); nothing is held then. */
	CHECK(store_body_open(&E.st, "t1", 2, 9, UINT64_MAX, UINT64_MAX, 256,
			      &body, &span) == 0);
	CHECK(span.entries == 0 && body.txn == NULL);
	CHECK(store_body_open(&E.st, "t2x", 3, 0, UINT64_MAX, UINT64_MAX, 256,
			      &body, &span) == 0);
	CHECK(span.entries == 0 && body.txn == NULL);
	store_body_release(&body);
}

/* The parts stay readable while the entries are deleted and others are
 * written: the body is the snapshot it was opened on, until released. */
static void test_body_outlives_delete(void)
{
	struct sblock_part parts[NFX];
	struct store_span span, gone, next;
	struct store_body body;
	struct buf ref;
	const char *e = NULL;
	MDB_txn *txn;
	int rc;

	CHECK_NOERR(store_direct());
	CHECK_NOERR(put_fixtures("t1", 1, all8, NFX));
	CHECK(store_body_open(&E.st, "t1", 2, 0, UINT64_MAX, UINT64_MAX, 256,
			      &body, &span) == 0);
	CHECK_EQ_INT(span.entries, NFX);
	/* Delete them all, then fill the space again, several times. */
	for (int round = 0; round < 4 && e == NULL; round++) {
		if (mdb_txn_begin(E.st.env, NULL, 0, &txn) != 0) {
			e = "cannot begin a write transaction";
			break;
		}
		memset(&gone, 0, sizeof(gone));
		rc = store_delete_range(txn, &E.st, "t1", 2, 0, UINT64_MAX,
					&gone, &next);
		if (rc == 0)
			rc = mdb_txn_commit(txn);
		else
			mdb_txn_abort(txn);
		if (rc != 0)
			e = err("delete: %s", mdb_strerror(rc));
		else
			e = put_fixtures("t1", 100 + 10 * (uint64_t)round, all8,
					 NFX);
	}
	buf_init(&ref, 1u << 30);
	for (int i = 0; i < NFX; i++) {
		parts[i].p = fx[i].z;
		parts[i].len = fx[i].zlen;
	}
	if (e == NULL && sblock_concat(&ref, parts, NFX) < 0)
		e = "sblock_concat failed";
	if (e == NULL)
		e = stream_is(&body.stream, ref.p, ref.len);
	store_body_release(&body);
	buf_free(&ref);
	CHECK_NOERR(e);
	/* A body opened now sees what is there now. */
	CHECK(store_body_open(&E.st, "t1", 2, 0, UINT64_MAX, UINT64_MAX, 256,
			      &body, &span) == 0);
	store_body_release(&body);
	CHECK_EQ_INT(span.first_seq, 130);
}

/*
 * Unreadable entries, handled as the forwarder always did: an entry whose
 * header is unreadable travels alone, its block as stored; one whose block
 * cannot be merged (malformed preamble, no block at all) fails the read,
 * and nothing is held.
 */
static void test_body_unreadable_entry(void)
{
	static const int three[] = { 0, 1, 2 };
	struct store_body body;
	struct store_span span;
	const uint64_t max_raw = 8 * MIB;

	CHECK_NOERR(store_direct());
	CHECK_NOERR(put_fixtures("u", 1, three, 3));
	CHECK_NOERR(poke_entry("u", 2, 0, 9));  /* version 9 */
	CHECK_NOERR(body_is("u", 0, UINT64_MAX, max_raw, 256, three, 1, &span));
	CHECK_NOERR(body_is("u", 2, UINT64_MAX, max_raw, 256, three + 1, 1,
			    &span));
	CHECK_EQ_INT(span.raw, max_raw);
	CHECK_NOERR(body_is("u", 3, UINT64_MAX, max_raw, 256, three + 2, 1,
			    &span));
	/* A preamble that never ends. */
	for (size_t i = 0; i < 6; i++)
		CHECK_NOERR(poke_entry("u", 2, sizeof(struct entry_hdr) + i, 0xff));
	CHECK_EQ_INT(store_body_open(&E.st, "u", 1, 2, UINT64_MAX, max_raw, 256,
				     &body, &span), -1);
	CHECK(body.txn == NULL);
	/* A header and no block. */
	CHECK_NOERR(poke_entry("u", 2, sizeof(struct entry_hdr), -1));
	CHECK_EQ_INT(store_body_open(&E.st, "u", 1, 2, UINT64_MAX, max_raw, 256,
				     &body, &span), -1);
	CHECK(body.txn == NULL);
	/* The entries before and after it still read. */
	CHECK_NOERR(body_is("u", 0, 1, max_raw, 256, three, 1, &span));
	CHECK_NOERR(body_is("u", 3, 3, max_raw, 256, three + 2, 1, &span));
}

/* ---- through the writer ------------------------------------------------ */

/* Eight batches, each committed alone: eight entries holding the fixtures
 * in order; the forwarder's read merges them back. */
static void test_writer_stores_and_reads_back(void)
{
	struct entries es = { NULL, 0 };
	struct store_span span;
	struct queue_totals t;
	struct buf body;
	uint64_t before, after, bytes = 0, raw = 0;
	const char *e = NULL;
	char what[256];

	CHECK_NOERR(env_create(64 * MIB, 8 * MIB));
	CHECK_NOERR(batches_new(NFX));
	for (int i = 0; i < NFX; i++)
		CHECK_NOERR(batch_fixture(&E.b[i], "t1", i, NULL));
	before = clock_wall_ms();
	CHECK_NOERR(submit_each(0, NFX));
	after = clock_wall_ms();
	for (int i = 0; i < NFX; i++)
		CHECK_EQ_INT(E.b[i].status, BATCH_STORED);
	queue_totals(&E.q, &t);
	CHECK_EQ_INT(t.entries, NFX);
	CHECK_EQ_INT(t.samples, fx_samples(all8, NFX));
	CHECK(t.oldest_ms >= before && t.oldest_ms <= after);

	/* The records themselves. */
	CHECK_NOERR(entries_read(E.st.queue, &es));
	for (size_t i = 0; i < es.n && e == NULL; i++) {
		const struct entry *en = &es.e[i];
		const struct fixture *f = &fx[i];

		bytes += en->vlen;
		raw += en->h.raw_len;
		if (strcmp(en->tenant, "t1") != 0)
			e = "entry of another tenant";
		else if (i > 0 && en->seq != es.e[i - 1].seq + 1)
			e = "sequence numbers not consecutive";
		else if (en->h.version != 1 || en->h.requests != 1 ||
			 en->h.raw_len != f->rawlen ||
			 en->h.series != f->counts.series ||
			 en->h.samples != f->counts.samples ||
			 en->h.metadata != f->counts.metadata ||
			 en->h.histograms != 0 || en->h.exemplars != 0)
			e = err("entry %zu: header does not describe %s", i,
				f->name);
		else if (en->h.created_ms < before || en->h.created_ms > after)
			e = err("entry %zu: created_ms outside the test", i);
		else if ((e = block_is(en->val + sizeof(struct entry_hdr),
				       en->vlen - sizeof(struct entry_hdr),
				       &all8[i], 1)) != NULL) {
			snprintf(what, sizeof(what), "%s", e);
			e = err("entry %zu: %s", i, what);
		}
	}
	if (e == NULL && es.n != NFX)
		e = err("%zu entries", es.n);
	if (e == NULL && bytes != t.bytes)
		e = "queue bytes differ from the records' sizes";
	entries_free(&es);
	CHECK_NOERR(e);

	/* Everything at once, oldest first. */
	CHECK_NOERR(queue_is("t1", all8, NFX, &span));
	CHECK_EQ_INT(span.entries, NFX);
	CHECK_EQ_INT(span.samples, t.samples);
	CHECK_EQ_INT(span.bytes, t.bytes);
	CHECK_EQ_INT(span.raw, raw);
	CHECK_EQ_INT(span.last_seq - span.first_seq, NFX - 1);

	/* The limits of one read: entries, decoded bytes (at least one). */
	buf_init(&body, 1u << 30);
	if (store_read_batch(&E.st, "t1", 2, 0, UINT64_MAX, UINT64_MAX, 3, &body, &span) < 0)
		e = "store_read_batch failed";
	else if (span.entries != 3)
		e = err("max_entries 3 read %llu", (unsigned long long)span.entries);
	else
		e = block_is(body.p, body.len, all8, 3);
	buf_reset(&body);
	if (e == NULL &&
	    store_read_batch(&E.st, "t1", 2, 0, UINT64_MAX, fx[0].rawlen + fx[1].rawlen, 256,
			     &body, &span) < 0)
		e = "store_read_batch failed";
	else if (e == NULL && span.entries != 2)
		e = err("max_raw of two read %llu", (unsigned long long)span.entries);
	else if (e == NULL)
		e = block_is(body.p, body.len, all8, 2);
	buf_reset(&body);
	if (e == NULL &&
	    store_read_batch(&E.st, "t1", 2, 0, UINT64_MAX, 1, 256, &body, &span) < 0)
		e = "store_read_batch failed";
	else if (e == NULL && span.entries != 1)
		e = "a tiny max_raw must still read one entry";
	buf_reset(&body);
	/* From the middle on. */
	if (e == NULL &&
	    store_read_batch(&E.st, "t1", 2, span.first_seq + 5, UINT64_MAX, UINT64_MAX, 256,
			     &body, &span) < 0)
		e = "store_read_batch failed";
	else if (e == NULL)
		e = block_is(body.p, body.len, all8 + 5, 3);
	buf_reset(&body);
	/* Another tenant, a prefix of this one: nothing. */
	if (e == NULL &&
	    (store_read_batch(&E.st, "t", 1, 0, UINT64_MAX, UINT64_MAX, 256, &body,
			      &span) < 0 || span.entries != 0 || body.len != 0))
		e = "tenant \"t\" read entries of \"t1\"";
	buf_free(&body);
	CHECK_NOERR(e);
}

/* Acknowledged ranges are deleted, and nothing else. */
static void test_ack_deletes_range(void)
{
	static const int rest[] = { 4, 5, 6, 7 }, tail[] = { 6, 7 };
	struct store_span span;
	struct queue_totals t;
	struct queue_tenant ts;
	uint64_t s0;

	CHECK_NOERR(env_create(64 * MIB, 8 * MIB));
	CHECK_NOERR(batches_new(NFX + 1));
	for (int i = 0; i < NFX; i++)
		CHECK_NOERR(batch_fixture(&E.b[i], "t1", i, NULL));
	CHECK_NOERR(batch_fixture(&E.b[NFX], "t2", 0, NULL));
	CHECK_NOERR(submit_each(0, NFX + 1));
	CHECK_NOERR(queue_is("t1", all8, NFX, &span));
	s0 = span.first_seq;

	/* The oldest four, in two acknowledgements. */
	writer_ack(E.w, "t1", 2, s0, s0 + 1);
	writer_ack(E.w, "t1", 2, s0 + 2, s0 + 3);
	CHECK_NOERR(wait_entries(NFX + 1 - 4));
	queue_totals(&E.q, &t);
	CHECK_EQ_INT(t.samples, fx_samples(rest, 4) + fx[0].counts.samples);
	CHECK_NOERR(queue_is("t1", rest, 4, &span));
	CHECK_EQ_INT(span.first_seq, s0 + 4);
	CHECK_EQ_INT(tenant_state("t1", &ts), 0);
	CHECK_EQ_INT(ts.entries, 4);
	CHECK_EQ_INT(ts.first_seq, s0 + 4);
	CHECK(ts.send_seq >= s0 + 4);
	/* A range reaching past the newest entry, starting before the
	 * oldest left: deletes what is there, leaves t2 alone. */
	writer_ack(E.w, "t1", 2, s0, s0 + 5);
	CHECK_NOERR(wait_entries(3));
	CHECK_NOERR(queue_is("t1", tail, 2, &span));
	writer_ack(E.w, "t1", 2, s0 + 6, UINT64_MAX);
	CHECK_NOERR(wait_entries(1));
	queue_totals(&E.q, &t);
	CHECK_EQ_INT(t.samples, fx[0].counts.samples);
	CHECK_NOERR(queue_is("t2", all8, 1, &span));
	CHECK_EQ_INT(tenant_state("t1", &ts), 0);
	CHECK_EQ_INT(ts.entries, 0);
	CHECK_EQ_INT(ts.bytes, 0);
	CHECK_EQ_INT(ts.samples, 0);
}

/* The refused entry moves to setaside, whole, with the upstream's answer. */
static void test_set_aside_moves_entry(void)
{
	static const int rest[] = { 0, 1, 3, 4, 5, 6, 7 };
	static const char reason[] = "series 3: labels not sorted: \"a\" after \"b\"";
	struct entries es = { NULL, 0 }, sa = { NULL, 0 };
	struct setaside_hdr sh;
	struct store_span span;
	struct queue_totals t;
	uint8_t *orig = NULL;
	size_t origlen = 0;
	uint64_t s0, before;
	const char *e = NULL;

	CHECK_NOERR(env_create(64 * MIB, 8 * MIB));
	CHECK_NOERR(batches_new(NFX));
	for (int i = 0; i < NFX; i++)
		CHECK_NOERR(batch_fixture(&E.b[i], "t1", i, NULL));
	CHECK_NOERR(submit_each(0, NFX));
	CHECK_NOERR(entries_read(E.st.queue, &es));
	CHECK(es.n == NFX);
	s0 = es.e[0].seq;
	orig = es.e[2].val;      /* keep the value as it was */
	origlen = es.e[2].vlen;
	es.e[2].val = NULL;
	entries_free(&es);

	before = clock_wall_ms();
	writer_set_aside(E.w, "t1", 2, s0 + 2, 400, reason);
	e = wait_entries(NFX - 1);
	if (e == NULL)
		e = entries_read(E.st.setaside, &sa);
	if (e == NULL && sa.n != 1)
		e = err("%zu records set aside", sa.n);
	if (e == NULL && (strcmp(sa.e[0].tenant, "t1") != 0 ||
			  sa.e[0].seq != s0 + 2))
		e = "the record set aside has another key";
	if (e == NULL && sa.e[0].vlen < sizeof(sh))
		e = "setaside record too short";
	if (e == NULL) {
		memcpy(&sh, sa.e[0].val, sizeof(sh));
		if (sh.status != 400)
			e = err("status %u", sh.status);
		else if (sh.reason_len != strlen(reason) ||
			 memcmp(sa.e[0].val + sizeof(sh), reason,
				sh.reason_len) != 0)
			e = "reason not kept";
		else if (sh.set_aside_ms < before || sh.set_aside_ms > clock_wall_ms())
			e = "set_aside_ms outside the test";
		else if (sa.e[0].vlen != sizeof(sh) + sh.reason_len + origlen ||
			 memcmp(sa.e[0].val + sizeof(sh) + sh.reason_len, orig,
				origlen) != 0)
			e = "the queue value is not kept as it was";
	}
	entries_free(&sa);
	free(orig);
	CHECK_NOERR(e);
	/* Gone from the queue, its samples with it. */
	queue_totals(&E.q, &t);
	CHECK_EQ_INT(t.entries, NFX - 1);
	CHECK_EQ_INT(t.samples, fx_samples(rest, 7));
	CHECK_NOERR(queue_is("t1", rest, 7, &span));
	CHECK_EQ_INT(span.entries, NFX - 1);
}

/* An entry that is not there: nothing changes (a later batch, committed
 * after the operation, tells when it was applied). */
static void test_set_aside_missing_entry(void)
{
	struct entries sa = { NULL, 0 };
	struct queue_totals t;
	size_t n;

	CHECK_NOERR(env_create(64 * MIB, 8 * MIB));
	CHECK_NOERR(batches_new(2));
	CHECK_NOERR(batch_fixture(&E.b[0], "t1", 0, NULL));
	CHECK_NOERR(batch_fixture(&E.b[1], "t9", 1, NULL));
	CHECK_NOERR(submit_each(0, 1));
	writer_set_aside(E.w, "t1", 2, 12345, 400, "x");
	writer_set_aside(E.w, "nobody", 6, 1, 400, "x");
	CHECK_NOERR(submit_each(1, 2));
	CHECK_EQ_INT(E.b[1].status, BATCH_STORED);
	queue_totals(&E.q, &t);
	CHECK_EQ_INT(t.entries, 2);
	CHECK_NOERR(entries_read(E.st.setaside, &sa));
	n = sa.n;
	entries_free(&sa);
	CHECK_EQ_INT(n, 0);
}

/*
 * Removing an entry that is not the tenant's oldest must not move the
 * forwarder past the older ones: they are still in the buffer and must be
 * sent. queue_claim shows where the forwarder would start.
 */
static void test_set_aside_middle_keeps_older(void)
{
	struct queue_tenant ts;
	struct queue_job job;
	struct entries es = { NULL, 0 };
	uint64_t s0;

	CHECK_NOERR(env_create(64 * MIB, 8 * MIB));
	CHECK_NOERR(batches_new(5));
	for (int i = 0; i < 5; i++)
		CHECK_NOERR(batch_fixture(&E.b[i], "t1", i, NULL));
	CHECK_NOERR(submit_each(0, 5));
	CHECK_NOERR(entries_read(E.st.queue, &es));
	s0 = es.e[0].seq;
	entries_free(&es);
	writer_set_aside(E.w, "t1", 2, s0 + 2, 400, "bad");
	CHECK_NOERR(wait_entries(4));
	CHECK_EQ_INT(tenant_state("t1", &ts), 0);
	CHECK_EQ_INT(ts.entries, 4);
	CHECK_EQ_INT(queue_claim(&E.q, 1, &job), 0);
	queue_unclaim(&E.q, &job);
	CHECK_EQ_INT(job.first, s0);
	CHECK_EQ_INT(ts.first_seq, s0);
}

/* The same for an acknowledgement of a range after the oldest entry. */
static void test_ack_middle_keeps_older(void)
{
	struct queue_tenant ts;
	struct queue_job job;
	struct entries es = { NULL, 0 };
	uint64_t s0;

	CHECK_NOERR(env_create(64 * MIB, 8 * MIB));
	CHECK_NOERR(batches_new(5));
	for (int i = 0; i < 5; i++)
		CHECK_NOERR(batch_fixture(&E.b[i], "t1", i, NULL));
	CHECK_NOERR(submit_each(0, 5));
	CHECK_NOERR(entries_read(E.st.queue, &es));
	s0 = es.e[0].seq;
	entries_free(&es);
	writer_ack(E.w, "t1", 2, s0 + 1, s0 + 2);
	CHECK_NOERR(wait_entries(3));
	CHECK_EQ_INT(tenant_state("t1", &ts), 0);
	CHECK_EQ_INT(ts.entries, 3);
	CHECK_EQ_INT(queue_claim(&E.q, 1, &job), 0);
	queue_unclaim(&E.q, &job);
	CHECK_EQ_INT(job.first, s0);
	CHECK_EQ_INT(ts.first_seq, s0);
}

/* And for one of the newest entries: the older ones are still counted. */
static void test_ack_newest_keeps_older(void)
{
	struct queue_tenant ts;
	struct queue_totals t;
	struct queue_job job;
	struct entries es = { NULL, 0 };
	uint64_t s0;

	CHECK_NOERR(env_create(64 * MIB, 8 * MIB));
	CHECK_NOERR(batches_new(5));
	for (int i = 0; i < 5; i++)
		CHECK_NOERR(batch_fixture(&E.b[i], "t1", i, NULL));
	CHECK_NOERR(submit_each(0, 5));
	CHECK_NOERR(entries_read(E.st.queue, &es));
	s0 = es.e[0].seq;
	entries_free(&es);
	writer_ack(E.w, "t1", 2, s0 + 3, s0 + 4);
	CHECK_NOERR(wait_entries(3));
	queue_totals(&E.q, &t);
	CHECK_EQ_INT(t.samples, 3 * 500);
	CHECK_EQ_INT(tenant_state("t1", &ts), 0);
	CHECK_EQ_INT(ts.entries, 3);
	CHECK_EQ_INT(ts.samples, 3 * 500);
	CHECK_EQ_INT(ts.first_seq, s0);
	CHECK_EQ_INT(queue_claim(&E.q, 1, &job), 0);
	queue_unclaim(&E.q, &job);
	CHECK_EQ_INT(job.first, s0);
}

/* Reopening rebuilds the queue from the records, and sequence numbers go
 * on where they were. */
static void test_reopen_rebuilds_queue(void)
{
	static const int left[] = { 3, 4, 5, 6, 7 }, after[] = { 3, 4, 5, 6, 7, 1 };
	struct entries sa = { NULL, 0 }, es = { NULL, 0 };
	struct queue_totals t1, t2;
	struct queue_tenant a, b;
	struct store_span span;
	uint64_t s0, next, newest;
	size_t nsa;

	CHECK_NOERR(env_create(64 * MIB, 8 * MIB));
	CHECK_NOERR(batches_new(NFX + 1));
	for (int i = 0; i < NFX; i++)
		CHECK_NOERR(batch_fixture(&E.b[i], "t1", i, NULL));
	CHECK_NOERR(batch_fixture(&E.b[NFX], "t1", 1, NULL));
	CHECK_NOERR(submit_each(0, NFX));
	CHECK_NOERR(queue_is("t1", all8, NFX, &span));
	s0 = span.first_seq;
	writer_ack(E.w, "t1", 2, s0, s0 + 1);
	CHECK_NOERR(wait_entries(NFX - 2));
	writer_set_aside(E.w, "t1", 2, s0 + 2, 422, "refused");
	CHECK_NOERR(wait_entries(NFX - 3));
	queue_totals(&E.q, &t1);
	CHECK_EQ_INT(tenant_state("t1", &a), 0);
	next = E.st.next_seq;
	CHECK_EQ_INT(next, s0 + NFX);

	env_stop();
	CHECK_NOERR(env_start());
	queue_totals(&E.q, &t2);
	CHECK_EQ_INT(t2.entries, t1.entries);
	CHECK_EQ_INT(t2.bytes, t1.bytes);
	CHECK_EQ_INT(t2.samples, t1.samples);
	CHECK_EQ_INT(t2.oldest_ms, t1.oldest_ms);
	CHECK_EQ_INT(tenant_state("t1", &b), 0);
	CHECK_EQ_INT(b.entries, a.entries);
	CHECK_EQ_INT(b.bytes, a.bytes);
	CHECK_EQ_INT(b.samples, a.samples);
	CHECK_EQ_INT(a.first_seq, s0 + 3);
	CHECK_EQ_INT(b.first_seq, s0 + 3);
	CHECK_EQ_INT(b.last_seq, s0 + NFX - 1);
	CHECK_EQ_INT(b.send_seq, s0 + 3);
	CHECK_NOERR(entries_read(E.st.queue, &es));
	newest = es.n ? es.e[0].h.created_ms : 0;
	entries_free(&es);
	CHECK_EQ_INT(t2.oldest_ms, newest);
	CHECK_EQ_INT(E.st.next_seq, next);
	CHECK_NOERR(queue_is("t1", left, 5, &span));
	CHECK_NOERR(entries_read(E.st.setaside, &sa));
	nsa = sa.n;
	entries_free(&sa);
	CHECK_EQ_INT(nsa, 1);

	/* A new entry takes the next number, after every one used. */
	CHECK_NOERR(submit_each(NFX, NFX + 1));
	CHECK_EQ_INT(E.b[NFX].status, BATCH_STORED);
	CHECK_NOERR(entries_read(E.st.queue, &es));
	newest = es.n ? es.e[es.n - 1].seq : 0;
	entries_free(&es);
	CHECK_EQ_INT(newest, next);
	CHECK_NOERR(queue_is("t1", after, 6, &span));
}

/* Reads meta "next_seq" directly. */
static uint64_t meta_next_seq(void)
{
	MDB_txn *txn;
	MDB_val k = { 8, "next_seq" }, v;
	uint64_t n = 0;

	if (mdb_txn_begin(E.st.env, NULL, MDB_RDONLY, &txn) != 0)
		return 0;
	if (mdb_get(txn, E.st.meta, &k, &v) == 0 && v.mv_size == 8)
		memcpy(&n, v.mv_data, 8);
	mdb_txn_abort(txn);
	return n;
}

/* With every entry delivered and deleted, the numbers still go on after a
 * restart: none is used twice. */
static void test_seq_not_reused_after_restart(void)
{
	struct entries es = { NULL, 0 };
	struct store_span span;
	struct queue_totals t;
	uint64_t s0, next, got;

	CHECK_NOERR(env_create(64 * MIB, 8 * MIB));
	CHECK_NOERR(batches_new(4));
	for (int i = 0; i < 4; i++)
		CHECK_NOERR(batch_fixture(&E.b[i], "t1", i, NULL));
	CHECK_NOERR(submit_each(0, 3));
	CHECK_NOERR(queue_is("t1", all8, 3, &span));
	s0 = span.first_seq;
	writer_ack(E.w, "t1", 2, s0, s0 + 2);
	CHECK_NOERR(wait_entries(0));
	next = E.st.next_seq;
	CHECK_EQ_INT(next, s0 + 3);
	CHECK_EQ_INT(meta_next_seq(), next);

	env_stop();
	CHECK_NOERR(env_start());
	queue_totals(&E.q, &t);
	CHECK_EQ_INT(t.entries, 0);
	CHECK_EQ_INT(E.st.next_seq, next);
	CHECK_NOERR(submit_each(3, 4));
	CHECK_NOERR(entries_read(E.st.queue, &es));
	got = es.n == 1 ? es.e[0].seq : 0;
	entries_free(&es);
	CHECK_EQ_INT(got, next);
	CHECK_EQ_INT(meta_next_seq(), next + 1);
}

/* ---- many entries ------------------------------------------------------ */

#define MANY 2000
#define MANY_SAMPLES 10

/*
 * Packs a WriteRequest of one series {__name__="many", i="<i>"} with
 * MANY_SAMPLES samples. Returns malloc'd bytes (caller frees).
 */
static uint8_t *small_request(size_t i, size_t *len)
{
	Prometheus__WriteRequest req = PROMETHEUS__WRITE_REQUEST__INIT;
	Prometheus__TimeSeries ts = PROMETHEUS__TIME_SERIES__INIT, *tsp = &ts;
	Prometheus__Label l0 = PROMETHEUS__LABEL__INIT,
			  l1 = PROMETHEUS__LABEL__INIT, *lp[2] = { &l0, &l1 };
	Prometheus__Sample sm[MANY_SAMPLES], *smp[MANY_SAMPLES];
	char id[24];

	snprintf(id, sizeof(id), "%zu", i);
	l0.name = "__name__";
	l0.value = "many";
	l1.name = "i";
	l1.value = id;
	for (size_t j = 0; j < MANY_SAMPLES; j++) {
		prometheus__sample__init(&sm[j]);
		sm[j].value = (double)i + (double)j / 8;
		sm[j].timestamp = 1700000000000 + (int64_t)j * 15000;
		smp[j] = &sm[j];
	}
	ts.n_labels = 2;
	ts.labels = lp;
	ts.n_samples = MANY_SAMPLES;
	ts.samples = smp;
	req.n_timeseries = 1;
	req.timeseries = &tsp;
	return pack(&req.base, len);
}

/* Which i a stored small request carries, or -1. */
static long entry_series_i(const struct entry *en)
{
	Prometheus__WriteRequest *m;
	size_t rawlen;
	uint8_t *raw;
	long i = -1;

	raw = uncompress(en->val + sizeof(struct entry_hdr),
			 en->vlen - sizeof(struct entry_hdr), &rawlen);
	if (raw == NULL)
		return -1;
	m = prometheus__write_request__unpack(NULL, rawlen, raw);
	free(raw);
	if (m == NULL)
		return -1;
	if (m->n_timeseries == 1 && m->timeseries[0]->n_labels == 2 &&
	    strcmp(m->timeseries[0]->labels[1]->name, "i") == 0 &&
	    m->timeseries[0]->n_samples == MANY_SAMPLES)
		i = strtol(m->timeseries[0]->labels[1]->value, NULL, 10);
	prometheus__write_request__free_unpacked(m, NULL);
	return i;
}

/*
 * Checks that tenant t (requests i = 3k + t) holds exactly its k in
 * [0, n) outside [gone_from, gone_to), oldest first.
 */
static const char *many_check(const struct entries *es, int t, size_t n,
			      size_t gone_from, size_t gone_to)
{
	static size_t idx[MANY];
	char name[8];
	size_t got, j = 0;

	snprintf(name, sizeof(name), "t%d", t);
	got = entries_of(es, name, idx, MANY);
	for (size_t k = 0; k < n; k++) {
		long want = (long)(3 * k) + t, have;

		if (k >= gone_from && k < gone_to)
			continue;
		if (j >= got)
			return err("%s: entry for i=%ld missing", name, want);
		if ((have = entry_series_i(&es->e[idx[j]])) != want)
			return err("%s: entry %zu holds i=%ld, not i=%ld", name,
				   j, have, want);
		if (j > 0 && es->e[idx[j]].seq <= es->e[idx[j - 1]].seq)
			return err("%s: sequence numbers out of order", name);
		j++;
	}
	if (j != got)
		return err("%s: %zu entries, expected %zu", name, got, j);
	return NULL;
}

/* Sequence numbers of tenant t's entries, in order, into seqs. */
static size_t many_seqs(const struct entries *es, int t, uint64_t *seqs)
{
	static size_t idx[MANY];
	char name[8];
	size_t n;

	snprintf(name, sizeof(name), "t%d", t);
	n = entries_of(es, name, idx, MANY);
	for (size_t i = 0; i < n; i++)
		seqs[i] = es->e[idx[i]].seq;
	return n;
}

/*
 * 2000 small entries of three tenants; acknowledgements at the start of
 * the first, the middle of the second and the end of the third (the end of
 * the database) delete exactly those entries across many LMDB pages.
 */
static void test_many_entries_ack_ranges(void)
{
	static uint64_t s0[MANY], s1[MANY], s2[MANY];
	struct entries es = { NULL, 0 };
	struct queue_totals t;
	struct queue_tenant q0;
	size_t n0, n1, n2;
	const char *e = NULL;

	/* max_request_size 1: every batch is an entry of its own. */
	CHECK_NOERR(env_create(64 * MIB, 1));
	CHECK_NOERR(batches_new(MANY));
	for (size_t i = 0; i < MANY; i++) {
		struct wire_counts c = { 1, MANY_SAMPLES, 0, 0, 0 };
		char tenant[8];
		size_t len;
		uint8_t *raw = small_request(i, &len);

		CHECK(raw != NULL);
		snprintf(tenant, sizeof(tenant), "t%zu", i % 3);
		memset(&E.b[i], 0, sizeof(E.b[i]));
		E.b[i].tlen = strlen(tenant);
		memcpy(E.b[i].tenant, tenant, E.b[i].tlen);
		E.b[i].done = on_done;
		e = batch_add_chunk(&E.b[i], raw, len, &c);
		free(raw);
		CHECK_NOERR(e);
	}
	CHECK_NOERR(submit_wait(0, MANY));
	for (size_t i = 0; i < MANY; i++)
		CHECK_EQ_INT(E.b[i].status, BATCH_STORED);
	queue_totals(&E.q, &t);
	CHECK_EQ_INT(t.entries, MANY);
	CHECK_EQ_INT(t.samples, MANY * MANY_SAMPLES);
	CHECK_NOERR(entries_read(E.st.queue, &es));
	n0 = many_seqs(&es, 0, s0);
	n1 = many_seqs(&es, 1, s1);
	n2 = many_seqs(&es, 2, s2);
	e = many_check(&es, 0, 667, 0, 0);
	if (e == NULL)
		e = many_check(&es, 1, 667, 0, 0);
	if (e == NULL)
		e = many_check(&es, 2, 666, 0, 0);
	entries_free(&es);
	CHECK_NOERR(e);
	CHECK_EQ_INT(n0, 667);
	CHECK_EQ_INT(n1, 667);
	CHECK_EQ_INT(n2, 666);

	writer_ack(E.w, "t0", 2, 0, s0[49]);            /* the first 50 */
	writer_ack(E.w, "t1", 2, s1[100], s1[499]);     /* 400 in the middle */
	writer_ack(E.w, "t2", 2, s2[516], s2[665] + 1000); /* the last 150 */
	CHECK_NOERR(wait_entries(MANY - 50 - 400 - 150));
	queue_totals(&E.q, &t);
	CHECK_EQ_INT(t.samples, (MANY - 600) * MANY_SAMPLES);
	CHECK_EQ_INT(tenant_state("t0", &q0), 0);
	CHECK_EQ_INT(q0.entries, 617);
	CHECK_EQ_INT(q0.first_seq, s0[50]);
	CHECK_NOERR(entries_read(E.st.queue, &es));
	e = many_check(&es, 0, 667, 0, 50);
	if (e == NULL)
		e = many_check(&es, 1, 667, 100, 500);
	if (e == NULL)
		e = many_check(&es, 2, 666, 516, 666);
	entries_free(&es);
	CHECK_NOERR(e);

	/* All of the tenant in the middle of the database: its neighbours
	 * keep every entry. */
	writer_ack(E.w, "t1", 2, 0, UINT64_MAX);
	CHECK_NOERR(wait_entries(617 + 516));
	CHECK_NOERR(entries_read(E.st.queue, &es));
	e = many_check(&es, 0, 667, 0, 50);
	if (e == NULL)
		e = many_check(&es, 1, 0, 0, 0);
	if (e == NULL)
		e = many_check(&es, 2, 666, 516, 666);
	entries_free(&es);
	CHECK_NOERR(e);
	/* And the rest, up to an empty database. */
	writer_ack(E.w, "t2", 2, 0, UINT64_MAX);
	writer_ack(E.w, "t0", 2, 0, UINT64_MAX);
	CHECK_NOERR(wait_entries(0));
	queue_totals(&E.q, &t);
	CHECK_EQ_INT(t.bytes, 0);
	CHECK_EQ_INT(t.samples, 0);
	CHECK_NOERR(entries_read(E.st.queue, &es));
	n0 = es.n;
	entries_free(&es);
	CHECK_EQ_INT(n0, 0);
}

/* ---- buffer full ------------------------------------------------------- */

static void test_buffer_full(void)
{
	enum { N = 120, BIG = 100 };
	struct queue_totals t;
	struct store_span span;
	struct buf body;
	size_t stored = 0, full = 0, series = 0;
	uint64_t stored_bytes = 0, vb;
	const char *e = NULL;

	CHECK_NOERR(env_create(MIB, 8 * MIB));
	CHECK_NOERR(batches_new(N + 2));
	for (int i = 0; i < N; i++)
		CHECK_NOERR(batch_fixture(&E.b[i], "t1", 1, NULL));
	vb = E.b[0].value_bytes;
	CHECK(N * vb > MIB);
	CHECK_NOERR(submit_wait(0, N));
	for (int i = 0; i < N; i++) {
		if (E.b[i].status == BATCH_STORED) {
			stored++;
			stored_bytes += E.b[i].value_bytes;
		} else if (E.b[i].status == BATCH_FULL) {
			full++;
		}
	}
	CHECK_EQ_INT(stored + full, N);
	CHECK(stored > 0);
	CHECK(full > 0);
	CHECK(stored_bytes <= MIB);
	queue_totals(&E.q, &t);
	CHECK(t.bytes <= MIB);
	/* Refusing only once the buffer is full, not while two more batches
	 * would still fit (max_size bounds what values take on disk). */
	CHECK((stored + 2) * store_value_footprint(&E.st, vb) > MIB);
	CHECK_EQ_INT(t.samples, stored * fx[1].counts.samples);
	/* What was stored is all there. */
	buf_init(&body, 1u << 30);
	for (uint64_t seq = 0; e == NULL;) {
		buf_reset(&body);
		if (store_read_batch(&E.st, "t1", 2, seq, UINT64_MAX, UINT64_MAX, 256, &body,
				     &span) < 0) {
			e = "store_read_batch failed";
		} else if (span.entries == 0) {
			break;
		} else {
			size_t rawlen;
			uint8_t *raw = uncompress(body.p, body.len, &rawlen);
			Prometheus__WriteRequest *m = raw == NULL ? NULL :
				prometheus__write_request__unpack(NULL, rawlen, raw);
			if (m == NULL)
				e = "stored data does not decode";
			else
				series += m->n_timeseries;
			if (m != NULL)
				prometheus__write_request__free_unpacked(m, NULL);
			free(raw);
			seq = span.last_seq + 1;
		}
	}
	buf_free(&body);
	CHECK_NOERR(e);
	CHECK_EQ_INT(series, stored * fx[1].counts.series);

	/* Emptied, the buffer takes batches again, but never one larger
	 * than all of it. */
	writer_ack(E.w, "t1", 2, 0, UINT64_MAX);
	CHECK_NOERR(wait_entries(0));
	CHECK_NOERR(batch_fixture(&E.b[N], "t1", 3, NULL));
	for (int i = 1; i < BIG; i++)
		CHECK_NOERR(batch_add_chunk(&E.b[N], fx[3].raw, fx[3].rawlen,
					    &fx[3].counts));
	CHECK(E.b[N].value_bytes > MIB);
	CHECK_NOERR(batch_fixture(&E.b[N + 1], "t1", 2, NULL));
	CHECK_NOERR(submit_each(N, N + 2));
	CHECK_EQ_INT(E.b[N].status, BATCH_FULL);
	CHECK_EQ_INT(E.b[N + 1].status, BATCH_STORED);
	queue_totals(&E.q, &t);
	CHECK_EQ_INT(t.entries, 1);
	CHECK_EQ_INT(t.samples, fx[2].counts.samples);
}

/* ---- merging batches of one commit ------------------------------------- */

/*
 * Submits batch 0 and holds the writer in its done callback while batches
 * 1..n-1 are queued, so that those are written in one round.
 */
static const char *submit_held(struct gate *g, size_t n)
{
	const char *e = NULL;

	writer_submit(E.w, &E.b[0]);
	if (gate_wait_entered(g) < 0)
		e = "the writer never finished the first batch";
	for (size_t i = 1; i < n; i++)
		writer_submit(E.w, &E.b[i]);
	gate_open(g);
	if (e == NULL && wait_done(n) < 0)
		e = "timed out waiting for the writer";
	return e;
}

/* Batches of one tenant committed together become one entry. */
static void test_merge_one_round(void)
{
	static const int round2[] = { 1, 2, 3, 4, 5, 6, 7 };
	struct entries es = { NULL, 0 };
	struct store_span span;
	struct queue_totals t;
	struct gate g = { 0, 0 };
	struct entry_hdr h0, h1;
	const char *e = NULL;
	size_t n;

	memset(&h0, 0, sizeof(h0));
	memset(&h1, 0, sizeof(h1));
	CHECK_NOERR(env_create(64 * MIB, 8 * MIB));
	CHECK_NOERR(batches_new(NFX));
	for (int i = 0; i < NFX; i++)
		CHECK_NOERR(batch_fixture(&E.b[i], "m", i, i == 0 ? &g : NULL));
	CHECK_NOERR(submit_held(&g, NFX));
	for (int i = 0; i < NFX; i++)
		CHECK_EQ_INT(E.b[i].status, BATCH_STORED);
	queue_totals(&E.q, &t);
	CHECK_EQ_INT(t.entries, 2);
	CHECK_EQ_INT(t.samples, fx_samples(all8, NFX));
	CHECK_NOERR(entries_read(E.st.queue, &es));
	n = es.n;
	if (n == 2) {
		h0 = es.e[0].h;
		h1 = es.e[1].h;
		e = block_is(es.e[1].val + sizeof(struct entry_hdr),
			     es.e[1].vlen - sizeof(struct entry_hdr), round2, 7);
	}
	entries_free(&es);
	CHECK_EQ_INT(n, 2);
	CHECK_NOERR(e);
	CHECK_EQ_INT(h0.requests, 1);
	CHECK_EQ_INT(h1.requests, 7);
	CHECK_EQ_INT(h0.requests + h1.requests, NFX);
	CHECK_EQ_INT(h1.samples, fx_samples(round2, 7));
	CHECK_EQ_INT(h1.metadata, fx[5].counts.metadata);
	{
		uint64_t series = 0, raw = 0;
		for (int i = 1; i < NFX; i++) {
			series += fx[i].counts.series;
			raw += fx[i].rawlen;
		}
		CHECK_EQ_INT(h1.series, series);
		CHECK_EQ_INT(h1.raw_len, raw);
	}
	CHECK_NOERR(queue_is("m", all8, NFX, &span));
}

/* Sums of the headers of es's entries: requests, samples. */
static void entries_sums(const struct entries *es, uint64_t *requests,
			 uint64_t *samples)
{
	*requests = *samples = 0;
	for (size_t i = 0; i < es->n; i++) {
		*requests += es->e[i].h.requests;
		*samples += es->e[i].h.samples;
	}
}

/*
 * With a smaller max_request_size the round's batches go into several
 * entries, none decoding to more than the limit (each fixture is below
 * it), in order, with every request and sample counted.
 */
static void test_merge_respects_max_request_size(void)
{
	struct entries es = { NULL, 0 };
	struct store_span span;
	struct gate g = { 0, 0 };
	uint64_t requests, samples;
	const char *e = NULL;
	size_t n;

	CHECK_NOERR(env_create(64 * MIB, 150000));
	CHECK_NOERR(batches_new(NFX));
	for (int i = 0; i < NFX; i++)
		CHECK_NOERR(batch_fixture(&E.b[i], "m", i, i == 0 ? &g : NULL));
	CHECK_NOERR(submit_held(&g, NFX));
	for (int i = 0; i < NFX; i++)
		CHECK_EQ_INT(E.b[i].status, BATCH_STORED);
	CHECK_NOERR(entries_read(E.st.queue, &es));
	n = es.n;
	entries_sums(&es, &requests, &samples);
	for (size_t i = 0; i < es.n && e == NULL; i++)
		if (es.e[i].h.raw_len > 150000)
			e = err("entry %zu: %u decoded bytes", i, es.e[i].h.raw_len);
	entries_free(&es);
	CHECK_NOERR(e);
	/* 57301 | 70040+57334 | 71105+58657 | 22161+64700+45023 */
	CHECK_EQ_INT(n, 4);
	CHECK_EQ_INT(requests, NFX);
	CHECK_EQ_INT(samples, fx_samples(all8, NFX));
	CHECK_NOERR(queue_is("m", all8, NFX, &span));
	CHECK_EQ_INT(span.entries, 4);
}

/*
 * Each entry's requests counts the requests whose data it holds: with
 * one chunk per batch, the number of batches merged into it. An entry
 * never says it holds no request.
 */
static void test_merge_requests_per_entry(void)
{
	static const uint32_t want[] = { 1, 2, 2, 3 };
	struct entries es = { NULL, 0 };
	struct gate g = { 0, 0 };
	uint32_t got[8] = { 0 };
	size_t n;

	CHECK_NOERR(env_create(64 * MIB, 150000));
	CHECK_NOERR(batches_new(NFX));
	for (int i = 0; i < NFX; i++)
		CHECK_NOERR(batch_fixture(&E.b[i], "m", i, i == 0 ? &g : NULL));
	CHECK_NOERR(submit_held(&g, NFX));
	CHECK_NOERR(entries_read(E.st.queue, &es));
	n = es.n;
	for (size_t i = 0; i < es.n && i < 8; i++)
		got[i] = es.e[i].h.requests;
	entries_free(&es);
	CHECK_EQ_INT(n, 4);
	for (size_t i = 0; i < 4; i++) {
		if (got[i] != want[i]) {
			snprintf(unit_msg, sizeof(unit_msg),
				 "%s:%d: entries' requests are %u %u %u %u, "
				 "their data comes from %u %u %u %u requests",
				 __FILE__, __LINE__, got[0], got[1], got[2],
				 got[3], want[0], want[1], want[2], want[3]);
			unit_cur_failed = 1;
			return;
		}
	}
}

/* Two tenants in one round: one entry each, in submission order. */
static void test_merge_two_tenants(void)
{
	static const int x2[] = { 1, 3, 5, 7 }, y[] = { 2, 4, 6 },
			 xall[] = { 0, 1, 3, 5, 7 };
	struct store_span span;
	struct queue_tenant qx, qy;
	struct gate g = { 0, 0 };
	struct entries es = { NULL, 0 };
	size_t n;
	const char *e = NULL;

	CHECK_NOERR(env_create(64 * MIB, 8 * MIB));
	CHECK_NOERR(batches_new(NFX));
	for (int i = 0; i < NFX; i++)
		CHECK_NOERR(batch_fixture(&E.b[i], i % 2 ? "x" : "y", i,
					  i == 0 ? &g : NULL));
	/* Batch 0 goes to "x" too. */
	memcpy(E.b[0].tenant, "x", 2);
	CHECK_NOERR(submit_held(&g, NFX));
	CHECK_EQ_INT(tenant_state("x", &qx), 0);
	CHECK_EQ_INT(tenant_state("y", &qy), 0);
	CHECK_EQ_INT(qx.entries, 2);
	CHECK_EQ_INT(qy.entries, 1);
	CHECK_EQ_INT(qx.samples, fx_samples(xall, 5));
	CHECK_EQ_INT(qy.samples, fx_samples(y, 3));
	CHECK_NOERR(entries_read(E.st.queue, &es));
	n = es.n;
	if (n == 3)
		e = block_is(es.e[1].val + sizeof(struct entry_hdr),
			     es.e[1].vlen - sizeof(struct entry_hdr), x2, 4);
	if (n == 3 && e == NULL && es.e[1].h.requests != 4)
		e = "x's merged entry does not count 4 requests";
	if (n == 3 && e == NULL && es.e[2].h.requests != 3)
		e = "y's entry does not count 3 requests";
	entries_free(&es);
	CHECK_EQ_INT(n, 3);
	CHECK_NOERR(e);
	CHECK_NOERR(queue_is("x", xall, 5, &span));
	CHECK_NOERR(queue_is("y", y, 3, &span));
}

/* ---- from request bodies ----------------------------------------------- */

/* Bodies through ingest_body, stored and read back: as sent without a
 * tenant label, with the label set otherwise. */
static void test_ingest_then_store(void)
{
	static const int three[] = { 0, 5, 7 };
	struct store_span span;
	struct buf body;
	struct wire_counts counts;
	uint64_t decoded, series = 0;
	char why[256];
	const char *e = NULL;

	CHECK_NOERR(env_create(64 * MIB, 8 * MIB));
	CHECK_NOERR(batches_new(6));
	for (int i = 0; i < 6; i++) {
		struct ingest_req r = { "acme", 4, NULL, NULL, NULL, NULL, NULL };
		int status;

		if (i >= 3) {
			r.tenant = "labelled";
			r.tlen = 8;
			r.tenant_label = "tenant";
		}
		buf_init(&body, E.cfg.max_body_size);
		buf_append(&body, fx[three[i % 3]].z, fx[three[i % 3]].zlen);
		status = ingest_body(&E.cfg, &r, &body, &E.b[i], &counts,
				     &decoded, why, sizeof(why));
		buf_free(&body);
		CHECK_EQ_INT(status, 0);
		E.b[i].done = on_done;
	}
	CHECK_NOERR(submit_wait(0, 6));
	for (int i = 0; i < 6; i++)
		CHECK_EQ_INT(E.b[i].status, BATCH_STORED);
	CHECK_NOERR(queue_is("acme", three, 3, &span));
	CHECK_EQ_INT(span.samples, fx_samples(three, 3));

	/* The labelled tenant: every series carries tenant="labelled". */
	buf_init(&body, 1u << 30);
	if (store_read_batch(&E.st, "labelled", 8, 0, UINT64_MAX, UINT64_MAX, 256, &body,
			     &span) < 0 || span.entries == 0) {
		e = "nothing stored for \"labelled\"";
	} else {
		size_t rawlen;
		uint8_t *raw = uncompress(body.p, body.len, &rawlen);
		Prometheus__WriteRequest *m = raw == NULL ? NULL :
			prometheus__write_request__unpack(NULL, rawlen, raw);

		if (m == NULL)
			e = "stored data does not decode";
		for (size_t i = 0; m != NULL && i < m->n_timeseries && e == NULL;
		     i++) {
			const Prometheus__TimeSeries *s = m->timeseries[i];
			size_t tl = 0;

			series++;
			for (size_t j = 0; j < s->n_labels; j++)
				if (strcmp(s->labels[j]->name, "tenant") == 0 &&
				    strcmp(s->labels[j]->value, "labelled") == 0)
					tl++;
			if (tl != 1)
				e = err("series %zu has %zu tenant labels", i, tl);
		}
		if (m != NULL && e == NULL && m->n_metadata != fx[5].req->n_metadata)
			e = "metadata lost";
		if (m != NULL)
			prometheus__write_request__free_unpacked(m, NULL);
		free(raw);
	}
	buf_free(&body);
	CHECK_NOERR(e);
	CHECK_EQ_INT(series, fx[0].counts.series + fx[5].counts.series +
			     fx[7].counts.series);
	ingest_thread_cleanup();
}

int main(void)
{
	if (load_fixtures() < 0) {
		free_fixtures();
		return 1;
	}
#define RUN_STORE(fn)                                                         \
	do {                                                                  \
		RUN(fn);                                                      \
		env_cleanup();                                                \
	} while (0)
	RUN_STORE(test_open_creates_dir_0700);
	RUN_STORE(test_reopen_keeps_data);
	RUN_STORE(test_wrong_format_refused);
	RUN_STORE(test_key_roundtrip);
	RUN_STORE(test_key_order);
	RUN_STORE(test_delete_range_direct);
	RUN_STORE(test_body_streams_entries);
	RUN_STORE(test_body_outlives_delete);
	RUN_STORE(test_body_unreadable_entry);
	RUN_STORE(test_writer_stores_and_reads_back);
	RUN_STORE(test_ack_deletes_range);
	RUN_STORE(test_set_aside_moves_entry);
	RUN_STORE(test_set_aside_missing_entry);
	RUN_STORE(test_set_aside_middle_keeps_older);
	RUN_STORE(test_ack_middle_keeps_older);
	RUN_STORE(test_ack_newest_keeps_older);
	RUN_STORE(test_reopen_rebuilds_queue);
	RUN_STORE(test_seq_not_reused_after_restart);
	RUN_STORE(test_many_entries_ack_ranges);
	RUN_STORE(test_buffer_full);
	RUN_STORE(test_merge_one_round);
	RUN_STORE(test_merge_respects_max_request_size);
	RUN_STORE(test_merge_requests_per_entry);
	RUN_STORE(test_merge_two_tenants);
	RUN_STORE(test_ingest_then_store);
	free_fixtures();
	ingest_thread_cleanup();
	wire_scratch_free();
	return unit_done();
}
