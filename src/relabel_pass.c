/*
 * relabel_pass.c - relabel rules as the wire scanner's per-series hook
 * (see relabel_pass.h), and each thread's cache of their results
 * (relabel_cache.h).
 */
#include "relabel_pass.h"

#include <string.h>

#include "metrics.h"
#include "relabel_cache.h"

/* The calling thread's scratch; set up on first use. */
static __thread struct relabel_scratch scratch;

/* The calling thread's cache of rule results, for the configuration
 * loaded as cache_gen (config.h relabel_gen); NULL: none yet. */
static __thread struct relabel_cache *cache;
static __thread uint64_t cache_gen;
/* What of the cache's counts /metrics has (metrics.h relabel_cache_*). */
static __thread struct relabel_cache_stats told;

/* Adds what the thread's cache counted since it last told /metrics. The
 * bytes are a gauge of all threads together: only the change is added
 * (modulo 2^64, so a shrink subtracts). */
static void cache_tell(void)
{
	struct relabel_cache_stats now;

	if (cache == NULL)
		return;
	relabel_cache_stats(cache, &now);
	metric_add(&metrics.relabel_cache_hits, now.hits - told.hits);
	metric_add(&metrics.relabel_cache_misses, now.misses - told.misses);
	metric_add(&metrics.relabel_cache_bytes, now.bytes - told.bytes);
	told = now;
}

/* Frees the thread's cache, its bytes taken off the gauge. */
static void cache_drop(void)
{
	cache_tell();
	metric_add(&metrics.relabel_cache_bytes, (uint64_t)0 - told.bytes);
	memset(&told, 0, sizeof(told));
	relabel_cache_free(cache);
	cache = NULL;
}

/* The thread's cache for cfg: the one it has when it holds cfg's results,
 * else a new one of its share of relabel_cache (the old one, of another
 * load, is freed). NULL when cfg wants none, its share is under
 * RELABEL_CACHE_MIN, or memory is short (the rules then run for every
 * series). */
static struct relabel_cache *thread_cache(const struct config *cfg)
{
	size_t share;

	if (cache != NULL && cache_gen == cfg->relabel_gen)
		return cache;
	/* A request begun under the load before the thread's cache: no
	 * cache for it (swapping back would throw both loads' results away). */
	if (cache != NULL && cfg->relabel_gen < cache_gen)
		return NULL;
	cache_drop();
	cache_gen = cfg->relabel_gen;
	if (cfg->relabel_cache_size == 0)
		return NULL;
	share = (size_t)(cfg->relabel_cache_size /
			 (uint64_t)(cfg->threads > 0 ? cfg->threads : 1));
	if (share < RELABEL_CACHE_MIN)
		return NULL;
	cache = relabel_cache_new(share);
	return cache;
}

int relabel_pass_init(struct relabel_pass *p, const struct config *cfg,
		      const struct config_tenant *t)
{
	memset(p, 0, sizeof(*p));
	if (relabel_count(cfg->relabel_rules) > 0)
		p->rules[0] = cfg->relabel_rules;
	if (t != NULL && relabel_count(t->relabel_rules) > 0)
		p->rules[1] = t->relabel_rules;
	if (p->rules[0] == NULL && p->rules[1] == NULL) {
		if (cache != NULL && cache_gen < cfg->relabel_gen)
			cache_drop();   /* rules gone by a reload */
		return 0;
	}
	p->cache = thread_cache(cfg);
	p->scope = t;
	return 1;
}

int relabel_pass_series(void *arg, struct relabel_label *ls, size_t *n,
			size_t cap)
{
	const struct relabel_pass *p = arg;
	int rc = 0;

	relabel_scratch_reset(&scratch);
	for (int i = 0; i < 2 && rc == 0; i++)
		if (p->rules[i] != NULL)
			rc = relabel_apply(p->rules[i], ls, n, cap, &scratch);
	return rc;
}

void relabel_pass_done(struct relabel_pass *p)
{
	if (p->cache != NULL)
		cache_tell();
}

void relabel_pass_thread_cleanup(void)
{
	relabel_scratch_free(&scratch);
	cache_drop();
}
