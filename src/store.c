/*
 * store.c - the LMDB buffer: format, keys, and the operations the writer
 * and the forwarder run in their transactions (see store.h).
 */
#include "store.h"

#include "clock.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "log.h"
#include "queue.h"
#include "store_check.h"

#define STORE_MAX_DBS 16
#define STORE_MAX_READERS 512

int store_lock(const char *path)
{
	char file[4200];
	int fd;

	snprintf(file, sizeof(file), "%s/relay.lock", path);
	fd = open(file, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno;
		close(fd);
		return e == EWOULDBLOCK ? -2 : -1;
	}
	return fd;
}

void store_unlock(int fd)
{
	if (fd >= 0)
		close(fd);
}

const char *store_strerror(int rc)
{
	return mdb_strerror(rc);
}

static int check_format(MDB_txn *txn, struct store *st, char *err,
			size_t errlen)
{
	MDB_val k = {6, "format"}, v;
	uint32_t fmt = STORE_FORMAT;
	int rc;

	rc = mdb_get(txn, st->meta, &k, &v);
	if (rc == MDB_NOTFOUND) {
		v.mv_size = sizeof(fmt);
		v.mv_data = &fmt;
		return mdb_put(txn, st->meta, &k, &v, 0);
	}
	if (rc != 0)
		return rc;
	if (v.mv_size != sizeof(fmt)) {
		snprintf(err, errlen, "unreadable format record");
		return -1;
	}
	memcpy(&fmt, v.mv_data, sizeof(fmt));
	if (fmt != STORE_FORMAT) {
		snprintf(err, errlen, "buffer format %u, this relay reads %u",
			 fmt, STORE_FORMAT);
		return -1;
	}
	k.mv_size = 8;
	k.mv_data = "next_seq";
	rc = mdb_get(txn, st->meta, &k, &v);
	if (rc == 0 && v.mv_size == 8)
		memcpy(&st->next_seq, v.mv_data, 8);
	return 0;
}

int store_open(struct store *st, const char *path, uint64_t max_size,
	       char *err, size_t errlen)
{
	MDB_txn *txn = NULL;
	uint64_t map;
	int rc, dead = 0;

	memset(st, 0, sizeof(*st));
	st->max_size = max_size;
	st->next_seq = 1;
	st->lock_fd = -1;
	if (store_check_dir(path, 1, err, errlen) < 0)
		return -1;
	st->lock_fd = store_lock(path);
	if (st->lock_fd < 0) {
		if (st->lock_fd == -2)
			snprintf(err, errlen, "another relay is using %s", path);
		else
			snprintf(err, errlen, "cannot lock %s/relay.lock: %s",
				 path, strerror(errno));
		return -1;
	}
	if (store_check_data(path, err, errlen) < 0)
		goto fail;
	/* Headroom above max_size: deletes need free pages to copy on write
	 * even when the buffer is at its limit. The file grows only as pages
	 * are used; the map is address space. */
	map = max_size + (max_size / 4 > (64u << 20) ? max_size / 4 : (64u << 20));
	if ((rc = mdb_env_create(&st->env)) != 0 ||
	    (rc = mdb_env_set_maxdbs(st->env, STORE_MAX_DBS)) != 0 ||
	    (rc = mdb_env_set_maxreaders(st->env, STORE_MAX_READERS)) != 0 ||
	    (rc = mdb_env_set_mapsize(st->env, (size_t)map)) != 0 ||
	    (rc = mdb_env_open(st->env, path, MDB_NOTLS, 0600)) != 0) {
		snprintf(err, errlen, "cannot open LMDB in %s: %s", path,
			 mdb_strerror(rc));
		goto fail;
	}
	{
		MDB_stat ms;
		mdb_env_stat(st->env, &ms);
		st->page_size = ms.ms_psize;
	}
	mdb_reader_check(st->env, &dead);
	if (dead > 0)
		log_msg(LOG_INFO, "cleared stale LMDB readers", "count=%d", dead);
	if ((rc = mdb_txn_begin(st->env, NULL, 0, &txn)) != 0 ||
	    (rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &st->meta)) != 0 ||
	    (rc = mdb_dbi_open(txn, "queue", MDB_CREATE, &st->queue)) != 0 ||
	    (rc = mdb_dbi_open(txn, "setaside", MDB_CREATE, &st->setaside)) != 0 ||
	    (rc = mdb_dbi_open(txn, "dedup", MDB_CREATE, &st->dedup)) != 0 ||
	    (rc = mdb_dbi_open(txn, "dedup_time", MDB_CREATE, &st->dedup_time)) != 0 ||
	    (rc = mdb_dbi_open(txn, "usage", MDB_CREATE, &st->usage)) != 0 ||
	    (rc = mdb_dbi_open(txn, "usage_hll", MDB_CREATE, &st->usage_hll)) != 0) {
		snprintf(err, errlen, "cannot open databases in %s: %s", path,
			 mdb_strerror(rc));
		goto fail;
	}
	rc = check_format(txn, st, err, errlen);
	if (rc != 0) {
		if (rc > 0)
			snprintf(err, errlen, "cannot read %s: %s", path,
				 mdb_strerror(rc));
		goto fail;
	}
	if ((rc = mdb_txn_commit(txn)) != 0) {
		txn = NULL;
		snprintf(err, errlen, "cannot initialise %s: %s", path,
			 mdb_strerror(rc));
		goto fail;
	}
	store_check_mark(path);
	return 0;
