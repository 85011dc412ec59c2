/*
 * reload.c - configuration in force and its replacement (see reload.h).
 */
#include "reload.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "tenant.h"

/* A configuration that was in force; kept so that readers may finish. */
struct retired {
	struct config *cfg;
	struct retired *next;
};

static _Atomic(struct config *) current;
static struct retired *retired;
static pthread_mutex_t reload_lock = PTHREAD_MUTEX_INITIALIZER;

void reload_init(struct config *cfg)
{
	atomic_store(&current, cfg);
}

const struct config *config_current(void)
{
	return atomic_load(&current);
}

int reload_now(char *msg, size_t msglen)
{
	struct config *next, *cur;
	struct retired *r;
	char err[1024], changed[512];
	int differ, rc = -1;

	pthread_mutex_lock(&reload_lock);
	cur = atomic_load(&current);
	next = malloc(sizeof(*next));
	r = malloc(sizeof(*r));
	if (next == NULL || r == NULL) {
		snprintf(msg, msglen, "out of memory");
		free(next);
		free(r);
		goto out;
	}
	if (config_load(next, cur->file, err, sizeof(err)) < 0) {
		snprintf(msg, msglen, "%s", err);
		config_free(next);
		free(next);
		free(r);
		{
			char q[1100];
			log_msg(LOG_ERROR, "reload failed, the old configuration stays",
				"reason=%s", log_quote(err, strlen(err), q, sizeof(q)));
		}
		goto out;
	}
	differ = config_keep_fixed(next, cur, changed, sizeof(changed));
	if (differ < 0) {
		snprintf(msg, msglen, "out of memory");
		config_free(next);
		free(next);
		free(r);
		goto out;
	}
	if (differ > 0)
		log_msg(LOG_WARN, "reload: these keys need a restart to change, "
			"they keep their old values", "keys=\"%s\"", changed);
	tenant_prepare(next);
	log_set_level((enum log_level)next->log_level);
	r->cfg = cur;
	r->next = retired;
	retired = r;
	atomic_store(&current, next);
	snprintf(msg, msglen, "reloaded: %d tenants%s%s", next->ntenants,
		 differ > 0 ? "; need a restart to change: " : "",
		 differ > 0 ? changed : "");
	log_msg(LOG_INFO, "configuration reloaded", "tenants=%d", next->ntenants);
	rc = 0;
out:
	pthread_mutex_unlock(&reload_lock);
	return rc;
}

void reload_free_all(void)
{
	struct config *cfg = atomic_exchange(&current, NULL);
	struct retired *r, *next;

	if (cfg != NULL) {
		config_free(cfg);
		free(cfg);
	}
	for (r = retired; r != NULL; r = next) {
		next = r->next;
		config_free(r->cfg);
		free(r->cfg);
		free(r);
	}
	retired = NULL;
}
