/*
 * test_store.c - the durable buffer itself: the LMDB format, its versions
 * and their conversion, keys, deleting ranges, and request bodies read in
 * place (store_body_open), which must stream the very bytes sblock_concat
 * makes of the same entries, and set-aside entries listed a page at a
 * time (store_setaside_page). What the writer thread makes of batches is
 * test_writer.c's.
 *
 * Every test works in its own directory under /tmp and removes it.
 */
#include "storetest.h"
#include "lanes.h"
#include "setaside.h"

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
	E.st = store_open(nested, MIB, why, sizeof(why));
	rc = E.st != NULL ? 0 : -1;
	CHECK_EQ_INT(rc, 0);
	E.st_open = 1;
	CHECK(stat(nested, &sb) == 0 && S_ISDIR(sb.st_mode));
	CHECK_EQ_INT(sb.st_mode & 0777, 0700);
	snprintf(nested, sizeof(nested), "%s/a", E.dir);
	CHECK(stat(nested, &sb) == 0 && (sb.st_mode & 077) == 0);
	/* The format record, written on creation. */
	CHECK(mdb_txn_begin(E.st->env, NULL, MDB_RDONLY, &txn) == 0);
	rc = mdb_get(txn, E.st->meta, &k, &v);
	ok = rc == 0 && v.mv_size == sizeof(fmt);
	if (ok)
		memcpy(&fmt, v.mv_data, sizeof(fmt));
	mdb_txn_abort(txn);
	CHECK(ok);
	CHECK_EQ_INT(fmt, STORE_FORMAT);
	CHECK_EQ_INT(E.st->next_seq, 1);
	store_close(E.st);
	E.st_open = 0;
	/* A directory that exists is used as it is: never chmod'ed. */
	snprintf(nested, sizeof(nested), "%s/wide", E.dir);
	CHECK(mkdir(nested, 0755) == 0 && chmod(nested, 0755) == 0);
	E.st = store_open(nested, MIB, why, sizeof(why));
	rc = E.st != NULL ? 0 : -1;
	CHECK_EQ_INT(rc, 0);
	E.st_open = 1;
	CHECK(stat(nested, &sb) == 0);
	CHECK_EQ_INT(sb.st_mode & 0777, 0755);
}

/* Stores an entry under sequence number seq, where the store would take
 * its next one: the tests place entries where they want them. */
static int put_entry_at(struct store_txn *t, const char *tenant, size_t tlen,
			uint64_t seq, struct entry_hdr *h,
			const struct sblock_part *parts, size_t n,
			uint64_t *bytes)
{
	uint64_t got;

	t->next_seq = seq;
	return store_put_entry(t, tenant, tlen, h, parts, n, &got, bytes);
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
	struct store_txn *txn;
	int rc;

	CHECK_NOERR(env_mkdir());
	E.cfg.max_size = 64 * MIB;
	CHECK((E.st = store_open(E.path, E.cfg.max_size, why, sizeof(why))) != NULL);
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
	CHECK(store_txn_begin(E.st, &txn) == 0);
	rc = put_entry_at(txn, "keep", 4, 41, &h, parts, 2, &bytes);
	if (rc == 0)
		rc = store_txn_commit(txn);
	else
		store_txn_abort(txn);
	CHECK_EQ_INT(rc, 0);
	CHECK_EQ_INT(h.raw_len, fx[2].rawlen + fx[5].rawlen);
	{
		uint32_t r2, r5;
		size_t p2 = sblock_preamble(fx[2].z, fx[2].zlen, &r2);
		size_t p5 = sblock_preamble(fx[5].z, fx[5].zlen, &r5);

		CHECK_EQ_INT(bytes, sizeof(h) + sizeof(struct lane_rec) +
					    fx[2].zlen - p2 + fx[5].zlen -
					    p5 + varint_size(r2 + r5));
	}
	store_close(E.st);
	E.st_open = 0;

	CHECK((E.st = store_open(E.path, E.cfg.max_size, why, sizeof(why))) != NULL);
	E.st_open = 1;
	CHECK_EQ_INT(E.st->next_seq, 42);
	queue_init(&E.q);
	E.q_init = 1;
	CHECK_EQ_INT(store_load_queue(E.st, &E.q), 0);
	CHECK_EQ_INT(E.st->next_seq, 42);
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
	CHECK(store_txn_begin(E.st, &txn) == 0);
	rc = put_entry_at(txn, "other", 5, 77, &h, parts, 1, &bytes);
	txn->next_seq = E.st->next_seq;  /* meta keeps saying 42 */
	if (rc == 0)
		rc = store_txn_commit(txn);
	else
		store_txn_abort(txn);
	CHECK_EQ_INT(rc, 0);
	store_close(E.st);
	E.st_open = 0;
	queue_destroy(&E.q);
	E.q_init = 0;
	CHECK((E.st = store_open(E.path, E.cfg.max_size, why, sizeof(why))) != NULL);
	E.st_open = 1;
	queue_init(&E.q);
	E.q_init = 1;
	CHECK_EQ_INT(store_load_queue(E.st, &E.q), 0);
	CHECK_EQ_INT(E.st->next_seq, 78);
	queue_totals(&E.q, &t);
	CHECK_EQ_INT(t.entries, 2);
}

