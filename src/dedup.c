/*
 * dedup.c - digests of stored requests, by time, indexed in memory (see
 * dedup.h).
 */
#include "dedup.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "err.h"
#include "store.h"

/* Expired records removed per call at most (keeps commits short). */
#define EXPIRE_PER_CALL 4096
/* Digests the open run takes before it is closed at a round's end. A
 * match is confirmed by reading the records of its time range: up to
 * 1,023 plus a round's, some 20-50 us. */
#define OPEN_MAX 1024
/* Closed open runs (chunks) a closed run holds at most, and digests. */
#define CHUNKS 16
#define RUN_MAX (CHUNKS * OPEN_MAX)
/* A closed run spans at most dedup_window / SLICE_DIV (and at least
 * SLICE_MIN_MS), so that expiry gives memory back in steps of that. */
#define SLICE_DIV 8
#define SLICE_MIN_MS 1000

/*
 * The key of a digest: its first 4 bytes, big-endian. A closed run keeps
 * the first byte in a table of 257 offsets, the next 16 bits in its
 * entries, and the chunk the digest came in in 4 bits more: 2.5 bytes a
 * digest. An entry as read here (run_entry): the 16 bits, then the chunk
 * in the low byte.
 */
#define ENTRY_CHUNK 0xffu
static uint32_t digest_key(const uint8_t digest[32])
{
	return (uint32_t)digest[0] << 24 | (uint32_t)digest[1] << 16 |
	       (uint32_t)digest[2] << 8 | digest[3];
}

/* A closed run, in a mapping of its own (given back to the kernel at
 * once when it expires or is merged; pages of malloc's heap would stay
 * resident as holes). */
struct run {
	uint64_t t_lo[CHUNKS], t_hi[CHUNKS]; /* each chunk's record times */
	uint64_t newest;      /* the largest t_hi */
	size_t n, cap, nchunks;
	size_t bytes;         /* the mapping's length */
	uint32_t off[257];    /* off[b]: the first entry whose key's first
	                       * byte >= b; off[256] == n */
	/* cap x 16 bits of key (bits 8-23), then cap x 4 bits of chunk (two
	 * a byte, the even entry's low); in order of first byte, key, chunk */
	uint16_t data[];
};

struct dedup {
	struct run **runs;    /* owned; in the order they closed */
	size_t nruns, runs_cap;
	uint32_t *open;       /* owned; the open run's keys, sorted */
	size_t nopen, open_cap;
	uint64_t open_lo, open_hi; /* its records' times, when nopen > 0 */
	uint32_t *round;      /* owned; keys added this round */
	size_t nround, round_cap;
	uint64_t round_lo, round_hi; /* open_lo, open_hi before the round */
	uint64_t slice_ms;
	size_t n;             /* digests in the runs and the open run */
};

static uint64_t slice_for(uint64_t window_ms)
{
	uint64_t s = window_ms / SLICE_DIV;

	return s < SLICE_MIN_MS ? SLICE_MIN_MS : s;
}

/* Grows *arr (of *cap uint32_t) to hold one more than n. Returns 0 or
 * -1 (left as it was). */
static int keys_reserve(uint32_t **arr, size_t *cap, size_t n, size_t first)
{
	size_t c;
	uint32_t *a;

	if (n < *cap)
		return 0;
	c = *cap ? 2 * *cap : first;
	if ((a = realloc(*arr, c * sizeof(*a))) == NULL)
		return -1;
	*arr = a;
	*cap = c;
	return 0;
}

