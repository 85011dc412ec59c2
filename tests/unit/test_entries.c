/*
 * test_entries.c - a round's entries: chunks of one tenant go into one
 * entry whose block decodes to their bytes in order and whose header sums
 * their counts; tenants get entries of their own; a written entry is
 * empty again and the next one takes the next sequence number; an empty
 * entry writes nothing.
 *
 * Each test works on its own store in a directory under /tmp.
 */
#include "entries.h"

#include <snappy-c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "tmpstore.h"
#include "unit.h"

#define MIB (1024ull * 1024)

static char dir[64], path[96];
static struct store *st;
static int st_open;
static struct entry_set set;
static struct chunk ch[3];

/* Chunk i: snappy of a text made from i, with counts from i. */
static int chunk_make(struct chunk *c, int i)
{
	char text[200];
	size_t n = (size_t)snprintf(text, sizeof(text),
				    "chunk %d: some bytes, and some bytes again %d", i, i);
	size_t len = snappy_max_compressed_length(n);

	if ((c->block = malloc(len)) == NULL ||
	    snappy_compress(text, n, (char *)c->block, &len) != SNAPPY_OK)
		return -1;
	c->len = len;
	c->raw_len = (uint32_t)n;
	memset(&c->counts, 0, sizeof(c->counts));
	c->counts.series = (uint64_t)i + 1;
	c->counts.samples = 10 * ((uint64_t)i + 1);
	c->counts.histograms = (uint64_t)i;
	return 0;
}

static int setup(void)
{
	if (tmpstore_open(dir, sizeof(dir), path, sizeof(path), "entries", &st,
			  64 * MIB) < 0)
		return -1;
	st_open = 1;
	for (int i = 0; i < 3; i++)
		if (chunk_make(&ch[i], i) < 0)
			return -1;
	return 0;
}

static void cleanup(void)
{
	entry_set_free(&set);
	for (int i = 0; i < 3; i++) {
		free(ch[i].block);
		ch[i].block = NULL;
	}
	if (st_open)
		store_close(st);
	st = NULL;
	st_open = 0;
	tmpdir_remove(dir);
	dir[0] = '\0';
}

/* Writes e in a transaction of its own. Returns entry_write's result. */
static int write_one(struct open_entry *e, uint64_t created_ms,
		     struct entry_written *out)
{
	struct store_txn *txn;
	int rc;

	if (store_txn_begin(st, &txn) != 0)
		return -1;
	rc = entry_write(e, txn, created_ms, out);
	if (rc != 0) {
		store_txn_abort(txn);
		return rc;
	}
	return store_txn_commit(txn) == 0 ? 0 : -1;
}

/* Whether the tenant's entries from seq on decode to the chunks in idx. */
static int decodes_to(const char *tenant, uint64_t seq, uint64_t last,
		      const int *idx, size_t n, struct store_span *span)
{
	char want[1024], got[1024];
	size_t wlen = 0, glen = sizeof(got);
	struct buf body;
	int ok;

	for (size_t i = 0; i < n; i++) {
		size_t k = sizeof(want) - wlen;
		if (snappy_uncompress((const char *)ch[idx[i]].block,
				      ch[idx[i]].len, want + wlen, &k) != SNAPPY_OK)
			return 0;
		wlen += k;
	}
	buf_init(&body, 1 << 20);
	ok = store_read_batch(st, tenant, strlen(tenant), 0, seq, last, UINT64_MAX,
			      256, &body, span) == 0 &&
	     snappy_uncompress((const char *)body.p, body.len, got, &glen) ==
		     SNAPPY_OK &&
	     glen == wlen && memcmp(got, want, wlen) == 0;
	buf_free(&body);
	return ok;
}

static void test_one_tenant_one_entry(void)
{
	static const int all[] = {0, 1, 2};
	struct entry_written out;
	struct store_span span;
	struct open_entry *e;
	uint64_t seq0;

	CHECK(setup() == 0);
	entry_set_reset(&set);
	CHECK((e = entry_set_find(&set, "acme", 4)) != NULL);
	for (int i = 0; i < 3; i++)
		CHECK(entry_add(e, &ch[i]) == 0);
	CHECK(entry_set_find(&set, "acme", 4) == e);
	CHECK_EQ_INT(e->raw, ch[0].raw_len + ch[1].raw_len + ch[2].raw_len);
	seq0 = st->next_seq;
	CHECK_EQ_INT(write_one(e, 1234, &out), 0);
	CHECK_EQ_INT(out.seq, seq0);
	CHECK_EQ_INT(out.samples, 60);
	CHECK(out.bytes > 0);
	CHECK_EQ_INT(e->nparts, 0);
	CHECK_EQ_INT(e->raw, 0);
	CHECK_EQ_INT(e->hdr.samples, 0);
	CHECK(decodes_to("acme", seq0, seq0, all, 3, &span));
	CHECK_EQ_INT(span.entries, 1);
	CHECK_EQ_INT(span.series, 6);
	CHECK_EQ_INT(span.samples, 60);
	CHECK_EQ_INT(span.histograms, 3);
	CHECK_EQ_INT(span.created_ms, 1234);
	/* Empty now: nothing more is written. */
	CHECK_EQ_INT(write_one(e, 1235, &out), 1);
	CHECK_EQ_INT(st->next_seq, seq0 + 1);
}

static void test_tenants_apart_and_in_order(void)
{
	static const int a0[] = {0, 2}, b0[] = {1}, a1[] = {1};
	struct entry_written wa, wb, wa2;
	struct store_span span;
	struct open_entry *a, *b;

	CHECK(setup() == 0);
	entry_set_reset(&set);
	CHECK((a = entry_set_find(&set, "a", 1)) != NULL);
	CHECK(entry_add(a, &ch[0]) == 0);
	CHECK((b = entry_set_find(&set, "b", 1)) != NULL);
	CHECK(entry_add(b, &ch[1]) == 0);
	/* The set may have moved: look the entry up again. */
	CHECK((a = entry_set_find(&set, "a", 1)) != NULL);
	CHECK(entry_add(a, &ch[2]) == 0);
	CHECK_EQ_INT(set.n, 2);
	CHECK_EQ_INT(write_one(a, 1, &wa), 0);
	CHECK_EQ_INT(write_one(&set.open[1], 1, &wb), 0);
	CHECK(wb.seq == wa.seq + 1);
	CHECK(decodes_to("a", wa.seq, wa.seq, a0, 2, &span));
	CHECK(decodes_to("b", wb.seq, wb.seq, b0, 1, &span));
	/* A new round starts with no open entries; "a" gets an empty one. */
	entry_set_reset(&set);
	CHECK_EQ_INT(set.n, 0);
	CHECK((a = entry_set_find(&set, "a", 1)) != NULL);
	CHECK_EQ_INT(a->nparts, 0);
	CHECK_EQ_INT(a->round_bytes, 0);
	CHECK(entry_add(a, &ch[1]) == 0);
	CHECK_EQ_INT(write_one(a, 2, &wa2), 0);
	CHECK(decodes_to("a", wa2.seq, wa2.seq, a1, 1, &span));
	CHECK_EQ_INT(span.samples, 20);
}

int main(void)
{
	RUN(test_one_tenant_one_entry);
	cleanup();
	RUN(test_tenants_apart_and_in_order);
	cleanup();
	return unit_done();
}