/* Writes value under key in database db ("meta", "dedup", ...) of the
 * environment at E.path directly, as another relay version would. */
static const char *poke(const char *db, const char *key, const void *value,
			size_t len)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_val k = { strlen(key), (void *)key }, v = { len, (void *)value };
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
	if ((rc = mdb_dbi_open(txn, db, 0, &dbi)) != 0 ||
	    (rc = mdb_put(txn, dbi, &k, &v, 0)) != 0) {
		mdb_txn_abort(txn);
		mdb_env_close(env);
		return mdb_strerror(rc);
	}
	rc = mdb_txn_commit(txn);
	mdb_env_close(env);
	return rc == 0 ? NULL : mdb_strerror(rc);
}

static const char *poke_format(const void *value, size_t len)
{
	return poke("meta", "format", value, len);
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
	CHECK((E.st = store_open(E.path, MIB, why, sizeof(why))) != NULL);
	store_close(E.st);
	E.st = NULL;
	CHECK_NOERR(poke_format(&other, sizeof(other)));
	why[0] = '\0';
	E.st = store_open(E.path, MIB, why, sizeof(why));
	rc = E.st != NULL ? 0 : -1;
	if (rc == 0)
		E.st_open = 1;
	CHECK_EQ_INT(rc, -1);
	CHECK(E.st == NULL);
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
	E.st = store_open(E.path, MIB, why, sizeof(why));
	rc = E.st != NULL ? 0 : -1;
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
	E.st = store_open(E.path, MIB, why, sizeof(why));
	rc = E.st != NULL ? 0 : -1;
	if (rc == 0)
		E.st_open = 1;
	CHECK_EQ_INT(rc, -1);
}

/* Entries in database db (by name) of the open store. */
static long db_entries(MDB_dbi dbi)
{
	MDB_txn *txn;
	MDB_stat ms;
	int rc;

	if (mdb_txn_begin(E.st->env, NULL, MDB_RDONLY, &txn) != 0)
		return -1;
	rc = mdb_stat(txn, dbi, &ms);
	mdb_txn_abort(txn);
	return rc == 0 ? (long)ms.ms_entries : -1;
}

/* A u32 from meta of the open store; 0 if absent. */
static uint32_t meta_u32(const char *name)
{
	MDB_val k = { strlen(name), (void *)name }, v;
	MDB_txn *txn;
	uint32_t x = 0;

	if (mdb_txn_begin(E.st->env, NULL, MDB_RDONLY, &txn) != 0)
		return 0;
	if (mdb_get(txn, E.st->meta, &k, &v) == 0 && v.mv_size == 4)
		memcpy(&x, v.mv_data, 4);
	mdb_txn_abort(txn);
	return x;
}