fail:
	if (txn != NULL)
		mdb_txn_abort(txn);
	if (st->env != NULL)
		mdb_env_close(st->env);
	st->env = NULL;
	store_unlock(st->lock_fd);
	st->lock_fd = -1;
	return -1;
}

int store_open_readonly(struct store *st, const char *path, char *err,
			size_t errlen)
{
	MDB_txn *txn = NULL;
	MDB_stat ms;
	int rc;

	memset(st, 0, sizeof(*st));
	st->lock_fd = -1;
	if ((rc = mdb_env_create(&st->env)) != 0 ||
	    (rc = mdb_env_set_maxdbs(st->env, STORE_MAX_DBS)) != 0 ||
	    (rc = mdb_env_set_maxreaders(st->env, STORE_MAX_READERS)) != 0 ||
	    (rc = mdb_env_open(st->env, path, MDB_RDONLY | MDB_NOTLS, 0600)) != 0 ||
	    (rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn)) != 0 ||
	    (rc = mdb_dbi_open(txn, "queue", 0, &st->queue)) != 0 ||
	    (rc = mdb_dbi_open(txn, "setaside", 0, &st->setaside)) != 0) {
		snprintf(err, errlen, "cannot open %s: %s", path, mdb_strerror(rc));
		if (txn != NULL)
			mdb_txn_abort(txn);
		if (st->env != NULL)
			mdb_env_close(st->env);
		st->env = NULL;
		return -1;
	}
	mdb_dbi_open(txn, "usage", 0, &st->usage);
	mdb_txn_commit(txn);
	mdb_env_stat(st->env, &ms);
	st->page_size = ms.ms_psize;
	return 0;
}

void store_close(struct store *st)
{
	if (st->env != NULL) {
		if (st->lock_fd >= 0)
			mdb_env_sync(st->env, 1);
		mdb_env_close(st->env);
		st->env = NULL;
	}
	store_unlock(st->lock_fd);
	st->lock_fd = -1;
}

size_t store_key(uint8_t *key, const char *tenant, size_t tlen, uint64_t seq)
{
	memcpy(key, tenant, tlen);
	key[tlen] = 0;
	for (int i = 0; i < 8; i++)
		key[tlen + 1 + i] = (uint8_t)(seq >> (56 - 8 * i));
	return tlen + 9;
}

int store_key_parse(const MDB_val *k, const char **tenant, size_t *tlen,
		    uint64_t *seq)
{
	const uint8_t *p = k->mv_data;
	uint64_t s = 0;
	size_t n;

	if (k->mv_size < 9 || k->mv_size > STORE_KEY_MAX)
		return -1;
	n = k->mv_size - 9;
	if (p[n] != 0 || memchr(p, 0, n) != NULL)
		return -1;
	for (int i = 0; i < 8; i++)
		s = s << 8 | p[n + 1 + i];
	*tenant = (const char *)p;
	*tlen = n;
	*seq = s;
	return 0;
}

