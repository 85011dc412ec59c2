/*
 * test_ha.c - HA-pair deduplication: the election (first replica wins,
 * the other is deduplicated, fail-over after the timeout and not before,
 * two replicas in one round, an undone round, the election read back from
 * the store as after a restart with the timer started afresh, tenants and
 * clusters apart), the store's ha records, and a request's cluster and
 * replica from its series (pairs, mixed requests, missing labels).
 *
 * Each test works on its own store in a directory under /tmp.
 */
#include "ha.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "err.h"
#include "store.h"
#include "tmpstore.h"
#include "unit.h"

#define MIB (1024ull * 1024)
#define TIMEOUT 5000ull
#define W0 1700000000000ull   /* wall clock */
#define M0 1000000ull         /* monotonic */

static char dir[64], path[96];
static struct store *st;
static int st_open;
static struct ha *ha;

static int setup(void)
{
	struct store_txn *txn;
	int rc;

	if (tmpstore_open(dir, sizeof(dir), path, sizeof(path), "ha", &st,
			  64 * MIB) < 0)
		return -1;
	st_open = 1;
	if (store_txn_begin(st, &txn) != 0)
		return -1;
	if ((ha = ha_open(txn, M0, &rc)) == NULL) {
		store_txn_abort(txn);
		return -1;
	}
	store_txn_abort(txn);
	return 0;
}

static void cleanup(void)
{
	ha_free(ha);
	ha = NULL;
	if (st_open)
		store_close(st);
	st_open = 0;
	tmpdir_remove(dir);
	dir[0] = '\0';
}

static struct ha_key key(const char *tenant, const char *cluster,
			 const char *replica)
{
	struct ha_key k = {tenant, strlen(tenant), cluster, strlen(cluster),
			   replica, strlen(replica)};
	return k;
}

/* One round of the writer for one request of (tenant, cluster, replica)
 * at monotonic time t: judged, and when stored, admitted and committed
 * (or aborted). Returns 0 stored, 1 deduplicated, -1 on error. */
static int request(const char *tenant, const char *cluster,
		   const char *replica, uint64_t t, int commit)
{
	struct ha_key k = key(tenant, cluster, replica);
	struct store_txn *txn;
	int rc;

	if (store_txn_begin(st, &txn) != 0)
		return -1;
	if ((rc = ha_judge(ha, &k, t, TIMEOUT)) == 0 &&
	    ha_admitted(ha, txn, &k, t, W0 + t, TIMEOUT) != 0) {
		store_txn_abort(txn);
		ha_round_end(ha, 0);
		return -1;
	}
	if (!commit) {
		store_txn_abort(txn);
		ha_round_end(ha, 0);
		return rc;
	}
	if (store_txn_commit(txn) != 0) {
		ha_round_end(ha, 0);
		return -1;
	}
	ha_round_end(ha, 1);
	return rc;
}

/* The leader of (tenant, cluster) into buf ("" when none). */
static const char *leader(const char *tenant, const char *cluster)
{
	static char buf[HA_VALUE_MAX + 1];
	size_t n = ha_leader(ha, tenant, strlen(tenant), cluster,
			     strlen(cluster), buf, HA_VALUE_MAX);

	buf[n] = '\0';
	return buf;
}

/* A new table read from the store, as after a restart at monotonic t. */
static int reopen(uint64_t t)
{
	struct store_txn *txn;
	int rc;

	ha_free(ha);
	if (store_txn_begin(st, &txn) != 0)
		return -1;
	ha = ha_open(txn, t, &rc);
	store_txn_abort(txn);
	return ha != NULL ? 0 : -1;
}