/* A directory written by format 1 (digest records in "dedup") is
 * converted when opened: the records go, the format becomes the current
 * one. A reader opens it as it is. */
static void test_format_1_converted(void)
{
	uint8_t digest[32] = { 1, 2, 3 };
	uint64_t t = 1700000000000ull;
	uint32_t one = 1;
	char why[512];

	CHECK_NOERR(env_mkdir());
	CHECK((E.st = store_open(E.path, MIB, why, sizeof(why))) != NULL);
	E.st_open = 1;
	CHECK_EQ_INT(meta_u32("format"), STORE_FORMAT);
	CHECK_EQ_INT(meta_u32("usage_format"), USAGE_FORMAT);
	store_close(E.st);
	E.st_open = 0;
	{
		MDB_env *env;
		MDB_txn *txn;
		MDB_dbi dbi;
		MDB_val k = { 32, digest }, v = { 8, &t };
		int rc;

		CHECK(mdb_env_create(&env) == 0);
		rc = mdb_env_set_maxdbs(env, 16);
		if (rc == 0)
			rc = mdb_env_set_mapsize(env, 128 * MIB);
		if (rc == 0)
			rc = mdb_env_open(env, E.path, 0, 0600);
		if (rc == 0 && (rc = mdb_txn_begin(env, NULL, 0, &txn)) == 0) {
			if ((rc = mdb_dbi_open(txn, "dedup", 0, &dbi)) == 0 &&
			    (rc = mdb_put(txn, dbi, &k, &v, 0)) == 0)
				rc = mdb_txn_commit(txn);
			else
				mdb_txn_abort(txn);
		}
		mdb_env_close(env);
		CHECK_EQ_INT(rc, 0);
	}
	CHECK_NOERR(poke_format(&one, sizeof(one)));
	/* A reader takes format 1 as it is, changing nothing. */
	CHECK((E.st = store_open_readonly(E.path, why, sizeof(why))) != NULL);
	E.st_open = 1;
	CHECK_EQ_INT(meta_u32("format"), 1);
	CHECK_EQ_INT(db_entries(E.st->dedup), 1);
	store_close(E.st);
	E.st_open = 0;
	/* The relay converts it. */
	CHECK((E.st = store_open(E.path, MIB, why, sizeof(why))) != NULL);
	E.st_open = 1;
	CHECK_EQ_INT(meta_u32("format"), STORE_FORMAT);
	CHECK_EQ_INT(db_entries(E.st->dedup), 0);
}

/* A directory written by format 2 (no dest database) is converted when
 * opened: the database is made, empty, and the entries already there have
 * no record (the configuration decides where they go). A reader opens it
 * as it is. New records bound a body from then on. */