int store_entry_hdr(const MDB_val *v, struct entry_hdr *hdr)
{
	uint32_t raw;

	if (v->mv_size < sizeof(*hdr) + 1)
		return -1;
	memcpy(hdr, v->mv_data, sizeof(*hdr));
	if (hdr->version != 1)
		return -1;
	if (sblock_preamble((const uint8_t *)v->mv_data + sizeof(*hdr),
			    v->mv_size - sizeof(*hdr), &raw) == 0 ||
	    raw != hdr->raw_len)
		return -1;
	return 0;
}

static void span_add(struct store_span *s, uint64_t seq, const MDB_val *v,
		     const struct entry_hdr *h)
{
	if (s->entries == 0) {
		s->first_seq = seq;
		s->created_ms = h->created_ms;
	}
	s->last_seq = seq;
	s->entries++;
	s->bytes += v->mv_size;
	s->raw += h->raw_len;
	s->series += h->series;
	s->samples += h->samples;
	s->histograms += h->histograms;
	s->exemplars += h->exemplars;
}

int store_load_queue(struct store *st, struct queue *q)
{
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k, v;
	struct entry_hdr h;
	const char *tenant;
	size_t tlen;
	uint64_t seq, bad = 0;
	int rc;

	if ((rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn)) != 0)
		return -1;
	if ((rc = mdb_cursor_open(txn, st->queue, &cur)) != 0) {
		mdb_txn_abort(txn);
		return -1;
	}
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (store_key_parse(&k, &tenant, &tlen, &seq) < 0 ||
		    store_entry_hdr(&v, &h) < 0) {
			bad++;
			continue;
		}
		queue_added(q, tenant, tlen, seq, v.mv_size, h.samples,
			    h.created_ms);
		if (seq >= st->next_seq)
			st->next_seq = seq + 1;
	}
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	if (bad > 0)
		log_msg(LOG_WARN, "unreadable buffer entries skipped",
			"count=%llu", (unsigned long long)bad);
	return rc == MDB_NOTFOUND ? 0 : -1;
}

int store_put_entry(MDB_txn *txn, struct store *st, const char *tenant,
		    size_t tlen, uint64_t seq, struct entry_hdr *hdr,
		    const struct sblock_part *parts, size_t nparts,
		    uint64_t *value_bytes)
{
	uint8_t key[STORE_KEY_MAX];
	uint64_t raw_total = 0;
	size_t elements = 0;
	uint32_t raw;
	struct buf out;
	MDB_val k, v;
	int rc;

	for (size_t i = 0; i < nparts; i++) {
		size_t pre = sblock_preamble(parts[i].p, parts[i].len, &raw);
		if (pre == 0)
			return EINVAL;
		raw_total += raw;
		elements += parts[i].len - pre;
	}
	if (raw_total > SBLOCK_MAX_RAW)
		return EINVAL;
	hdr->version = 1;
	hdr->raw_len = (uint32_t)raw_total;
	k.mv_size = store_key(key, tenant, tlen, seq);
	k.mv_data = key;
	v.mv_size = sizeof(*hdr) + sblock_concat_size(raw_total, elements);
	v.mv_data = NULL;
	rc = mdb_put(txn, st->queue, &k, &v, MDB_RESERVE);
	if (rc != 0)
		return rc;
	memcpy(v.mv_data, hdr, sizeof(*hdr));
	/* A buf over the reserved space: sblock_concat fills it exactly. */
	out.p = (uint8_t *)v.mv_data + sizeof(*hdr);
	out.len = 0;
	out.cap = out.max = v.mv_size - sizeof(*hdr);
	if (sblock_concat(&out, parts, nparts) < 0 || out.len != out.cap)
		return EINVAL;
	*value_bytes = v.mv_size;
	return 0;
}

/* Fills next with the tenant's oldest entry (entries = 0 if none). */
static int tenant_head(MDB_cursor *cur, const char *tenant, size_t tlen,
		       struct store_span *next)
{
	uint8_t key[STORE_KEY_MAX];
	struct entry_hdr h;
	MDB_val k, v;
	const char *t;
	size_t n;
	uint64_t seq;
	int rc;

