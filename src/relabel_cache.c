/*
 * relabel_cache.c - the results of relabel rules by the labels a series
 * came with (see relabel_cache.h).
 *
 * A chained hash table, its bucket array doubled while entries outnumber
 * buckets and the bound allows:
 *
 *   bytes = buckets * sizeof(pointer)
 *         + per entry: RELABEL_CACHE_ENTRY_OVERHEAD + key + value
 *
 * The overhead covers the entry's header and malloc's own. An insert that
 * would pass the bound first frees whole buckets at the hand, which then
 * moves on: eviction in bucket order, close to random, so that a working
 * set larger than the cache still hits in proportion (an LRU would miss
 * every time on series that come round in a fixed cycle).
 *
 * The entries of tens of thousands of series are far from the CPU's
 * caches: a lookup waits for memory twice (the bucket, then the entry).
 * relabel_cache_prefetch lets the scanner ask for both a series or two
 * ahead, so that the lookup finds them at hand.
 */
#include "relabel_cache.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "hash_mix.h"

#define MIN_BUCKETS 1024
/* A chain this long is evicted before an insert into it: keys made to
 * share a bucket cannot make lookups walk far. */
#define MAX_CHAIN 8

/* Mixed into every hash, drawn once per process: a sender cannot choose
 * labels that all land in one bucket. */
static uint64_t seed;
static pthread_once_t seed_once = PTHREAD_ONCE_INIT;

static void seed_init(void)
{
	struct timespec ts;

	if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != (ssize_t)sizeof(seed)) {
		clock_gettime(CLOCK_MONOTONIC, &ts);
		seed = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ull ^
		       (uint64_t)ts.tv_sec ^ (uint64_t)(uintptr_t)&ts;
	}
}

struct entry {
	struct entry *next;          /* owned: the bucket's chain */
	uint64_t h;
	const void *scope;           /* ref; only compared */
	uint32_t klen, vlen;
	int dropped;
	uint8_t data[];              /* key, then value */
};

struct relabel_cache {
	struct entry **bucket;       /* owned; nbuckets, a power of two */
	size_t nbuckets;
	size_t hand;                 /* next bucket to evict */
	size_t entries, bytes, max;
	uint64_t hits, misses;
};

uint64_t relabel_cache_hash(const void *scope, const uint8_t *key,
			    size_t klen)
{
	const uint64_t k1 = 0xa0761d6478bd642full, k2 = 0xe7037ed1a0b428dbull;
	uint64_t h = hash_mix((uint64_t)(uintptr_t)scope ^ k1 ^ seed, klen ^ k2),
		 a = 0, b = 0;
	size_t n = klen;
	const uint8_t *p = key;

	for (; n > 16; p += 16, n -= 16)
		h = hash_mix(hash_load64(p) ^ k1, hash_load64(p + 8) ^ h);
	if (n >= 8) {
		a = hash_load64(p);
		b = hash_load64(p + n - 8);
	} else {
		for (size_t i = 0; i < n; i++)
			a = a << 8 | p[i];
	}
	return hash_mix(h ^ k2, hash_mix(a ^ k1, b ^ h));
}

struct relabel_cache *relabel_cache_new(size_t max_bytes)
{
	struct relabel_cache *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	pthread_once(&seed_once, seed_init);
	c->max = max_bytes < RELABEL_CACHE_MIN ? RELABEL_CACHE_MIN : max_bytes;
	c->nbuckets = MIN_BUCKETS;
	c->bytes = c->nbuckets * sizeof(*c->bucket);
	if ((c->bucket = calloc(c->nbuckets, sizeof(*c->bucket))) == NULL) {
		free(c);
		return NULL;
	}
	return c;
}

void relabel_cache_free(struct relabel_cache *c)
{
	if (c == NULL)
		return;
	for (size_t b = 0; b < c->nbuckets; b++) {
		for (struct entry *e = c->bucket[b], *next; e != NULL; e = next) {
			next = e->next;
			free(e);
		}
	}
	free(c->bucket);
	free(c);
}

void relabel_cache_prefetch(const struct relabel_cache *c, uint64_t h,
			    int stage)
{
	struct entry *const *b = &c->bucket[h & (c->nbuckets - 1)];

	if (stage == 0) {
		__builtin_prefetch(b);
		return;
	}
	if (*b == NULL)
		return;
	/* the header, the key and most values (a few hundred bytes) */
	for (int i = 0; i < 6; i++)
		__builtin_prefetch((const char *)*b + 64 * i);
}