static void test_format_2_converted(void)
{
	struct sblock_part part = { fx[0].z, fx[0].zlen };
	struct store_dest d7 = { "7", "" }, got;
	struct store_body body;
	struct store_span span;
	struct store_txn *txn;
	struct entry_hdr h;
	uint64_t bytes, until;
	uint32_t two = 2;
	char why[512];

	CHECK_NOERR(env_mkdir());
	CHECK((E.st = store_open(E.path, 64 * MIB, why, sizeof(why))) != NULL);
	E.st_open = 1;
	memset(&h, 0, sizeof(h));
	CHECK_EQ_INT(store_txn_begin(E.st, &txn), 0);
	CHECK_EQ_INT(put_entry_at(txn, "t", 1, 5, &h, &part, 1, &bytes), 0);
	CHECK_EQ_INT(store_txn_commit(txn), 0);
	store_close(E.st);
	E.st_open = 0;
	{
		MDB_env *env;
		MDB_txn *wt;
		MDB_dbi dbi;
		int rc;

		CHECK(mdb_env_create(&env) == 0);
		rc = mdb_env_set_maxdbs(env, 16);
		if (rc == 0)
			rc = mdb_env_set_mapsize(env, 128 * MIB);
		if (rc == 0)
			rc = mdb_env_open(env, E.path, 0, 0600);
		if (rc == 0 && (rc = mdb_txn_begin(env, NULL, 0, &wt)) == 0) {
			if ((rc = mdb_dbi_open(wt, "dest", 0, &dbi)) == 0 &&
			    (rc = mdb_drop(wt, dbi, 1)) == 0)
				rc = mdb_txn_commit(wt);
			else
				mdb_txn_abort(wt);
		}
		mdb_env_close(env);
		CHECK_EQ_INT(rc, 0);
	}
	CHECK_NOERR(poke_format(&two, sizeof(two)));
	/* A reader takes format 2 as it is: no records. */
	CHECK((E.st = store_open_readonly(E.path, why, sizeof(why))) != NULL);
	E.st_open = 1;
	CHECK_EQ_INT(meta_u32("format"), 2);
	CHECK_EQ_INT(E.st->dest, 0);
	CHECK_EQ_INT(store_dest_get(E.st, "t", 1, 5, &got, &until), 0);
	CHECK_EQ_INT(store_body_open(E.st, "t", 1, 0, 0, UINT64_MAX, UINT64_MAX,
				     256, &body, &span), 0);
	store_body_release(&body);
	CHECK_EQ_INT(span.entries, 1);
	CHECK_EQ_INT(body.has_dest, 0);
	store_close(E.st);
	E.st_open = 0;
	/* The relay converts it; the old entry has no record, a new one
	 * under a record travels in a body of its own. */
	CHECK((E.st = store_open(E.path, 64 * MIB, why, sizeof(why))) != NULL);
	E.st_open = 1;
	CHECK_EQ_INT(meta_u32("format"), STORE_FORMAT);
	CHECK(E.st->dest != 0);
	CHECK_EQ_INT(store_txn_begin(E.st, &txn), 0);
	txn->next_seq = 6;
	CHECK_EQ_INT(store_dest_note(txn, "t", 1, &d7), 0);
	CHECK_EQ_INT(put_entry_at(txn, "t", 1, 6, &h, &part, 1, &bytes), 0);
	CHECK_EQ_INT(store_txn_commit(txn), 0);
	CHECK_EQ_INT(store_dest_get(E.st, "t", 1, 5, &got, &until), 0);
	CHECK_EQ_INT(until, 6);
	CHECK_EQ_INT(store_body_open(E.st, "t", 1, 0, 0, UINT64_MAX, UINT64_MAX,
				     256, &body, &span), 0);
	store_body_release(&body);
	CHECK_EQ_INT(span.entries, 1);
	CHECK_EQ_INT(span.last_seq, 5);
	CHECK_EQ_INT(body.has_dest, 0);
	CHECK_EQ_INT(store_body_open(E.st, "t", 1, 0, 6, UINT64_MAX, UINT64_MAX,
				     256, &body, &span), 0);
	store_body_release(&body);
	CHECK_EQ_INT(span.entries, 1);
	CHECK_EQ_INT(body.has_dest, 1);
	CHECK(strcmp(body.dest.account_id, "7") == 0);
}

/* Usage records of a newer format are refused, by the relay and by a
 * reader, with a message that names both versions; older or missing
 * usage_format (format 1 wrote none) is recorded as this one's. */