static void test_first_replica_elected(void)
{
	CHECK(setup() == 0);
	CHECK_STR(leader("t1", "eu-1"), "");
	CHECK_EQ_INT(request("t1", "eu-1", "a", M0, 1), 0);
	CHECK_STR(leader("t1", "eu-1"), "a");
	CHECK_EQ_INT(request("t1", "eu-1", "b", M0 + 10, 1), 1);
	CHECK_EQ_INT(request("t1", "eu-1", "a", M0 + 20, 1), 0);
	CHECK_EQ_INT(request("t1", "eu-1", "b", M0 + 30, 1), 1);
	CHECK_STR(leader("t1", "eu-1"), "a");
}

static void test_failover_after_timeout_only(void)
{
	CHECK(setup() == 0);
	CHECK_EQ_INT(request("t1", "eu-1", "a", M0, 1), 0);
	/* b keeps trying; a's last stored request was at M0. */
	CHECK_EQ_INT(request("t1", "eu-1", "b", M0 + TIMEOUT - 1, 1), 1);
	CHECK_STR(leader("t1", "eu-1"), "a");
	CHECK_EQ_INT(request("t1", "eu-1", "b", M0 + TIMEOUT, 1), 0);
	CHECK_STR(leader("t1", "eu-1"), "b");
	/* a comes back: now it is the one deduplicated. */
	CHECK_EQ_INT(request("t1", "eu-1", "a", M0 + TIMEOUT + 1, 1), 1);
	CHECK_EQ_INT(request("t1", "eu-1", "b", M0 + TIMEOUT + 2, 1), 0);
}

/* A deduplicated request does not keep its replica alive, a stored one
 * of the leader does. */
static void test_leader_kept_alive(void)
{
	CHECK(setup() == 0);
	CHECK_EQ_INT(request("t1", "c", "a", M0, 1), 0);
	CHECK_EQ_INT(request("t1", "c", "a", M0 + TIMEOUT - 1, 1), 0);
	CHECK_EQ_INT(request("t1", "c", "b", M0 + TIMEOUT + 10, 1), 1);
	CHECK_EQ_INT(request("t1", "c", "b", M0 + 2 * TIMEOUT - 2, 1), 1);
	CHECK_EQ_INT(request("t1", "c", "b", M0 + 2 * TIMEOUT - 1, 1), 0);
	CHECK_STR(leader("t1", "c"), "b");
}

/* Two replicas in one round: the first wins, the second is judged
 * against the round's own election. */
static void test_race_in_one_round(void)
{
	struct ha_key a = key("t1", "c", "a"), b = key("t1", "c", "b");
	struct store_txn *txn;

	CHECK(setup() == 0);
	CHECK(store_txn_begin(st, &txn) == 0);
	CHECK_EQ_INT(ha_judge(ha, &a, M0, TIMEOUT), 0);
	CHECK_EQ_INT(ha_judge(ha, &b, M0, TIMEOUT), 0);
	CHECK_EQ_INT(ha_admitted(ha, txn, &b, M0, W0, TIMEOUT), 0);
	CHECK_EQ_INT(ha_judge(ha, &a, M0, TIMEOUT), 1);
	CHECK(store_txn_commit(txn) == 0);
	ha_round_end(ha, 1);
	CHECK_STR(leader("t1", "c"), "b");
}

static void test_aborted_round_undone(void)
{
	CHECK(setup() == 0);
	CHECK_EQ_INT(request("t1", "c", "a", M0, 0), 0);
	CHECK_STR(leader("t1", "c"), "");
	CHECK_EQ_INT(request("t1", "c", "b", M0 + 1, 1), 0);
	CHECK_STR(leader("t1", "c"), "b");
	/* A take-over in a round that fails leaves b elected. */
	CHECK_EQ_INT(request("t1", "c", "a", M0 + TIMEOUT + 1, 0), 0);
	CHECK_STR(leader("t1", "c"), "b");
	CHECK(reopen(M0 + TIMEOUT + 2) == 0);
	CHECK_STR(leader("t1", "c"), "b");
}

/* After a restart the stored leader stays, and has a whole timeout from
 * the start to come back, however long the relay was down. */