static inline size_t entry_bytes(size_t klen, size_t vlen)
{
	return RELABEL_CACHE_ENTRY_OVERHEAD + klen + vlen;
}

int relabel_cache_get(struct relabel_cache *c, const void *scope,
		      uint64_t h, const uint8_t *key, size_t klen,
		      int *dropped, const uint8_t **value, size_t *vlen)
{
	struct entry *e;

	for (e = c->bucket[h & (c->nbuckets - 1)]; e != NULL; e = e->next)
		if (e->h == h && e->scope == scope && e->klen == klen &&
		    memcmp(e->data, key, klen) == 0)
			break;
	if (e == NULL) {
		c->misses++;
		return 0;
	}
	c->hits++;
	*dropped = e->dropped;
	*value = e->data + klen;
	*vlen = e->vlen;
	return 1;
}

/* Frees the chain of bucket b. */
static void evict_bucket(struct relabel_cache *s, size_t b)
{
	struct entry *e, *next;

	for (e = s->bucket[b]; e != NULL; e = next) {
		next = e->next;
		s->bytes -= entry_bytes(e->klen, e->vlen);
		s->entries--;
		free(e);
	}
	s->bucket[b] = NULL;
}

/* Doubles s's bucket array when entries outnumber buckets and the bound
 * leaves room for it; otherwise the chains grow. */
static void maybe_grow(struct relabel_cache *s)
{
	size_t n = 2 * s->nbuckets, add = s->nbuckets * sizeof(*s->bucket);
	struct entry **nb;

	if (s->entries <= s->nbuckets || s->bytes + add > s->max / 2 ||
	    (nb = calloc(n, sizeof(*nb))) == NULL)
		return;
	for (size_t b = 0; b < s->nbuckets; b++) {
		for (struct entry *e = s->bucket[b], *next; e != NULL; e = next) {
			next = e->next;
			e->next = nb[e->h & (n - 1)];
			nb[e->h & (n - 1)] = e;
		}
	}
	free(s->bucket);
	s->bucket = nb;
	s->nbuckets = n;
	s->bytes += add;
	s->hand &= n - 1;
}

void relabel_cache_put(struct relabel_cache *c, const void *scope,
		       uint64_t h, const uint8_t *key, size_t klen,
		       int dropped, const uint8_t *value, size_t vlen)
{
	struct relabel_cache *s = c;
	size_t need = entry_bytes(klen, vlen), b, chain = 0;
	struct entry *e, **pp;

	if (need > s->max / 64 || klen > UINT32_MAX || vlen > UINT32_MAX)
		return;
	b = h & (s->nbuckets - 1);
	for (pp = &s->bucket[b]; *pp != NULL; pp = &(*pp)->next, chain++) {
		e = *pp;
		if (e->h == h && e->scope == scope && e->klen == klen &&
		    memcmp(e->data, key, klen) == 0) {
			*pp = e->next;
			s->bytes -= entry_bytes(e->klen, e->vlen);
			s->entries--;
			free(e);
			break;
		}
	}
	if (chain >= MAX_CHAIN)
		evict_bucket(s, b);
	while (s->bytes + need > s->max && s->entries > 0) {
		evict_bucket(s, s->hand);
		s->hand = (s->hand + 1) & (s->nbuckets - 1);
	}
	if (s->bytes + need > s->max ||
	    (e = malloc(sizeof(*e) + klen + vlen)) == NULL)
		return;
	e->h = h;
	e->scope = scope;
	e->klen = (uint32_t)klen;
	e->vlen = (uint32_t)vlen;
	e->dropped = dropped;
	memcpy(e->data, key, klen);
	if (vlen > 0)
		memcpy(e->data + klen, value, vlen);
	b = h & (s->nbuckets - 1);
	e->next = s->bucket[b];
	s->bucket[b] = e;
	s->entries++;
	s->bytes += need;
	maybe_grow(s);
}

void relabel_cache_stats(const struct relabel_cache *c,
			 struct relabel_cache_stats *st)
{
	memset(st, 0, sizeof(*st));
	if (c == NULL)
		return;
	st->hits = c->hits;
	st->misses = c->misses;
	st->entries = c->entries;
	st->bytes = c->bytes;
}
