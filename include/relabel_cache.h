/*
 * relabel_cache.h - the results of relabel rules, remembered by the labels
 * a series came with.
 *
 * Prometheus sends every series again at each scrape, with the same labels;
 * the rules (relabel.h) and the checks of what they leave (wire.h) then
 * give the same result. A cache remembers, for the labels of a series as
 * sent (their canonical encoding, sorted: the same bytes for the same
 * labels), what came out: dropped, or the labels left, in canonical
 * encoding. A hit skips the rules and the checks.
 *
 *   key    scope (ref; the tenant's configuration: rules and limits) and
 *          the label bytes as sent, compared in full (the hash only picks
 *          the bucket)
 *   value  dropped, or the final labels' canonical encoding
 *
 * A cache belongs to one thread and holds the results of one loaded
 * configuration (relabel_pass.c keeps one per ingest thread and starts it
 * afresh when the configuration is reloaded): no lock, and no line of
 * memory that two CPUs write in turn. Memory is bounded at creation:
 * entries (their bytes and a fixed overhead each) and the bucket array
 * together stay under max_bytes; when an insert would pass it, whole
 * buckets are evicted in the order a hand sweeps them (no order kept per
 * entry: a hit writes nothing but a counter).
 */
#ifndef RELAY_RELABEL_CACHE_H
#define RELAY_RELABEL_CACHE_H

#include <stddef.h>
#include <stdint.h>

struct relabel_cache;              /* opaque; relabel_cache.c */

/* Fixed bytes counted per entry besides its key and value. */
#define RELABEL_CACHE_ENTRY_OVERHEAD 64

/* The smallest cache worth having. */
#define RELABEL_CACHE_MIN (64 * 1024)

/* A cache of at most max_bytes (at least RELABEL_CACHE_MIN are taken);
 * NULL when memory is short. The caller frees it with relabel_cache_free. */
struct relabel_cache *relabel_cache_new(size_t max_bytes);

void relabel_cache_free(struct relabel_cache *c);

/* The hash of key[0..klen) in scope, for relabel_cache_get and _put. */
uint64_t relabel_cache_hash(const void *scope, const uint8_t *key,
			    size_t klen);

/* Asks the CPU for what a lookup of hash h will read, ahead of it: stage
 * 0 the bucket, stage 1 (a series later, when the bucket has come) the
 * entry it leads to. Changes nothing; never faults. */
void relabel_cache_prefetch(const struct relabel_cache *c, uint64_t h,
			    int stage);

/*
 * Looks up key[0..klen) in scope (h its relabel_cache_hash). Returns 0 when
 * it is not there; 1 when it is: *dropped says whether the rules dropped
 * the series, and if not, the final labels are (*value)[0..*vlen), in
 * the cache (ref): valid until the next relabel_cache_put or _free.
 */
int relabel_cache_get(struct relabel_cache *c, const void *scope,
		      uint64_t h, const uint8_t *key, size_t klen,
		      int *dropped, const uint8_t **value, size_t *vlen);

/*
 * Remembers the result for key[0..klen) in scope: dropped, or the final
 * labels value[0..vlen). Replaces an entry with the same key; evicts others
 * when the bound would be passed. Nothing is remembered when memory is
 * short or the entry alone is over 1/64 of the bound.
 */
void relabel_cache_put(struct relabel_cache *c, const void *scope,
		       uint64_t h, const uint8_t *key, size_t klen,
		       int dropped, const uint8_t *value, size_t vlen);

/* Hits, misses, entries and the bytes counted against the bound. */
struct relabel_cache_stats {
	uint64_t hits, misses, entries, bytes;
};
void relabel_cache_stats(const struct relabel_cache *c,
			 struct relabel_cache_stats *st);

#endif
