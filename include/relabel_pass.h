/*
 * relabel_pass.h - relabel rules in the one pass over a request's series:
 * the wire scanner's relabel hook (wire.h) running [tenancy]'s rules, then
 * the tenant's own (config.h), with a per-thread scratch.
 */
#ifndef RELAY_RELABEL_PASS_H
#define RELAY_RELABEL_PASS_H

#include <stddef.h>

#include "config.h"
#include "relabel.h"

/* The rules of one request, in the order they run. */
struct relabel_pass {
	const struct relabel_rules *rules[2]; /* ref; either may be NULL */
	struct relabel_cache *cache; /* ref: the calling thread's cache of
				      * rule results (relabel_cache.h), or NULL */
	const void *scope;           /* ref: the tenant's configuration (its
				      * rules and limits), the cache's scope */
};

/*
 * Sets p up for a request under cfg from tenant t (NULL: none), with the
 * calling thread's cache of rule results: its share of [tenancy]
 * relabel_cache, started afresh when cfg is another load than the one it
 * holds (a reload); scope t, which stands for the rules and limits of t.
 * p is then for this thread only. Returns 1
 * when some rule applies (then hand relabel_pass_series and p to the
 * scanner), 0 when none does (no hook: the scan costs nothing more).
 */
int relabel_pass_init(struct relabel_pass *p, const struct config *cfg,
		      const struct config_tenant *t);

/* wire_opts' relabel hook; arg is a struct relabel_pass. The strings it
 * makes live in the calling thread's scratch until its next call. */
int relabel_pass_series(void *arg, struct relabel_label *ls, size_t *n,
			size_t cap);

/* After the scan of a request that p was set up for: adds what the
 * thread's cache counted to /metrics (metrics.h relabel_cache_*). */
void relabel_pass_done(struct relabel_pass *p);

/* Frees the calling thread's scratch and cache (before the thread exits). */
void relabel_pass_thread_cleanup(void);

#endif