static void test_usage_format_checked(void)
{
	uint32_t newer = USAGE_FORMAT + 1;
	char why[512];

	CHECK_NOERR(env_mkdir());
	CHECK((E.st = store_open(E.path, MIB, why, sizeof(why))) != NULL);
	store_close(E.st);
	E.st = NULL;
	CHECK_NOERR(poke("meta", "usage_format", &newer, sizeof(newer)));
	why[0] = '\0';
	E.st = store_open(E.path, MIB, why, sizeof(why));
	if (E.st != NULL)
		E.st_open = 1;
	CHECK(E.st == NULL);
	CHECK(has_number(why, newer) && has_number(why, USAGE_FORMAT));
	why[0] = '\0';
	E.st = store_open_readonly(E.path, why, sizeof(why));
	if (E.st != NULL)
		E.st_open = 1;
	CHECK(E.st == NULL);
	CHECK(has_number(why, newer));
}

/* A write that fails inside the format check (here: the map is full when
 * the format record is written) is reported with its reason, as every
 * failure of store_open is: LMDB's negative codes were once left without
 * one. */
static int full_put(MDB_txn *txn, MDB_dbi dbi, MDB_val *key, MDB_val *val,
		    unsigned flags)
{
	(void)txn, (void)dbi, (void)key, (void)val, (void)flags;
	return MDB_MAP_FULL;
}

