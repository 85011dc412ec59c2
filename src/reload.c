/*
 * reload.c - configuration in force and its replacement (see reload.h).
 *
 * Every configuration in memory is a struct kept: the one in force
 * (current), the first one (pinned: the modules started with it keep
 * pointers to it) and replaced ones that holders still use (on the list
 * retired). hold_lock guards the pointer to current, every holder count
 * and the list; it is held for a few instructions, never while a file is
 * read. reload_lock makes reloads one at a time.
 */
#include "reload.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "metrics.h"
#include "tenant.h"

struct kept {
	struct config *cfg;   /* owned */
	unsigned holders;     /* config_hold() not yet released */
	int pinned;           /* the first configuration: freed at exit only */
	struct kept *next;    /* on retired */
};

static struct kept *current;
static struct kept *retired;  /* replaced, still held or pinned */
static pthread_mutex_t hold_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t reload_lock = PTHREAD_MUTEX_INITIALIZER;

static void kept_free(struct kept *k)
{
	if (k == NULL)
		return;
	config_free(k->cfg);
	free(k->cfg);
	free(k);
}

void reload_init(struct config *cfg)
{
	struct kept *k = calloc(1, sizeof(*k));

	if (k == NULL)
		fatal("out of memory", NULL);
	k->cfg = cfg;
	k->pinned = 1;
	pthread_mutex_lock(&hold_lock);
	current = k;
	pthread_mutex_unlock(&hold_lock);
}

const struct config *config_hold(void)
{
	struct config *cfg;

	pthread_mutex_lock(&hold_lock);
	current->holders++;
	cfg = current->cfg;
	pthread_mutex_unlock(&hold_lock);
	return cfg;
}

void config_release(const struct config *cfg)
{
	struct kept **pk, *gone = NULL;

	if (cfg == NULL)
		return;
	pthread_mutex_lock(&hold_lock);
	if (current != NULL && current->cfg == cfg) {
		current->holders--;
	} else {
		for (pk = &retired; *pk != NULL && (*pk)->cfg != cfg; pk = &(*pk)->next)
			;
		if (*pk != NULL && --(*pk)->holders == 0 && !(*pk)->pinned) {
			gone = *pk;
			*pk = gone->next;
		}
	}
	pthread_mutex_unlock(&hold_lock);
	kept_free(gone);
}

/* Puts next in force; frees the replaced one when nobody holds it. */
static void swap_in(struct kept *next)
{
	struct kept *old;

	pthread_mutex_lock(&hold_lock);
	old = current;
	current = next;
	if (old->holders > 0 || old->pinned) {
		old->next = retired;
		retired = old;
		old = NULL;
	}
	pthread_mutex_unlock(&hold_lock);
	kept_free(old);
}

int reload_now(char *msg, size_t msglen)
{
	const struct config *cur;
	struct kept *next;
	char err[1024], changed[512], q[1100];
	int differ, rc = -1;

	pthread_mutex_lock(&reload_lock);
	cur = config_hold();
	next = calloc(1, sizeof(*next));
	if (next == NULL || (next->cfg = malloc(sizeof(*next->cfg))) == NULL) {
		snprintf(msg, msglen, "out of memory");
		free(next);
		goto out;
	}
	if (config_load(next->cfg, cur->file, err, sizeof(err)) < 0 ||
	    tenant_prepare(next->cfg, err, sizeof(err)) < 0) {
		snprintf(msg, msglen, "%s", err);
		kept_free(next);
		log_msg(LOG_ERROR, "reload failed, the old configuration stays",
			"reason=%s", log_quote(err, strlen(err), q, sizeof(q)));
		goto out;
	}
	differ = config_keep_fixed(next->cfg, cur, changed, sizeof(changed));
	if (differ < 0) {
		snprintf(msg, msglen, "out of memory");
		kept_free(next);
		goto out;
	}
	if (differ > 0)
		log_msg(LOG_WARN, "reload: these keys need a restart to change, "
			"they keep their old values", "keys=\"%s\"", changed);
	snprintf(msg, msglen, "reloaded: %d tenants%s%s", next->cfg->ntenants,
		 differ > 0 ? "; need a restart to change: " : "",
		 differ > 0 ? changed : "");
	/* Said at the level in force before: a reload to level = warn
	 * still leaves its trace. */
	log_msg(LOG_INFO, "configuration reloaded", "tenants=%d level=%s",
		next->cfg->ntenants,
		log_level_name((enum log_level)next->cfg->log_level));
	log_set_level((enum log_level)next->cfg->log_level);
	atomic_store(&metrics.reload_failed, 0);
	atomic_store(&metrics.reload_success_s, (uint64_t)time(NULL));
	swap_in(next);
	rc = 0;
out:
	if (rc != 0)
		atomic_store(&metrics.reload_failed, 1);
	config_release(cur);
	pthread_mutex_unlock(&reload_lock);
	return rc;
}

size_t reload_configs_kept(void)
{
	size_t n;
	struct kept *k;

	pthread_mutex_lock(&hold_lock);
	n = current != NULL;
	for (k = retired; k != NULL; k = k->next)
		n++;
	pthread_mutex_unlock(&hold_lock);
	return n;
}

void reload_free_all(void)
{
	struct kept *k, *next;

	pthread_mutex_lock(&hold_lock);
	k = current;
	current = NULL;
	kept_free(k);
	for (k = retired; k != NULL; k = next) {
		next = k->next;
		kept_free(k);
	}
	retired = NULL;
	pthread_mutex_unlock(&hold_lock);
}