	memset(next, 0, sizeof(*next));
	k.mv_size = store_key(key, tenant, tlen, 0);
	k.mv_data = key;
	rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc != 0)
		return rc;
	if (store_key_parse(&k, &t, &n, &seq) < 0 || n != tlen ||
	    memcmp(t, tenant, tlen) != 0)
		return 0;
	if (store_entry_hdr(&v, &h) < 0)
		memset(&h, 0, sizeof(h));
	span_add(next, seq, &v, &h);
	return 0;
}

int store_delete_range(MDB_txn *txn, struct store *st, const char *tenant,
		       size_t tlen, uint64_t first, uint64_t last,
		       struct store_span *gone, struct store_span *next)
{
	uint8_t key[STORE_KEY_MAX];
	MDB_cursor *cur;
	MDB_val k, v;
	struct entry_hdr h;
	const char *t;
	size_t n;
	uint64_t seq;
	int rc;

	memset(next, 0, sizeof(*next));
	if ((rc = mdb_cursor_open(txn, st->queue, &cur)) != 0)
		return rc;
	k.mv_size = store_key(key, tenant, tlen, first);
	k.mv_data = key;
	rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	while (rc == 0) {
		if (store_key_parse(&k, &t, &n, &seq) < 0 || n != tlen ||
		    memcmp(t, tenant, tlen) != 0 || seq > last) {
			rc = MDB_NOTFOUND;
			break;
		}
		if (store_entry_hdr(&v, &h) < 0)
			memset(&h, 0, sizeof(h));
		span_add(gone, seq, &v, &h);
		if ((rc = mdb_cursor_del(cur, 0)) != 0)
			break;
		rc = mdb_cursor_get(cur, &k, &v, MDB_GET_CURRENT);
		if (rc == EINVAL)  /* deleted the last item of the database */
			rc = MDB_NOTFOUND;
	}
	if (rc == MDB_NOTFOUND)
		rc = tenant_head(cur, tenant, tlen, next);
	mdb_cursor_close(cur);
	return rc;
}

int store_set_aside(MDB_txn *txn, struct store *st, const char *tenant,
		    size_t tlen, uint64_t seq, long status, const char *reason,
		    struct store_span *gone, struct store_span *next)
{
	uint8_t key[STORE_KEY_MAX];
	struct setaside_hdr sh;
	struct entry_hdr h;
	MDB_cursor *cur;
	MDB_val k, v, out;
	int rc;

	memset(next, 0, sizeof(*next));

	k.mv_size = store_key(key, tenant, tlen, seq);
	k.mv_data = key;
	if ((rc = mdb_get(txn, st->queue, &k, &v)) != 0)
		return rc;
	if (store_entry_hdr(&v, &h) < 0)
		memset(&h, 0, sizeof(h));
	sh.status = (uint32_t)status;
	sh.reason_len = (uint32_t)strlen(reason);
	if (sh.reason_len > 1024)
		sh.reason_len = 1024;
	sh.set_aside_ms = clock_wall_ms();
	out.mv_size = sizeof(sh) + sh.reason_len + v.mv_size;
	out.mv_data = NULL;
	if ((rc = mdb_put(txn, st->setaside, &k, &out, MDB_RESERVE)) != 0)
		return rc;
	/* The put may have moved the queue value: look it up again. */
	if ((rc = mdb_get(txn, st->queue, &k, &v)) != 0)
		return rc;
	memcpy(out.mv_data, &sh, sizeof(sh));
	memcpy((uint8_t *)out.mv_data + sizeof(sh), reason, sh.reason_len);
	memcpy((uint8_t *)out.mv_data + sizeof(sh) + sh.reason_len, v.mv_data,
	       v.mv_size);
	span_add(gone, seq, &v, &h);
	if ((rc = mdb_del(txn, st->queue, &k, NULL)) != 0 ||
	    (rc = mdb_cursor_open(txn, st->queue, &cur)) != 0)
		return rc;
	rc = tenant_head(cur, tenant, tlen, next);
	mdb_cursor_close(cur);
	return rc;
}

uint64_t store_used_bytes(MDB_txn *txn, struct store *st)
{
	MDB_dbi dbis[] = {1 /* main */, st->meta, st->queue, st->setaside,
			  st->dedup, st->dedup_time, st->usage, st->usage_hll};
	uint64_t pages = 0;
	MDB_stat ms;

	for (size_t i = 0; i < sizeof(dbis) / sizeof(dbis[0]); i++) {
		if (mdb_stat(txn, dbis[i], &ms) == 0)
			pages += ms.ms_branch_pages + ms.ms_leaf_pages +
				 ms.ms_overflow_pages;
	}
	return pages * st->page_size;
}

