/*
 * dedup.c - digests of stored requests, by time, indexed in memory (see
 * dedup.h).
 */
#include "dedup.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "err.h"
#include "store.h"

/* Expired records removed per call at most (keeps commits short). */
#define EXPIRE_PER_CALL 4096
#define MIN_SLOTS 1024

/*
 * One digest in the index, in 8 bytes: the top 36 bits of the digest's
 * first 8 bytes (the key; never 0, so that 0 marks a free slot) over the
 * low T_BITS bits of its record's time in ms. The time is read back as
 * the one with those bits nearest to the current time, which is exact
 * while the record is less than 2^27 ms (37 hours) older or newer: more
 * than the longest dedup_window (a day). A key that matches only in its
 * 36 bits costs one lookup of the record, which has the whole digest.
 */
#define T_BITS 28
#define T_MASK ((UINT64_C(1) << T_BITS) - 1)

/* A digest added this round, to take out again if the round is undone. */
struct added {
	uint64_t key;
	uint64_t t;
};

struct dedup {
	uint64_t *slots;      /* owned; open addressing, linear probing */
	size_t cap;           /* a power of two */
	size_t n;
	struct added *round;  /* owned */
	size_t nround, round_cap;
};

static uint64_t digest_key(const uint8_t digest[32])
{
	uint64_t k;

	memcpy(&k, digest, 8);
	k >>= T_BITS;
	return k != 0 ? k : 1;
}

static inline uint64_t slot_make(uint64_t key, uint64_t t)
{
	return key << T_BITS | (t & T_MASK);
}

static inline uint64_t slot_key(uint64_t slot)
{
	return slot >> T_BITS;
}

/* The record time of slot, as seen at now (see above). */
static uint64_t slot_time(uint64_t slot, uint64_t now)
{
	uint64_t back = (now - slot) & T_MASK;

	return back <= T_MASK / 2 ? now - back : now + (T_MASK + 1 - back);
}

/* Puts slot into a free place; the caller made room. */
static void place(uint64_t *slots, size_t cap, uint64_t slot)
{
	size_t i = (size_t)slot_key(slot) & (cap - 1);

	while (slots[i] != 0)
		i = (i + 1) & (cap - 1);
	slots[i] = slot;
}

/*
 * The slots are a mapping of their own, not malloc's: a table given up
 * when the index doubles or halves goes back to the kernel at once, where
 * in the heap it would stay resident as a hole (up to the sum of the
 * smaller tables, a quarter of a MiB at 50,000 requests), and pages no
 * digest has touched take no memory.
 */