/* The first position in keys[0..n) whose key is >= key. */
static size_t keys_lower(const uint32_t *keys, size_t n, uint32_t key)
{
	size_t lo = 0, hi = n, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (keys[mid] < key)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* ---- closed runs ---- */

static const uint8_t *run_chunks(const struct run *r)
{
	return (const uint8_t *)(r->data + r->cap);
}

static uint32_t run_entry(const struct run *r, size_t i)
{
	return (uint32_t)r->data[i] << 8 |
	       (uint32_t)(run_chunks(r)[i / 2] >> (4 * (i & 1)) & 0xf);
}

static int confirm(struct store_txn *txn, uint64_t lo, uint64_t hi,
		   uint64_t from, const uint8_t digest[32]);

/* Whether r has a record of digest (key) from `from` on: each chunk whose
 * entries match the key's 24 bits is confirmed by its records. Returns
 * 1, 0 or an ERR_* code. */
static int run_seen(const struct run *r, struct store_txn *txn, uint32_t key,
		    uint64_t from, const uint8_t digest[32])
{
	size_t lo = r->off[key >> 24], hi = r->off[(key >> 24) + 1], mid;
	size_t end = hi;
	uint16_t want = (uint16_t)(key >> 8);
	uint32_t e, last = CHUNKS;
	int rc;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (r->data[mid] < want)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (; lo < end && r->data[lo] == want; lo++) {
		e = run_entry(r, lo);
		if ((e & ENTRY_CHUNK) == last)
			continue;
		last = e & ENTRY_CHUNK;
		if ((rc = confirm(txn, r->t_lo[last], r->t_hi[last], from,
				  digest)) != 0)
			return rc;
	}
	return 0;
}

static size_t run_bytes(size_t n)
{
	size_t b = sizeof(struct run) + 2 * n + (n + 1) / 2;
	long ps = sysconf(_SC_PAGESIZE);
	size_t page = ps > 0 ? (size_t)ps : 4096;

	return (b + page - 1) / page * page;
}

static void run_free(struct run *r)
{
	if (r != NULL)
		munmap(r, r->bytes);
}

/* Reads a run's keys in order. */
struct run_reader {
	const struct run *r;
	size_t i;
	unsigned b;           /* the first byte of key i */
};

static int reader_next(struct run_reader *rd, uint32_t *key)
{
	if (rd->r == NULL || rd->i == rd->r->n)
		return 0;
	while (rd->r->off[rd->b + 1] <= rd->i)
		rd->b++;
	*key = (uint32_t)rd->b << 24 | run_entry(rd->r, rd->i++);
	return 1;
}

/* Appends key (first byte, then the entry; not below the last one) to r,
 * which has room. */
static void run_push(struct run *r, unsigned *b, uint32_t key)
{
	uint8_t *chunks = (uint8_t *)(r->data + r->cap);

	while (*b <= key >> 24)
		r->off[(*b)++] = (uint32_t)r->n;
	r->data[r->n] = (uint16_t)(key >> 8);
	/* the mapping starts zeroed */
	chunks[r->n / 2] |= (uint8_t)((key & 0xf) << (4 * (r->n & 1)));
	r->n++;
}

/* A new run of old's entries (old may be NULL) and the open run's keys
 * as its next chunk. Returns NULL when memory is short. */
static struct run *run_merge(const struct dedup *d, const struct run *old)
{
	size_t n = d->nopen + (old ? old->n : 0), j = 0, bytes = run_bytes(n);
	size_t c = old ? old->nchunks : 0;
	struct run_reader rd = {old, 0, 0};
	struct run *r;
	uint32_t k, o = 0;
	unsigned b = 0;
	int more;
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	r = p;
	r->bytes = bytes;
	r->cap = n;
	if (old != NULL) {
		memcpy(r->t_lo, old->t_lo, sizeof(r->t_lo));
		memcpy(r->t_hi, old->t_hi, sizeof(r->t_hi));
	}
	r->t_lo[c] = d->open_lo;
	r->t_hi[c] = d->open_hi;
	r->nchunks = c + 1;
	r->newest = old && old->newest > d->open_hi ? old->newest : d->open_hi;
	for (more = reader_next(&rd, &k); more || j < d->nopen;) {
		if (j < d->nopen)
			o = (d->open[j] & ~ENTRY_CHUNK) | (uint32_t)c;
		if (more && (j == d->nopen || k <= o)) {
			run_push(r, &b, k);
			more = reader_next(&rd, &k);
		} else {
			run_push(r, &b, o);
			j++;
		}
	}
	while (b <= 256)
		r->off[b++] = (uint32_t)r->n;
	return r;
}

/* Closes the open run: a chunk of the newest closed run when both fit
 * in one (CHUNKS chunks, RUN_MAX digests, slice_ms of time), else a run
 * of its own. Returns 0 or -1 (memory short; the open run stays open). */
static int close_open(struct dedup *d)
{
	struct run *last = d->nruns ? d->runs[d->nruns - 1] : NULL, *r;
	uint64_t hi;

	if (d->nopen == 0)
		return 0;
	if (last != NULL) {
		hi = last->newest > d->open_hi ? last->newest : d->open_hi;
		if (last->nchunks == CHUNKS || last->n + d->nopen > RUN_MAX ||
		    d->open_lo < last->t_lo[0] || hi - last->t_lo[0] >= d->slice_ms)
			last = NULL;
	}
	if (last == NULL && d->nruns == d->runs_cap) {
		size_t cap = d->runs_cap ? 2 * d->runs_cap : 16;
		struct run **a = realloc(d->runs, cap * sizeof(*a));
		if (a == NULL)
			return -1;
		d->runs = a;
		d->runs_cap = cap;
	}
	if ((r = run_merge(d, last)) == NULL)
		return -1;
	if (last != NULL) {
		run_free(last);
		d->runs[d->nruns - 1] = r;
	} else {
		d->runs[d->nruns++] = r;
	}
	d->nopen = 0;
	return 0;
}

/* ---- the open run ---- */

/* Makes room for one more key in the open run and counts t in its time
 * range. Returns 0 or -1 (memory short). */
static int open_grow(struct dedup *d, uint64_t t)
{
	/* room for a round past OPEN_MAX before the run closes */
	if (keys_reserve(&d->open, &d->open_cap, d->nopen,
			 OPEN_MAX + OPEN_MAX / 4) < 0)
		return -1;
	if (d->nopen == 0) {
		d->open_lo = d->open_hi = t;
	} else {
		d->open_lo = t < d->open_lo ? t : d->open_lo;
		d->open_hi = t > d->open_hi ? t : d->open_hi;
	}
	d->nopen++;
	d->n++;
	return 0;
}

/* Adds (key, t) to the open run in its place. Returns 0 or -1 (memory
 * short). */
static int open_add(struct dedup *d, uint32_t key, uint64_t t)
{
	size_t i = keys_lower(d->open, d->nopen, key);

	if (open_grow(d, t) < 0)
		return -1;
	memmove(d->open + i + 1, d->open + i,
		(d->nopen - 1 - i) * sizeof(*d->open));
	d->open[i] = key;
	return 0;
}

static int key_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

static void open_remove(struct dedup *d, uint32_t key)
{
	size_t i = keys_lower(d->open, d->nopen, key);

	if (i == d->nopen || d->open[i] != key)
		return;
	memmove(d->open + i, d->open + i + 1,
		(d->nopen - i - 1) * sizeof(*d->open));
	d->nopen--;
	d->n--;
}

static int open_full(const struct dedup *d)
{
	return d->nopen >= OPEN_MAX ||
	       (d->nopen > 0 && d->open_hi - d->open_lo >= d->slice_ms);
}

/* Whether a record at t must go in a new open run: one before the open
 * run's oldest (the wall clock stepped back, or records from the future
 * were loaded at start) or a slice or more after it. A chunk's time range
 * then never spans a step of the clock: a match in it is confirmed by
 * reading its own records, not all those stored between. */
static int open_breaks_at(const struct dedup *d, uint64_t t)
{
	return d->nopen > 0 && (t < d->open_lo || t - d->open_lo >= d->slice_ms);
}

/* ---- the interface ---- */

struct load {
	struct dedup *d;
	uint64_t now, window_ms;
};

/* At start the open run takes keys in the order of their records and is
 * sorted once before it closes (a sorted insert moved about 2 KB a
 * record). */
static int load_one(void *arg, uint64_t t, const uint8_t digest[32])
{
	struct load *l = arg;
	struct dedup *d = l->d;

	if (l->window_ms == 0 || t + l->window_ms <= l->now)
		return 0;
	if (open_breaks_at(d, t)) {
		qsort(d->open, d->nopen, sizeof(*d->open), key_cmp);
		if (close_open(d) < 0)
			return ERR_NOMEM;
	}
	if (open_grow(d, t) < 0)
		return ERR_NOMEM;
	d->open[d->nopen - 1] = digest_key(digest);
	if (open_full(d)) {
		qsort(d->open, d->nopen, sizeof(*d->open), key_cmp);
		if (close_open(d) < 0)
			return ERR_NOMEM;
	}
	return 0;
}

struct dedup *dedup_open(struct store_txn *txn, uint64_t now,
			 uint64_t window_ms, int *rc)
{
	struct dedup *d = calloc(1, sizeof(*d));
	struct load l = {d, now, window_ms};

	*rc = ERR_NOMEM;
	if (d == NULL)
		return NULL;
	d->slice_ms = slice_for(window_ms);
	/* Records come oldest first: each closed run is a slice of time. */
	if ((*rc = store_dedup_each(txn, load_one, &l)) != 0) {
		dedup_free(d);
		return NULL;
	}
	if (d->nopen > 0)
		qsort(d->open, d->nopen, sizeof(*d->open), key_cmp);
	return d;
}

void dedup_free(struct dedup *d)
{
	if (d == NULL)
		return;
	for (size_t i = 0; i < d->nruns; i++)
		run_free(d->runs[i]);
	free(d->runs);
	free(d->open);
	free(d->round);
	free(d);
}

size_t dedup_count(const struct dedup *d)
{
	return d->n;
}

uint64_t dedup_widest_ms(const struct dedup *d)
{
	uint64_t w = d->nopen > 0 ? d->open_hi - d->open_lo : 0;

	for (size_t i = 0; i < d->nruns; i++) {
		for (size_t c = 0; c < d->runs[i]->nchunks; c++) {
			uint64_t s = d->runs[i]->t_hi[c] - d->runs[i]->t_lo[c];
			w = s > w ? s : w;
		}
	}
	return w;
}

size_t dedup_open_view(const struct dedup *d, const uint32_t **keys,
		       uint64_t *lo, uint64_t *hi)
{
	*keys = d->open;
	*lo = d->open_lo;
	*hi = d->open_hi;
	return d->nopen;
}

size_t dedup_bytes(const struct dedup *d)
{
	size_t b = sizeof(*d) + d->runs_cap * sizeof(*d->runs) +
		   (d->open_cap + d->round_cap) * sizeof(uint32_t);

	for (size_t i = 0; i < d->nruns; i++)
		b += d->runs[i]->bytes;
	return b;
}

/* Whether a record of digest lies in [lo, hi] from `from` on. */
static int confirm(struct store_txn *txn, uint64_t lo, uint64_t hi,
		   uint64_t from, const uint8_t digest[32])
{
	if (hi < from)
		return 0;
	return store_dedup_find(txn, lo > from ? lo : from, hi, digest);
}

int dedup_seen(struct dedup *d, struct store_txn *txn,
	       const uint8_t digest[32], uint64_t now, uint64_t window_ms)
{
	uint32_t key = digest_key(digest);
	uint64_t from = now >= window_ms ? now - window_ms + 1 : 0;
	size_t i;
	int rc;

	if (window_ms == 0)
		return 0;
	/* A key that matches (32 bits in the open run, 24 in a closed one)
	 * costs a read of its chunk's records, which have the whole digest.
	 * An error is passed on as it is, never taken for "not a
	 * duplicate". */
	i = keys_lower(d->open, d->nopen, key);
	if (i < d->nopen && d->open[i] == key &&
	    (rc = confirm(txn, d->open_lo, d->open_hi, from, digest)) != 0)
		return rc;
	/* Newest first: a resend follows its original closely. */
	for (i = d->nruns; i-- > 0;) {
		const struct run *r = d->runs[i];
		if (r->newest >= from &&
		    (rc = run_seen(r, txn, key, from, digest)) != 0)
			return rc;
	}
	return 0;
}

int dedup_remember(struct dedup *d, struct store_txn *txn,
		   const uint8_t digest[32], uint64_t now)
{
	uint32_t key = digest_key(digest);
	int rc;

	if ((rc = store_dedup_put(txn, now, digest)) != 0)
		return rc;
	if (keys_reserve(&d->round, &d->round_cap, d->nround, 64) < 0)
		return ERR_NOMEM;
	/* Between rounds the open run may close (a round's keys must all be
	 * in it); if memory is short it stays open and only spans more. */
	if (d->nround == 0 && open_breaks_at(d, now))
		(void)close_open(d);
	if (d->nround == 0) {
		d->round_lo = d->open_lo;
		d->round_hi = d->open_hi;
	}
	if (open_add(d, key, now) < 0)
		return ERR_NOMEM;
	d->round[d->nround++] = key;
	return 0;
}

void dedup_round_end(struct dedup *d, int committed)
{
	/* The open run is closed only here, between rounds: what a round
	 * added is all in it, to take out if the round is undone. */
	if (!committed && d->nround > 0) {
		for (size_t i = d->nround; i-- > 0;)
			open_remove(d, d->round[i]);
		d->open_lo = d->round_lo;
		d->open_hi = d->round_hi;
	}
	d->nround = 0;
	/* When memory is short the open run stays open (see dedup.h). */
	if (open_full(d))
		(void)close_open(d);
}

static void expired(void *arg, uint64_t t, const uint8_t digest[32])
{
	(void)arg;
	(void)t;
	(void)digest;
}

int dedup_expire(struct dedup *d, struct store_txn *txn, uint64_t now,
		 uint64_t window_ms)
{
	/* Records with t + window_ms <= now go. */
	uint64_t before = window_ms == 0 ? UINT64_MAX :
			  now >= window_ms ? now - window_ms + 1 : 0;
	int rc = store_dedup_expire(txn, before, EXPIRE_PER_CALL, expired, d);
	size_t j = 0;

	d->slice_ms = slice_for(window_ms);
	/* A run leaves the index whole once its newest record is out of
	 * the window; its older records no longer match before that (see
	 * dedup_seen), whether or not their removal has come yet. */
	for (size_t i = 0; i < d->nruns; i++) {
		if (d->runs[i]->newest < before) {
			d->n -= d->runs[i]->n;
			run_free(d->runs[i]);
		} else {
			d->runs[j++] = d->runs[i];
		}
	}
	d->nruns = j;
	if (d->nround == 0 && d->nopen > 0 && d->open_hi < before) {
		d->n -= d->nopen;
		d->nopen = 0;
	}
	return rc;
}