static void test_restart_keeps_leader(void)
{
	CHECK(setup() == 0);
	CHECK_EQ_INT(request("t1", "eu-1", "a", M0, 1), 0);
	CHECK_EQ_INT(request("t2", "eu-1", "b", M0, 1), 0);
	CHECK(reopen(M0 + 100 * TIMEOUT) == 0);
	CHECK_STR(leader("t1", "eu-1"), "a");
	CHECK_STR(leader("t2", "eu-1"), "b");
	CHECK_EQ_INT(request("t1", "eu-1", "b", M0 + 100 * TIMEOUT + 1, 1), 1);
	CHECK_EQ_INT(request("t1", "eu-1", "a", M0 + 100 * TIMEOUT + 2, 1), 0);
	CHECK_EQ_INT(request("t1", "eu-1", "b",
			     M0 + 101 * TIMEOUT + 2, 1), 0);
	CHECK_STR(leader("t1", "eu-1"), "b");
}

static void test_tenants_and_clusters_apart(void)
{
	CHECK(setup() == 0);
	CHECK_EQ_INT(request("t1", "eu-1", "a", M0, 1), 0);
	CHECK_EQ_INT(request("t1", "eu-2", "b", M0, 1), 0);
	CHECK_EQ_INT(request("t2", "eu-1", "b", M0, 1), 0);
	CHECK_EQ_INT(request("t1", "eu-1", "b", M0 + 1, 1), 1);
	CHECK_EQ_INT(request("t1", "eu-2", "a", M0 + 1, 1), 1);
	CHECK_EQ_INT(request("t2", "eu-1", "a", M0 + 1, 1), 1);
	CHECK_STR(leader("t1", "eu-1"), "a");
	CHECK_STR(leader("t1", "eu-2"), "b");
	CHECK_STR(leader("t2", "eu-1"), "b");
}

static int count_rec(void *arg, const struct store_ha_rec *rec)
{
	(*(int *)arg)++;
	return rec->rlen == 1 && rec->elected_ms >= W0 ? 0 : ERR_CORRUPT;
}

static void count_elected(void *arg, const struct ha_key *k, uint64_t changes)
{
	(void)k;
	*(uint64_t *)arg += changes;
}

/* The store holds one record per (tenant, cluster); every change of
 * leader is counted. */
static void test_records_and_changes(void)
{
	struct store_txn *txn;
	uint64_t changes = 0;
	int n = 0, rc;

	CHECK(setup() == 0);
	CHECK_EQ_INT(request("t1", "c", "a", M0, 1), 0);
	CHECK_EQ_INT(request("t1", "c", "a", M0 + 2000, 1), 0);
	CHECK_EQ_INT(request("t1", "c", "b", M0 + 2000 + TIMEOUT, 1), 0);
	CHECK_EQ_INT(request("t1", "d", "a", M0, 1), 0);
	CHECK(store_txn_begin(st, &txn) == 0);
	rc = store_ha_each(txn, count_rec, &n);
	store_txn_abort(txn);
	CHECK_EQ_INT(rc, 0);
	CHECK_EQ_INT(n, 2);
	ha_each_elected(count_elected, &changes);
	CHECK_EQ_INT(changes, 3);  /* a, then b for c; a for d */
}

/* Encodes a series with the labels (name, value pairs) and one sample. */
static size_t series(uint8_t *out, const char *const *l, size_t n)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i += 2) {
		size_t nl = strlen(l[i]), vl = strlen(l[i + 1]);
		out[o++] = 0x0a;
		out[o++] = (uint8_t)(4 + nl + vl);
		out[o++] = 0x0a;
		out[o++] = (uint8_t)nl;
		memcpy(out + o, l[i], nl);
		o += nl;
		out[o++] = 0x12;
		out[o++] = (uint8_t)vl;
		memcpy(out + o, l[i + 1], vl);
		o += vl;
	}
	/* samples: {value: 1.0 (fixed64), timestamp: 1} */
	static const uint8_t sample[] = {0x12, 0x0b, 0x09, 0, 0, 0, 0, 0, 0,
					 0xf0, 0x3f, 0x10, 0x01};
	memcpy(out + o, sample, sizeof(sample));
	return o + sizeof(sample);
}

