/*
 * test_reload.c - reloading the configuration: a replaced configuration is
 * freed once nobody holds it (reloads do not add up in memory), one still
 * held stays intact until released, the first one stays to the end, and
 * readers on other threads can hold and read while reloads run (under
 * make check, ASan would see a read of a freed configuration).
 */
#include "config.h"
#include "reload.h"
#include "tenant.h"
#include "unit.h"

#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#include "tmpdir.h"

#define TENANTS 1000
#define RELOADS 60

static char dir[48];
static char conf[64];

/* Writes a config with n tenants named t0..t(n-1), each with a token. */
static int write_tenants(int n)
{
	FILE *f = fopen(conf, "w");

	if (f == NULL)
		return -1;
	fprintf(f, "[log]\nlevel = warn\n");
	for (int i = 0; i < n; i++)
		fprintf(f, "[tenant t%d]\ntoken = token-of-tenant-%d\naccount_id = %d\n",
			i, i, i);
	return fclose(f);
}

/* Bytes malloc has handed out and not taken back; 0 where it cannot
 * tell (under ASan, whose allocator glibc does not see). */
static size_t heap_in_use(void)
{
	return mallinfo2().uordblks;
}

static void test_replaced_configs_are_freed(void)
{
	char msg[256];
	size_t before = 0, after;

	for (int i = 0; i < RELOADS; i++) {
		CHECK_EQ_INT(reload_now(msg, sizeof(msg)), 0);
		/* the first configuration and the one in force */
		CHECK_EQ_INT(reload_configs_kept(), 2);
		if (i == 0)
			before = heap_in_use();
	}
	after = heap_in_use();
	/* One configuration of 1,000 tenants is about 170 KB; keeping every
	 * replaced one grew the heap by that much per reload. */
	CHECK(after < before + (1u << 20));
}

static void test_held_config_stays_until_released(void)
{
	const struct config *held, *now;
	const struct config_tenant *t;
	char msg[256];

	held = config_hold();
	CHECK_EQ_INT(held->ntenants, TENANTS);
	for (int i = 0; i < 10; i++)
		CHECK_EQ_INT(reload_now(msg, sizeof(msg)), 0);
	/* first, held, in force */
	CHECK_EQ_INT(reload_configs_kept(), 3);
	t = config_tenant_find(held, "t999", 4);
	CHECK(t != NULL);
	CHECK_STR(t->token, "token-of-tenant-999");
	now = config_hold();
	CHECK(now != held);
	config_release(now);
	config_release(held);
	CHECK_EQ_INT(reload_configs_kept(), 2);
}

static void test_reload_takes_the_new_file(void)
{
	const struct config *cfg;
	char msg[256];

	CHECK_EQ_INT(write_tenants(3), 0);
	CHECK_EQ_INT(reload_now(msg, sizeof(msg)), 0);
	CHECK_STR(msg, "reloaded: 3 tenants");
	cfg = config_hold();
	CHECK_EQ_INT(cfg->ntenants, 3);
	CHECK(config_tenant_find(cfg, "t3", 2) == NULL);
	config_release(cfg);
	CHECK_EQ_INT(reload_configs_kept(), 2);
	/* A file that does not load changes nothing and keeps nothing more. */
	CHECK_EQ_INT(write_tenants(0), 0);
	{
		FILE *f = fopen(conf, "a");
		CHECK(f != NULL);
		fputs("[nonsense]\n", f);
		fclose(f);
	}
	CHECK_EQ_INT(reload_now(msg, sizeof(msg)), -1);
	CHECK_EQ_INT(reload_configs_kept(), 2);
	cfg = config_hold();
	CHECK_EQ_INT(cfg->ntenants, 3);
	config_release(cfg);
	CHECK_EQ_INT(write_tenants(TENANTS), 0);
}

static atomic_int readers_stop;
static atomic_long reads;

/* Holds, reads every tenant of, and releases the configuration in force,
 * over and over. */
static void *reader_main(void *arg)
{
	(void)arg;
	while (!atomic_load(&readers_stop)) {
		const struct config *cfg = config_hold();
		size_t n = 0;

		for (const struct config_tenant *t = cfg->tenants; t != NULL; t = t->next)
			n += strlen(t->id) + strlen(t->token);
		config_release(cfg);
		if (n > 0)
			atomic_fetch_add(&reads, 1);
	}
	return NULL;
}

static void test_reload_while_readers_hold(void)
{
	pthread_t th[2];
	char msg[256];
	int rc = 0;

	for (int i = 0; i < 2; i++)
		CHECK(pthread_create(&th[i], NULL, reader_main, NULL) == 0);
	for (int i = 0; i < 50; i++)
		rc |= reload_now(msg, sizeof(msg));
	/* Let the readers run past the last reload before they stop. */
	while (atomic_load(&reads) < 100)
		usleep(1000);
	atomic_store(&readers_stop, 1);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	CHECK_EQ_INT(rc, 0);
	CHECK_EQ_INT(reload_configs_kept(), 2);
}

int main(void)
{
	struct config *cfg;
	char err[512];

	snprintf(dir, sizeof(dir), "/tmp/test_reload.XXXXXX");
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(conf, sizeof(conf), "%s/relay.conf", dir);
	cfg = malloc(sizeof(*cfg));
	if (cfg == NULL || write_tenants(TENANTS) < 0 ||
	    config_load(cfg, conf, err, sizeof(err)) < 0 ||
	    tenant_prepare(cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "cannot set up %s: %s\n", conf, err);
		return 1;
	}
	reload_init(cfg);

	RUN(test_replaced_configs_are_freed);
	RUN(test_held_config_stays_until_released);
	RUN(test_reload_takes_the_new_file);
	RUN(test_reload_while_readers_hold);

	/* Everything is freed: make check's leak checker sees nothing left. */
	reload_free_all();
	tmpdir_remove(dir);
	return unit_done();
}