static void test_open_failure_has_reason(void)
{
	char why[512];

	CHECK_NOERR(env_mkdir());
	memset(why, 0, sizeof(why));
	store_seam_put = full_put;
	E.st = store_open(E.path, MIB, why, sizeof(why));
	store_seam_put = mdb_put;
	if (E.st != NULL)
		E.st_open = 1;
	CHECK(E.st == NULL);
	CHECK(why[0] != '\0');
	CHECK(strstr(why, mdb_strerror(MDB_MAP_FULL)) != NULL);
	/* Nothing was left half made: it opens now. */
	CHECK((E.st = store_open(E.path, MIB, why, sizeof(why))) != NULL);
	E.st_open = 1;
	CHECK_EQ_INT(meta_u32("format"), STORE_FORMAT);
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
	CHECK((E.st = store_open(E.path, MIB, why, sizeof(why))) != NULL);
	E.st_open = 1;
	CHECK(mdb_txn_begin(E.st->env, NULL, 0, &txn) == 0);
	/* Insert in an order unrelated to the keys'. */
	for (size_t i = 0; i < NS; i++) {
		for (size_t j = 0; j < NT; j++) {
			size_t tj = (j * 5 + i) % NT;
			k.mv_size = store_key(key, tenants[tj],
					      strlen(tenants[tj]), seqs[i]);
			k.mv_data = key;
			if ((rc = mdb_put(txn, E.st->queue, &k, &v, 0)) != 0) {
				mdb_txn_abort(txn);
				CHECK_EQ_INT(rc, 0);
			}
		}
	}
	if (mdb_cursor_open(txn, E.st->queue, &cur) != 0) {
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
	struct store_txn *txn;
	MDB_stat ms;
	int rc = 0;

	CHECK_NOERR(env_mkdir());
	CHECK((E.st = store_open(E.path, 64 * MIB, why, sizeof(why))) != NULL);
	E.st_open = 1;
	CHECK(store_txn_begin(E.st, &txn) == 0);
	for (uint64_t s = 1; s <= 10 && rc == 0; s++) {
		memset(&h, 0, sizeof(h));
		h.samples = (uint32_t)s;
		h.created_ms = 1000 + s;
		rc = put_entry_at(txn, "a", 1, s, &h, &part, 1, &value);
		if (rc == 0 && s <= 3)
			rc = put_entry_at(txn, "b", 1, s, &h, &part, 1,
					     &value);
		if (rc == 0)
			rc = put_entry_at(txn, "", 0, s, &h, &part, 1,
					     &value);
	}
	if (rc != 0)
		store_txn_abort(txn);
	CHECK_EQ_INT(rc, 0);

#define DELETE(tenant, first, last)                                           \
	do {                                                                  \
		memset(&gone, 0, sizeof(gone));                               \
		rc = store_delete_range(txn, tenant, strlen(tenant),   \
					first, last, &gone, &next);           \
		if (rc != 0)                                                  \
			store_txn_abort(txn);                                   \
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
	rc = mdb_stat(txn->txn, E.st->queue, &ms);
	store_txn_abort(txn);
	CHECK_EQ_INT(rc, 0);
	CHECK_EQ_INT(ms.ms_entries, 4);
}

/* ---- request bodies read in place -------------------------------------- */

/* Stores fixture f[i] as entry (tenant, first + i) for i < n, in one
 * write transaction, counted as the fixture. Returns NULL or what failed. */
static const char *put_fixtures(const char *tenant, uint64_t first,
				const int *f, size_t n)
{
	struct sblock_part part;
	struct entry_hdr h;
	uint64_t value;
	struct store_txn *txn;
	int rc = 0;

	if (store_txn_begin(E.st, &txn) != 0)
		return "cannot begin a write transaction";
	for (size_t i = 0; i < n && rc == 0; i++) {
		part.p = fx[f[i]].z;
		part.len = fx[f[i]].zlen;
		memset(&h, 0, sizeof(h));
		h.series = (uint32_t)fx[f[i]].counts.series;
		h.samples = (uint32_t)fx[f[i]].counts.samples;
		h.created_ms = 1000 + first + i;
		rc = put_entry_at(txn, tenant, strlen(tenant),
				     first + i, &h, &part, 1, &value);
	}
	if (rc != 0) {
		store_txn_abort(txn);
		return err("store_put_entry: %s", err_str(rc));
	}
	rc = store_txn_commit(txn);
	return rc == 0 ? NULL : err("commit: %s", err_str(rc));
}

/* Sets byte off of the value of (tenant, seq) to b, or cuts the value to
 * off bytes when b < 0. Returns NULL or what failed. */
static const char *poke_entry(const char *tenant, uint64_t seq, size_t off,
			      int b)
{
	uint8_t key[STORE_KEY_MAX], *copy = NULL;
	const char *e = NULL;
	MDB_val k, v = { 0, NULL }, h = { 0, NULL };
	MDB_txn *txn;
	int rc;

	k.mv_size = store_key(key, tenant, strlen(tenant), seq);
	k.mv_data = key;
	if (mdb_txn_begin(E.st->env, NULL, 0, &txn) != 0)
		return "cannot begin a write transaction";
	/* Whole: a head joined with its tail, written back whole. */
	if ((rc = mdb_get(txn, E.st->queue, &k, &h)) != 0 ||
	    (rc = store_value_whole(txn, E.st, tenant, strlen(tenant), seq, &h,
				    &v)) != 0 ||
	    (rc = store_tail_del(txn, E.st, tenant, strlen(tenant), seq)) != 0 ||
	    off >= v.mv_size || (copy = malloc(v.mv_size)) == NULL) {
		if (v.mv_data != h.mv_data)
			free(v.mv_data);   /* the joined copy */
		mdb_txn_abort(txn);
		return rc != 0 ? mdb_strerror(rc) : "no such byte, or no memory";
	}
	memcpy(copy, v.mv_data, v.mv_size);
	if (v.mv_data != h.mv_data)
		free(v.mv_data);
	if (b >= 0)
		copy[off] = (uint8_t)b;
	else
		v.mv_size = off;
	v.mv_data = copy;
	if ((rc = mdb_put(txn, E.st->queue, &k, &v, 0)) != 0) {
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
	if (store_body_open(E.st, tenant, strlen(tenant), 0, seq, max_seq,
			    max_raw, max_entries, &body, span) != 0) {
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
	else if (body.read == NULL)
		e = "no read transaction held for the parts";
	else
		e = stream_is(&body.stream, ref.p, ref.len);
	store_body_release(&body);
	if (e == NULL && body.read != NULL)
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
	CHECK(store_body_open(E.st, "t1", 2, 0, 9, UINT64_MAX, UINT64_MAX, 256,
			      &body, &span) == 0);
	CHECK(span.entries == 0 && body.read == NULL);
	CHECK(store_body_open(E.st, "t2x", 3, 0, 0, UINT64_MAX, UINT64_MAX, 256,
			      &body, &span) == 0);
	CHECK(span.entries == 0 && body.read == NULL);
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
	struct store_txn *txn;
	int rc;

	CHECK_NOERR(store_direct());
	CHECK_NOERR(put_fixtures("t1", 1, all8, NFX));
	CHECK(store_body_open(E.st, "t1", 2, 0, 0, UINT64_MAX, UINT64_MAX, 256,
			      &body, &span) == 0);
	CHECK_EQ_INT(span.entries, NFX);
	/* Delete them all, then fill the space again, several times. */
	for (int round = 0; round < 4 && e == NULL; round++) {
		if (store_txn_begin(E.st, &txn) != 0) {
			e = "cannot begin a write transaction";
			break;
		}
		memset(&gone, 0, sizeof(gone));
		rc = store_delete_range(txn, "t1", 2, 0, UINT64_MAX,
					&gone, &next);
		if (rc == 0)
			rc = store_txn_commit(txn);
		else
			store_txn_abort(txn);
		if (rc != 0)
			e = err("delete: %s", err_str(rc));
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
	CHECK(store_body_open(E.st, "t1", 2, 0, 0, UINT64_MAX, UINT64_MAX, 256,
			      &body, &span) == 0);
	store_body_release(&body);
	CHECK_EQ_INT(span.first_seq, 130);
}

/*
 * Unreadable entries: an entry whose header is unreadable travels alone,
 * its block as stored; one whose block cannot be merged (malformed
 * preamble, no block at all) is described alone (1: to be set aside
 * unsent), and nothing is held.
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
		CHECK_NOERR(poke_entry("u", 2, sizeof(struct entry_hdr) +
					     sizeof(struct lane_rec) + i, 0xff));
	CHECK_EQ_INT(store_body_open(E.st, "u", 1, 0, 2, UINT64_MAX, max_raw, 256,
				     &body, &span), 1);
	CHECK(body.read == NULL);
	CHECK_EQ_INT(span.entries, 1);
	CHECK_EQ_INT(span.first_seq, 2);
	CHECK_EQ_INT(span.last_seq, 2);
	/* Reached from before, it ends the body of the entries before it. */
	CHECK_NOERR(body_is("u", 0, UINT64_MAX, max_raw, 256, three, 1, &span));
	CHECK_EQ_INT(span.last_seq, 1);
	/* A header and no block. */
	CHECK_NOERR(poke_entry("u", 2, sizeof(struct entry_hdr), -1));
	CHECK_EQ_INT(store_body_open(E.st, "u", 1, 0, 2, UINT64_MAX, max_raw, 256,
				     &body, &span), 1);
	CHECK(body.read == NULL);
	CHECK_EQ_INT(span.first_seq, 2);
	/* The entries before and after it still read. */
	CHECK_NOERR(body_is("u", 0, 1, max_raw, 256, three, 1, &span));
	CHECK_NOERR(body_is("u", 3, 3, max_raw, 256, three + 2, 1, &span));
}

/* ---- set-aside entries a page at a time -------------------------------- */

struct sa_seen {
	char keys[256];
};

static int sa_seen_one(void *arg, const struct setaside_item *it)
{
	struct sa_seen *s = arg;
	size_t o = strlen(s->keys);

	snprintf(s->keys + o, sizeof(s->keys) - o, "%.*s/%llu ", (int)it->tlen,
		 it->tenant, (unsigned long long)it->seq);
	return 0;
}

/* Pages of max entries, each in a read transaction of its own, resume
 * after the last key and list every matching entry once; the listing made
 * of them is the whole one. */
static void test_setaside_pages(void)
{
	static const int three[] = { 0, 1, 2 };
	struct setaside_filter f;
	struct store_span gone, next;
	struct store_txn *txn;
	struct store_pos pos;
	struct sa_seen s;
	struct buf out;
	int rc, calls;

	CHECK_NOERR(store_direct());
	CHECK_NOERR(put_fixtures("a", 1, three, 3));
	CHECK_NOERR(put_fixtures("b", 10, three, 3));
	CHECK_EQ_INT(store_txn_begin(E.st, &txn), 0);
	for (uint64_t i = 0; i < 3; i++) {
		CHECK_EQ_INT(store_set_aside(txn, "a", 1, -1, 1 + i, 400, "bad",
					     &gone, &next), 0);
		CHECK_EQ_INT(store_set_aside(txn, "b", 1, -1, 10 + i, 400, "bad",
					     &gone, &next), 0);
	}
	CHECK_EQ_INT(store_txn_commit(txn), 0);
	/* Every tenant, one entry a page. */
	CHECK_EQ_INT(setaside_filter_parse(&f, NULL, NULL), 0);
	memset(&pos, 0, sizeof(pos));
	memset(&s, 0, sizeof(s));
	calls = 0;
	do {
		rc = store_setaside_page(E.st, &f, &pos, 1, sa_seen_one, &s);
		calls++;
	} while (rc == 1 && calls < 20);
	CHECK_EQ_INT(rc, 0);
	CHECK_EQ_INT(calls, 6);
	CHECK_STR(s.keys, "a/1 a/2 a/3 b/10 b/11 b/12 ");
	/* One tenant, two a page: never past its entries. */
	CHECK_EQ_INT(setaside_filter_parse(&f, "b", NULL), 0);
	memset(&pos, 0, sizeof(pos));
	memset(&s, 0, sizeof(s));
	CHECK_EQ_INT(store_setaside_page(E.st, &f, &pos, 2, sa_seen_one, &s), 1);
	CHECK_EQ_INT(store_setaside_page(E.st, &f, &pos, 2, sa_seen_one, &s), 0);
	CHECK_STR(s.keys, "b/10 b/11 b/12 ");
	/* A sequence number of any tenant: entries that do not match count
	 * in a page's max, and the walk still ends. */
	CHECK_EQ_INT(setaside_filter_parse(&f, NULL, "11"), 0);
	memset(&pos, 0, sizeof(pos));
	memset(&s, 0, sizeof(s));
	calls = 0;
	do {
		rc = store_setaside_page(E.st, &f, &pos, 1, sa_seen_one, &s);
		calls++;
	} while (rc == 1 && calls < 20);
	CHECK_EQ_INT(rc, 0);
	CHECK_STR(s.keys, "b/11 ");
	/* The listing, made page by page, has them all. */
	CHECK_EQ_INT(setaside_filter_parse(&f, NULL, NULL), 0);
	buf_init(&out, MIB);
	CHECK_EQ_INT(setaside_format(E.st, &f, 1, &out), 0);
	CHECK_EQ_INT(buf_append(&out, "", 1), 0);
	CHECK(strncmp((const char *)out.p, "{\"setaside\":[{\"tenant\":\"a\",\"seq\":1,", 35) == 0);
	CHECK(strstr((const char *)out.p, "{\"tenant\":\"b\",\"seq\":12,") != NULL);
	CHECK(strcmp((const char *)out.p + out.len - 5, "}]}\n") == 0);
	buf_free(&out);
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
	RUN_STORE(test_format_1_converted);
	RUN_STORE(test_format_2_converted);
	RUN_STORE(test_usage_format_checked);
	RUN_STORE(test_open_failure_has_reason);
	RUN_STORE(test_key_roundtrip);
	RUN_STORE(test_key_order);
	RUN_STORE(test_delete_range_direct);
	RUN_STORE(test_body_streams_entries);
	RUN_STORE(test_body_outlives_delete);
	RUN_STORE(test_body_unreadable_entry);
	RUN_STORE(test_setaside_pages);
	free_fixtures();
	ingest_thread_cleanup();
	wire_scratch_free();
	return unit_done();
}