uint64_t store_value_footprint(struct store *st, uint64_t n)
{
	uint64_t ps = st->page_size ? st->page_size : 4096;

	/* Node header and key; a large value gets overflow pages of its own. */
	n += 16 + STORE_KEY_MAX;
	if (n < ps / 4)
		return n;
	return (n + ps - 1) / ps * ps;
}

int store_put_next_seq(MDB_txn *txn, struct store *st)
{
	MDB_val k = {8, "next_seq"}, v = {8, &st->next_seq};

	return mdb_put(txn, st->meta, &k, &v, 0);
}

int store_body_open(struct store *st, const char *tenant, size_t tlen,
		    uint64_t seq, uint64_t max_seq, uint64_t max_raw,
		    uint64_t max_entries, struct store_body *body,
		    struct store_span *span)
{
	uint8_t key[STORE_KEY_MAX];
	MDB_cursor *cur;
	MDB_val k, v;
	struct entry_hdr h;
	struct sblock_part *e;
	const char *t;
	size_t n, nparts = 0;
	uint64_t s, raw_total = 0;
	int rc, ret = 0;

	memset(span, 0, sizeof(*span));
	body->txn = NULL;
	if (max_entries > STORE_BODY_MAX_ENTRIES)
		max_entries = STORE_BODY_MAX_ENTRIES;
	if (mdb_txn_begin(st->env, NULL, MDB_RDONLY, &body->txn) != 0) {
		body->txn = NULL;
		return -1;
	}
	if (mdb_cursor_open(body->txn, st->queue, &cur) != 0) {
		store_body_release(body);
		return -1;
	}
	k.mv_size = store_key(key, tenant, tlen, seq);
	k.mv_data = key;
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (store_key_parse(&k, &t, &n, &s) < 0 || n != tlen ||
		    memcmp(t, tenant, tlen) != 0 || s > max_seq)
			break;
		if (store_entry_hdr(&v, &h) < 0) {
			/* Unreadable: let it travel alone so the upstream's
			 * refusal sets it aside. */
			memset(&h, 0, sizeof(h));
			h.raw_len = (uint32_t)max_raw;
		}
		if (nparts > 0 && (span->raw + h.raw_len > max_raw ||
				   nparts >= max_entries))
			break;
		e = &body->elements[nparts++];
		span_add(span, s, &v, &h);
		/* No block behind the header, or a malformed preamble: the
		 * batch cannot be read. */
		if (v.mv_size <= sizeof(h)) {
			ret = -1;
			break;
		}
		e->p = (const uint8_t *)v.mv_data + sizeof(h);
		e->len = v.mv_size - sizeof(h);
		if (sblock_strip(e, &raw_total) < 0) {
			ret = -1;
			break;
		}
		if (nparts >= max_entries)
			break;
	}
	mdb_cursor_close(cur);
	if (ret == 0 && nparts > 0 &&
	    sblock_stream_init(&body->stream, body->elements, nparts,
			       raw_total) < 0)
		ret = -1;
	if (ret < 0 || nparts == 0)
		store_body_release(body);
	return ret;
}

void store_body_release(struct store_body *body)
{
	if (body->txn != NULL)
		mdb_txn_abort(body->txn);
	body->txn = NULL;
}

int store_read_batch(struct store *st, const char *tenant, size_t tlen,
		     uint64_t seq, uint64_t max_seq, uint64_t max_raw,
		     uint64_t max_entries, struct buf *body,
		     struct store_span *span)
{
	struct store_body b;
	size_t len;
	int ret = 0;

	if (store_body_open(st, tenant, tlen, seq, max_seq, max_raw,
			    max_entries, &b, span) < 0)
		return -1;
	if (span->entries == 0)
		return 0;
	len = (size_t)b.stream.len;
	if (buf_reserve(body, len) < 0)
		ret = -1;
	else
		body->len += sblock_stream_read(&b.stream, body->p + body->len, len);
	store_body_release(&b);
	return ret;
}