static void test_request_labels(void)
{
	static const char *const ab[] = {"__name__", "up", "__replica__", "a",
					 "cluster", "eu-1"};
	static const char *const ab2[] = {"__name__", "x", "__replica__", "a",
					  "cluster", "eu-1"};
	static const char *const bb[] = {"__name__", "up", "__replica__", "b",
					 "cluster", "eu-1"};
	static const char *const nor[] = {"__name__", "up", "cluster", "eu-1"};
	struct ha_settings s = {"cluster", "__replica__", TIMEOUT};
	struct ha_settings off = {NULL, "__replica__", TIMEOUT};
	struct ha_req r;
	uint8_t buf[256];
	size_t n;

	memset(&r, 0, sizeof(r));
	n = series(buf, ab, 6);
	ha_req_series(&r, &s, buf, n);
	n = series(buf, ab2, 6);
	ha_req_series(&r, &s, buf, n);
	CHECK_EQ_INT(r.kind, HA_PAIR);
	CHECK(r.clen == 4 && memcmp(r.cluster, "eu-1", 4) == 0);
	CHECK(r.rlen == 1 && r.replica[0] == 'a');
	/* Another replica in the same request: mixed. */
	n = series(buf, bb, 6);
	ha_req_series(&r, &s, buf, n);
	CHECK_EQ_INT(r.kind, HA_MIXED);
	/* A cluster label without a replica label: stored as it is. */
	memset(&r, 0, sizeof(r));
	n = series(buf, nor, 4);
	ha_req_series(&r, &s, buf, n);
	CHECK_EQ_INT(r.kind, HA_MIXED);
	/* Off: nothing is looked at. */
	memset(&r, 0, sizeof(r));
	n = series(buf, ab, 6);
	ha_req_series(&r, &off, buf, n);
	CHECK_EQ_INT(r.kind, HA_NO_SERIES);
}

/* The settings in force: [tenancy]'s, a tenant's own keys, a tenant that
 * turns HA off. */
static void test_settings(void)
{
	struct config cfg;
	struct config_tenant t;
	struct ha_settings s;

	config_defaults(&cfg);
	ha_settings(&cfg, NULL, &s);
	CHECK(s.cluster_label == NULL);
	free(cfg.ha_cluster_label);
	cfg.ha_cluster_label = strdup("cluster");
	cfg.ha_failover_timeout_ms = 7000;
	memset(&t, 0, sizeof(t));
	ha_settings(&cfg, &t, &s);
	CHECK_STR(s.cluster_label, "cluster");
	CHECK_STR(s.replica_label, "__replica__");
	CHECK_EQ_INT(s.failover_ms, 7000);
	t.ha_replica_label = "r";
	t.ha_failover_timeout_ms = 2000;
	ha_settings(&cfg, &t, &s);
	CHECK_STR(s.replica_label, "r");
	CHECK_EQ_INT(s.failover_ms, 2000);
	t.has_ha_cluster_label = 1;
	ha_settings(&cfg, &t, &s);
	CHECK(s.cluster_label == NULL);
	t.ha_replica_label = NULL;
	config_free(&cfg);
}

int main(void)
{
#define RUN_HA(fn)                                                            \
	do {                                                                  \
		RUN(fn);                                                      \
		cleanup();                                                    \
	} while (0)
	RUN_HA(test_first_replica_elected);
	RUN_HA(test_failover_after_timeout_only);
	RUN_HA(test_leader_kept_alive);
	RUN_HA(test_race_in_one_round);
	RUN_HA(test_aborted_round_undone);
	RUN_HA(test_restart_keeps_leader);
	RUN_HA(test_tenants_and_clusters_apart);
	RUN_HA(test_records_and_changes);
	RUN_HA(test_request_labels);
	RUN_HA(test_settings);
	return unit_done();
}
