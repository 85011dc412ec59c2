/*
 * main.c - the relay's entry point: arguments, configuration, signals,
 * start and stop.
 *
 * Threads and what they own (the relay starts no others):
 *   main       parses arguments and the file, starts the others, waits for
 *              signals, runs reloads (SIGHUP, reload.h), stops the others
 *              in order.
 *   http (N)   libmicrohttpd's internal polling threads, [server] threads
 *              of them (one when threads = 1, else a pool): receive,
 *              decode and validate requests, then suspend each connection
 *              until the writer has made its batch durable; also answer
 *              /metrics, the admin and usage API.
 *   guard      conn_guard.c's watchdog: closes client connections past
 *              header_timeout or under body_min_rate (shutdown(2)).
 *   writer     the only LMDB writer: group commit of batches, deletion of
 *              delivered entries, set-aside, usage rounds; syncs every
 *              commit.
 *   prealloc   started by writer_start (prealloc.h) unless [storage]
 *              preallocate is under 1 MiB: writes zeros ahead of the end of
 *              data.mdb when the writer wakes it after a commit; each piece
 *              is written under a lock the writer holds around its commits.
 *   usage      usage_export.c's, when [usage] export is on: every
 *              export_interval sums the usage records (short read
 *              transactions) and hands the writer a batch of series, as
 *              an HTTP thread does, then waits for its commit.
 *   forward(N) [upstream] concurrency threads: send entries with libcurl
 *              straight from the map, each in a read transaction
 *              (MDB_NOTLS) held for one request. libcurl may add a short
 *              lived resolver thread while it looks up a host name.
 * Hand-over: http -> writer through writer_submit (a list and a condition
 * variable); writer -> forwarders through the queue (queue.h); forwarders
 * -> writer through writer_ack/writer_set_aside; writer -> prealloc through
 * prealloc_unlock (a condition variable). The series tables of tenants
 * with max_series (series_limit.h) are read from the store by main before
 * the others start, then shared by the http threads (a lock per tenant);
 * the series they add go to the writer with their batch. The process
 * never forks.
 *
 * Signals: SIGTERM, SIGINT and SIGHUP are blocked in every thread and
 * taken by main with sigwait.
 *
 * Stop order: /-/ready and new writes answer 503 at once (http keeps
 * serving); the forwarders stop, abandoning requests still in flight at
 * [server] shutdown_timeout (their entries stay buffered); http stops; the
 * writer finishes what it was given (it then stops the prealloc thread);
 * LMDB closes.
 */
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "config.h"
#include "curl_mem.h"
#include "forward.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "queue.h"
#include "reload.h"
#include "series_limit.h"
#include "salvage.h"
#include "setaside.h"
#include "store.h"
#include "store_check.h"
#include "tenant.h"
#include "usage.h"
#include "usage_export.h"
#include "version.h"
#include "writer.h"


static void usage(FILE *out)
{
	fprintf(out,
		"usage: relay [-n] -c FILE\n"
		"       relay usage -c FILE [--tenant T] [--from TIME] [--to TIME] [--csv]\n"
		"       relay setaside list|replay|purge -c FILE [--tenant T] [--seq N]\n"
		"       relay salvage -c FILE --to NEWDIR | --from DIR --to NEWDIR\n"
		"       relay -h | -V\n"
		"\n"
		"Prometheus remote-write relay: stores each batch durably in LMDB\n"
		"before it answers, and forwards the buffer to the upstream.\n"
		"\n"
		"  -c FILE  configuration file (see relay.conf)\n"
		"  -n       check the configuration file and exit\n"
		"  -h       this help\n"
		"  -V       print the version\n");
}

/* queue_each: a tenant with data in the buffer is known (tenant_admit). */
static void know_tenant(const struct queue_tenant *t, void *arg)
{
	(void)arg;
	tenant_admit(t->id, t->idlen, 0);
}

