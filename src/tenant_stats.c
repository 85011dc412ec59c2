/*
 * tenant_stats.c - per-tenant counters for /metrics (see tenant_stats.h).
 */
#include "tenant_stats.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "err.h"
#include "usage.h"

struct tenant_entry {
	char id[TENANT_ID_MAX + 1];
	size_t idlen;
	struct tenant_counters c;
	struct tenant_entry *next;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct tenant_entry *tenants;  /* owned; guarded by lock */

/* The tenant's counters, made when create and absent; NULL when there is
 * no tenant (idlen 0), it is absent, or out of memory. Lock held. */
static struct tenant_counters *counters(const char *id, size_t idlen,
					int create)
{
	struct tenant_entry *t, **tail = &tenants;

	if (idlen == 0 || idlen > TENANT_ID_MAX)
		return NULL;
	for (t = tenants; t != NULL; t = t->next) {
		if (t->idlen == idlen && memcmp(t->id, id, idlen) == 0)
			return &t->c;
		tail = &t->next;
	}
	if (!create || (t = calloc(1, sizeof(*t))) == NULL)
		return NULL;
	memcpy(t->id, id, idlen);
	t->idlen = idlen;
	*tail = t;
	return &t->c;
}

void tenant_stats_received(const char *id, size_t idlen,
			   const struct usage_rec *u, int dup)
{
	struct tenant_counters *c;

	pthread_mutex_lock(&lock);
	if ((c = counters(id, idlen, 1)) != NULL) {
		if (dup)
			c->duplicates++;
		if (u != NULL) {
			c->requests += u->requests;
			c->samples += u->samples;
			c->series += u->series;
			c->bytes += u->bytes_compressed;
			c->samples_dropped_by_rule += u->samples_dropped_by_rule;
		}
	}
	pthread_mutex_unlock(&lock);
}

void tenant_stats_refused(const char *id, size_t idlen,
			  enum refuse_reason reason, uint64_t samples)
{
	struct tenant_counters *c;

	if ((unsigned)reason >= REFUSE_NREASONS)
		return;
	pthread_mutex_lock(&lock);
	if ((c = counters(id, idlen, 1)) != NULL) {
		c->refused[reason]++;
		c->samples_refused += samples;
	}
	pthread_mutex_unlock(&lock);
}

void tenant_stats_ha_deduplicated(const char *id, size_t idlen,
				  uint64_t samples)
{
	struct tenant_counters *c;

	pthread_mutex_lock(&lock);
	if ((c = counters(id, idlen, 1)) != NULL) {
		c->ha_requests_deduplicated++;
		c->ha_samples_deduplicated += samples;
	}
	pthread_mutex_unlock(&lock);
}

void tenant_stats_forwarded(const char *id, size_t idlen, uint64_t samples)
{
	struct tenant_counters *c;

	pthread_mutex_lock(&lock);
	if ((c = counters(id, idlen, 1)) != NULL)
		c->samples_forwarded += samples;
	pthread_mutex_unlock(&lock);
}

int tenant_stats_get(const char *id, size_t idlen, struct tenant_counters *out)
{
	struct tenant_counters *c;
	int rc = ERR_NOTFOUND;

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&lock);
	if ((c = counters(id, idlen, 0)) != NULL) {
		*out = *c;
		rc = 0;
	}
	pthread_mutex_unlock(&lock);
	return rc;
}

void tenant_stats_each(void (*fn)(const char *id, size_t idlen,
				  const struct tenant_counters *c, void *arg),
		       void *arg)
{
	pthread_mutex_lock(&lock);
	for (struct tenant_entry *t = tenants; t != NULL; t = t->next)
		fn(t->id, t->idlen, &t->c, arg);
	pthread_mutex_unlock(&lock);
}

void tenant_stats_reset(void)
{
	struct tenant_entry *t, *next;

	pthread_mutex_lock(&lock);
	for (t = tenants; t != NULL; t = next) {
		next = t->next;
		free(t);
	}
	tenants = NULL;
	pthread_mutex_unlock(&lock);
}
