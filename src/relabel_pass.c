/*
 * relabel_pass.c - relabel rules as the wire scanner's per-series hook
 * (see relabel_pass.h).
 */
#include "relabel_pass.h"

#include <string.h>

/* The calling thread's scratch; set up on first use. */
static __thread struct relabel_scratch scratch;

int relabel_pass_init(struct relabel_pass *p, const struct config *cfg,
		      const struct config_tenant *t)
{
	memset(p, 0, sizeof(*p));
	if (relabel_count(cfg->relabel_rules) > 0)
		p->rules[0] = cfg->relabel_rules;
	if (t != NULL && relabel_count(t->relabel_rules) > 0)
		p->rules[1] = t->relabel_rules;
	return p->rules[0] != NULL || p->rules[1] != NULL;
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

void relabel_pass_thread_cleanup(void)
{
	relabel_scratch_free(&scratch);
}