static int run(struct config *cfg)
{
	struct store *st;
	struct queue q;
	struct writer *w;
	struct forwarder *f;
	struct http *h;
	struct usage_export *ux;
	struct http_deps deps;
	struct series_limit *sl;
	uint64_t nseries = 0;
	sigset_t sigs;
	int sig = 0;
	struct queue_totals tot;
	uint64_t deadline, now;
	char err[512];

	clock_start();
	/* SIGTERM, SIGINT and SIGHUP are blocked in every thread (they
	 * inherit this mask) and taken by the main thread's sigwait: a
	 * handler could run on any thread and leave pause() asleep. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	log_set_level((enum log_level)cfg->log_level);
	/* Few allocations per request, from up to a dozen threads: two malloc
	 * arenas are plenty, and keep less freed memory resident than one
	 * arena per thread (measured: 5.4 -> 3.7 MB anonymous after buffering
	 * 5 million samples). */
	mallopt(M_ARENA_MAX, 2);
	/* Fixed thresholds instead of glibc's moving ones: the blocks of a
	 * request and of a commit (a decoded body, LMDB's pages of a large
	 * value, snappy's tables: up to some hundred KiB) stay in the heap,
	 * and the heap gives back no less than 2 MiB at a time; with the
	 * moving ones they were mapped, trimmed and faulted in again over
	 * and over (measured: 7.7 -> 1.6 page faults per 2000-series
	 * request, 0.9 -> 0.4 per 500-series one). */
	mallopt(M_MMAP_THRESHOLD, 1 << 20);
	mallopt(M_TRIM_THRESHOLD, 2 << 20);
	if (curl_mem_init(FORWARD_SEND_BUF) != 0)
		fatal("cannot initialise libcurl", NULL);
	metric_add(&metrics.start_time_s, (uint64_t)time(NULL));
	queue_init(&q);
	if ((st = store_open(cfg->path, cfg->max_size, err, sizeof(err))) == NULL)
		fatal("cannot open storage", "path=%s reason=\"%s\"", cfg->path, err);
	if (store_load_queue(st, &q) < 0)
		fatal("cannot read storage", "path=%s", cfg->path);
	/* Tenants the buffer holds stay known ([tenancy] max_tenants). */
	queue_each(&q, know_tenant, NULL);
	queue_totals(&q, &tot);
	log_msg(LOG_INFO, "storage open", "path=%s entries=%llu samples=%llu bytes=%llu",
		cfg->path, (unsigned long long)tot.entries,
		(unsigned long long)tot.samples, (unsigned long long)tot.bytes);

	/* The series counts of tenants with max_series, as stored. */
	if ((sl = series_limit_new()) == NULL ||
	    series_limit_load(sl, st, cfg, &nseries) != 0)
		fatal("cannot read the stored series (max_series)", "path=%s",
		      cfg->path);
	if (nseries > 0)
		log_msg(LOG_INFO, "series of tenants with max_series loaded",
			"series=%llu", (unsigned long long)nseries);

	if ((w = writer_start(cfg, st, &q)) == NULL)
		fatal("cannot start writer thread", NULL);
	if ((f = forwarder_start(cfg, st, &q, w)) == NULL)
		fatal("cannot start forwarder threads", NULL);
	ux = usage_export_start(cfg, st, w);
	deps.cfg = cfg;
	deps.st = st;
	deps.q = &q;
	deps.w = w;
	deps.sl = sl;

	if ((h = http_start(&deps, err, sizeof(err))) == NULL)
		fatal("cannot start HTTP server", "reason=\"%s\"", err);
	/* What start-up freed (reading the buffer, the libraries' set-up)
	 * goes back to the kernel once: 60-70 KiB of holes in the heap that
	 * would stay resident otherwise. */
	malloc_trim(0);
	log_msg(LOG_INFO, "relay started", "version=%s listen=%s upstream=%s",
		RELAY_VERSION, cfg->listen,
		log_redact_url(cfg->url, err, sizeof(err)));

	for (;;) {
		if (sigwait(&sigs, &sig) != 0)
			continue;
		if (sig != SIGHUP)
			break;
		reload_now(err, sizeof(err));
	}

	/* The stop takes shutdown_timeout at most: /-/ready and new writes
	 * get 503 at once while the HTTP server still answers; upstream
	 * requests in flight at the deadline are abandoned (their entries
	 * stay buffered); then HTTP stops, and the writer commits what it
	 * was given. */
	deadline = clock_mono_ms() + cfg->shutdown_timeout_ms;
	log_msg(LOG_INFO, "stopping", "signal=%d shutdown_timeout_ms=%llu",
		sig, (unsigned long long)cfg->shutdown_timeout_ms);
	http_refuse_new(h);
	queue_stop(&q);
	forwarder_stop(f, deadline);
	usage_export_stop(ux);
	now = clock_mono_ms();
	http_stop(h, now + 100 < deadline ? (unsigned)(deadline - now) : 100);
	writer_stop(w);
	queue_totals(&q, &tot);
	store_close(st);
	series_limit_free(sl);
	queue_destroy(&q);
	curl_mem_cleanup();
	log_msg(LOG_INFO, "stopped", "buffered_entries=%llu buffered_samples=%llu",
		(unsigned long long)tot.entries, (unsigned long long)tot.samples);
	return 0;
}

int main(int argc, char **argv)
{
	const char *file = NULL;
	struct config *cfg;
	char err[1024];
	int opt, check = 0, rc;

	if (argc > 1 && strcmp(argv[1], "usage") == 0)
		return usage_main(argc - 1, argv + 1);
	if (argc > 1 && strcmp(argv[1], "setaside") == 0)
		return setaside_main(argc - 1, argv + 1);
	if (argc > 1 && strcmp(argv[1], "salvage") == 0)
		return salvage_main(argc - 1, argv + 1);
	while ((opt = getopt(argc, argv, "c:nhV")) != -1) {
		switch (opt) {
		case 'c':
			file = optarg;
			break;
		case 'n':
			check = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("relay %s\n", RELAY_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (file == NULL || optind != argc) {
		usage(stderr);
		return 2;
	}
	if ((cfg = malloc(sizeof(*cfg))) == NULL)
		fatal("out of memory", NULL);
	if (config_load(cfg, file, err, sizeof(err)) < 0 ||
	    tenant_prepare(cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		config_free(cfg);
		free(cfg);
		return 1;
	}
	reload_init(cfg);
	if (check) {
		rc = store_check_config(cfg->path, err, sizeof(err)) < 0;
		if (rc)
			fprintf(stderr, "%s\n", err);
		else
			printf("configuration OK\n");
		reload_free_all();
		return rc;
	}
	rc = run(cfg);
	reload_free_all();
	return rc;
}