static uint64_t *slots_alloc(size_t cap)
{
	void *p = mmap(NULL, cap * sizeof(uint64_t), PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

static void slots_free(uint64_t *s, size_t cap)
{
	if (s != NULL)
		munmap(s, cap * sizeof(uint64_t));
}

/* Moves the index to cap slots. Returns 0 or -1 (it is left as it was). */
static int resize(struct dedup *d, size_t cap)
{
	uint64_t *s = slots_alloc(cap);

	if (s == NULL)
		return -1;
	for (size_t i = 0; i < d->cap; i++)
		if (d->slots[i] != 0)
			place(s, cap, d->slots[i]);
	slots_free(d->slots, d->cap);
	d->slots = s;
	d->cap = cap;
	return 0;
}

/* The fewest slots (a power of two, at least MIN_SLOTS) that hold n
 * digests at 0.8 full at most (as insert keeps them). */
static size_t cap_for(size_t n)
{
	size_t cap = MIN_SLOTS;

	while (5 * n > 4 * cap)
		cap *= 2;
	return cap;
}

static int insert(struct dedup *d, uint64_t key, uint64_t t)
{
	/* Up to 0.8 full: linear probing's inserts then probe about 13
	 * slots of one or two cache lines, nothing next to a request's
	 * SHA-256, and the index takes half the memory of 0.5. */
	if (5 * (d->n + 1) > 4 * d->cap && resize(d, 2 * d->cap) < 0)
		return -1;
	place(d->slots, d->cap, slot_make(key, t));
	d->n++;
	return 0;
}

/* Removes the slot of (key, t), if any, shifting back the slots after it
 * that would no longer be found. */
static void remove_slot(struct dedup *d, uint64_t key, uint64_t t)
{
	size_t mask = d->cap - 1, i = (size_t)key & mask, j, home;
	uint64_t want = slot_make(key, t);

	for (; d->slots[i] != 0; i = (i + 1) & mask)
		if (d->slots[i] == want)
			break;
	if (d->slots[i] == 0)
		return;
	d->n--;
	for (j = (i + 1) & mask; d->slots[j] != 0; j = (j + 1) & mask) {
		home = (size_t)slot_key(d->slots[j]) & mask;
		/* Slot j may move to i only if its home is not in (i, j]. */
		if (((j - home) & mask) >= ((j - i) & mask)) {
			d->slots[i] = d->slots[j];
			i = j;
		}
	}
	d->slots[i] = 0;
}

/* Counts (d NULL) or loads one record into the index, if it is still in
 * the window. */
struct load {
	struct dedup *d;
	uint64_t now, window_ms;
	size_t n;
};

static int load_one(void *arg, uint64_t t, const uint8_t digest[32])
{
	struct load *l = arg;

	if (l->window_ms == 0 || t + l->window_ms <= l->now)
		return 0;
	if (l->d == NULL) {
		l->n++;
		return 0;
	}
	return insert(l->d, digest_key(digest), t) < 0 ? ERR_NOMEM : 0;
}

struct dedup *dedup_open(struct store_txn *txn, uint64_t now,
			 uint64_t window_ms, int *rc)
{
	struct dedup *d = calloc(1, sizeof(*d));
	struct load l = {NULL, now, window_ms, 0};

	*rc = ERR_NOMEM;
	if (d == NULL)
		goto fail;
	/* Counted first, then loaded into a table of its final size: no
	 * table is built only to be copied and given up. */
	if ((*rc = store_dedup_each(txn, load_one, &l)) != 0)
		goto fail;
	d->cap = cap_for(l.n);
	*rc = ERR_NOMEM;
	if ((d->slots = slots_alloc(d->cap)) == NULL)
		goto fail;
	l.d = d;
	if ((*rc = store_dedup_each(txn, load_one, &l)) != 0)
		goto fail;
	return d;
fail:
	dedup_free(d);
	return NULL;
}

void dedup_free(struct dedup *d)
{
	if (d == NULL)
		return;
	slots_free(d->slots, d->cap);
	free(d->round);
	free(d);
}

size_t dedup_count(const struct dedup *d)
{
	return d->n;
}

int dedup_seen(struct dedup *d, struct store_txn *txn,
	       const uint8_t digest[32], uint64_t now, uint64_t window_ms)
{
	uint64_t key = digest_key(digest), t;
	size_t mask = d->cap - 1;
	int rc;

	if (window_ms == 0)
		return 0;
	for (size_t i = (size_t)key & mask; d->slots[i] != 0;
	     i = (i + 1) & mask) {
		if (slot_key(d->slots[i]) != key)
			continue;
		if ((t = slot_time(d->slots[i], now)) + window_ms <= now)
			continue;
		/* 36 bits matched: the record says whether all do. An error
		 * is passed on as it is, never taken for "not a duplicate". */
		if ((rc = store_dedup_has(txn, t, digest)) != 0)
			return rc;
	}
	return 0;
}

int dedup_remember(struct dedup *d, struct store_txn *txn,
		   const uint8_t digest[32], uint64_t now)
{
	uint64_t key = digest_key(digest);
	int rc;

	if ((rc = store_dedup_put(txn, now, digest)) != 0)
		return rc;
	if (d->nround == d->round_cap) {
		size_t cap = d->round_cap ? 2 * d->round_cap : 64;
		struct added *a = realloc(d->round, cap * sizeof(*a));
		if (a == NULL)
			return ERR_NOMEM;
		d->round = a;
		d->round_cap = cap;
	}
	if (insert(d, key, now) < 0)
		return ERR_NOMEM;
	d->round[d->nround].key = key;
	d->round[d->nround].t = now;
	d->nround++;
	return 0;
}

void dedup_round_end(struct dedup *d, int committed)
{
	if (!committed)
		for (size_t i = d->nround; i-- > 0;)
			remove_slot(d, d->round[i].key, d->round[i].t);
	d->nround = 0;
}

static void expired(void *arg, uint64_t t, const uint8_t digest[32])
{
	remove_slot(arg, digest_key(digest), t);
}

int dedup_expire(struct dedup *d, struct store_txn *txn, uint64_t now,
		 uint64_t window_ms)
{
	/* Records with t + window_ms <= now go. */
	uint64_t before = window_ms == 0 ? UINT64_MAX :
			  now >= window_ms ? now - window_ms + 1 : 0;
	int rc = store_dedup_expire(txn, before, EXPIRE_PER_CALL, expired, d);

	/* Give memory back after a burst. */
	if (d->cap > MIN_SLOTS && 8 * d->n < d->cap)
		resize(d, d->cap / 2);
	return rc;
}
