/*
 * writer_sweep.c - deleting the delivered entries an answer's transaction
 * had no budget left for (store.h, "Deleting what was delivered"). The
 * next rounds take them, oldest first, within the same budget, one sweep
 * per tenant (its range widened by later answers); every start sweeps
 * each tenant with entries up to its furthest delivery cursor, for what
 * a stop or a crash left behind.
 */
#include "writer_int.h"

#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "log.h"
#include "queue.h"
#include "store.h"

static struct sweep *find(struct sweep *list, const char *tenant, size_t tlen)
{
	for (struct sweep *s = list; s != NULL; s = s->next)
		if (s->tlen == tlen && memcmp(s->tenant, tenant, tlen) == 0)
			return s;
	return NULL;
}

/* Adds first..last of the tenant to *list, widening the tenant's sweep
 * there if it has one. Returns 0 or ERR_NOMEM. */
static int add(struct sweep **list, const char *tenant, size_t tlen,
	       uint64_t first, uint64_t last)
{
	struct sweep *s = find(*list, tenant, tlen);

	if (s != NULL) {
		if (first < s->first)
			s->first = s->rest = first;
		if (last > s->last)
			s->last = last;
		return 0;
	}
	if (tlen > TENANT_ID_MAX || (s = calloc(1, sizeof(*s))) == NULL)
		return ERR_NOMEM;
	memcpy(s->tenant, tenant, tlen);
	s->tlen = tlen;
	s->first = s->rest = first;
	s->last = last;
	s->next = *list;
	*list = s;
	return 0;
}

int writer_sweep_add(struct writer *w, const char *tenant, size_t tlen,
		     uint64_t first, uint64_t last)
{
	return add(&w->sweeps_new, tenant, tlen, first, last);
}

/* The queue as loaded: a lane sends from send_seq on, so only entries
 * below the furthest of them can be delivered (the sweep reads the
 * cursors themselves). */
static void add_loaded(const struct queue_tenant *t, void *arg)
{
	struct writer *w = arg;
	uint64_t next = 0;

	for (unsigned l = 0; l < QUEUE_LANES; l++)
		if (t->lane[l].send_seq > next)
			next = t->lane[l].send_seq;
	if (t->entries > 0 && next > t->first_seq &&
	    add(&w->sweeps, t->id, t->idlen, t->first_seq, next - 1) != 0)
		log_msg(LOG_WARN, "out of memory; delivered entries stay until "
			"the next start", "where=sweep");
}

void writer_sweep_start(struct writer *w)
{
	queue_each(w->q, add_loaded, w);
}

int writer_apply_sweeps(struct writer *w, struct store_txn *txn)
{
	struct change *c;
	int rc;

	for (struct sweep *s = w->sweeps; s != NULL; s = s->next) {
		if ((c = writer_change_new(w, s->tenant, s->tlen)) == NULL)
			return ERR_NOMEM;
		if ((rc = store_sweep(txn, s->tenant, s->tlen, s->first,
				      s->last, &c->gone, &c->next,
				      &s->rest)) != 0) {
			s->broken = 1;
			return rc;
		}
	}
	return 0;
}

static void free_list(struct sweep *s)
{
	for (struct sweep *next; s != NULL; s = next) {
		next = s->next;
		free(s);
	}
}

void writer_sweeps_after(struct writer *w, int committed)
{
	struct sweep **p = &w->sweeps, *s, *n;

	if (committed == WRITER_SWEEPS_END) {
		free_list(w->sweeps);
		free_list(w->sweeps_new);
		w->sweeps = w->sweeps_new = NULL;
		return;
	}
	/* A round of sweeps alone that failed: they wait for a round that
	 * comes anyway rather than make rounds that may fail again. */
	w->sweeps_paused = committed < 0;
	if (committed < 0)
		committed = 0;
	while ((s = *p) != NULL) {
		if (!s->broken && (!committed || s->rest != 0)) {
			if (committed)
				s->first = s->rest;
			s->rest = s->first;
			p = &s->next;
			continue;
		}
		*p = s->next;
		free(s);
	}
	/* This round's answers: theirs once committed (a failed round's
	 * answers are applied again, and add them again). */
	n = w->sweeps_new;
	w->sweeps_new = NULL;
	for (; committed && n != NULL; n = s) {
		s = n->next;
		if (add(&w->sweeps, n->tenant, n->tlen, n->first, n->last) != 0)
			log_msg(LOG_WARN, "out of memory; delivered entries "
				"stay until the next start", "where=sweep");
		free(n);
	}
	free_list(n);
}
