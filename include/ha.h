/*
 * ha.h - deduplication of Prometheus HA pairs: two replicas scrape the same
 * targets and differ only in a replica label (external labels, e.g.
 * cluster="eu-1" with __replica__="a" and "b"). For each (tenant, cluster)
 * one replica is elected; only its requests are stored, with the replica
 * label removed, so both replicas feed the same series and are billed once.
 *
 * Two halves:
 *
 *   request side  (ha_settings, ha_req_series; admission.c's per-series
 *                 policy) finds the settings in force for the tenant and,
 *                 over the series of a request as sent, its cluster and
 *                 replica. The request is an HA request when every series
 *                 carries both labels with the same two values (each at
 *                 most STORE_HA_VALUE_MAX bytes). Any other request (no
 *                 series, a series lacking either label, series of
 *                 different clusters or replicas) is stored as it is,
 *                 replica label included. ingest removes the replica label
 *                 of an HA request during its one pass (wire.h drop_label).
 *
 *   election      (struct ha, the writer thread's) decides at commit time,
 *                 in the transaction that stores the data, against the
 *                 stored election, so two replicas racing cannot both win:
 *                 ha_judge says whether a request of (tenant, cluster,
 *                 replica) is stored; ha_admitted records one that was
 *                 (electing its replica if there was no leader or the
 *                 leader's time ran out) and writes the election to the
 *                 ha database (store.h) in the same transaction;
 *                 ha_round_end keeps or undoes the round's changes as the
 *                 commit went.
 *
 * Fail-over: the elected replica keeps its place while its requests keep
 * coming; once none of them was stored for failover_ms (the request's
 * [tenancy]/[tenant] ha_failover_timeout), the next request of another
 * replica of the cluster takes over. The timer is monotonic and starts
 * afresh when the relay starts: after a restart or a kill -9 the stored
 * leader has a whole failover_ms to come back (senders retry), so a
 * restart never flips the leader by itself.
 *
 * Every change of leader is logged and counted; ha_each_elected shows the
 * elections (relay_ha_elected_replica, relay_ha_leader_changes_total).
 * The election table is kept in memory (a few hundred bytes per tenant
 * and cluster, looked up linearly: meant for up to some thousands).
 */
#ifndef RELAY_HA_H
#define RELAY_HA_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "store.h"

struct store_txn;

#define HA_VALUE_MAX STORE_HA_VALUE_MAX

/* The HA settings for one tenant. cluster_label NULL: HA off. */
struct ha_settings {
	const char *cluster_label;  /* ref: the config's */
	const char *replica_label;  /* ref */
	uint64_t failover_ms;
};

/* The settings in force for tenant conf tc (may be NULL): its [tenant]
 * keys where set, else [tenancy]'s. */
void ha_settings(const struct config *cfg, const struct config_tenant *tc,
		 struct ha_settings *out);

/* What a request's series said so far. */
enum ha_kind { HA_NO_SERIES = 0, HA_PAIR, HA_MIXED };

struct ha_req {
	enum ha_kind kind;
	char cluster[HA_VALUE_MAX];
	size_t clen;
	char replica[HA_VALUE_MAX];
	size_t rlen;
};

/* Looks at one series (the bytes of a prometheus.TimeSeries as sent) and
 * updates r. The request is an HA one when r->kind is HA_PAIR after its
 * last series. */
void ha_req_series(struct ha_req *r, const struct ha_settings *s,
		   const uint8_t *series, size_t len);

/* ---- The election (writer thread) ---- */

struct ha;

/* A request of one replica, as the writer sees it. */
struct ha_key {
	const char *tenant;
	size_t tlen;
	const char *cluster;
	size_t clen;
	const char *replica;
	size_t rlen;
};

/* Reads the elections stored in txn; now_mono starts every leader's
 * fail-over timer. Returns the table (ha_free frees it) or NULL with an
 * ERR_* code in *rc. */
struct ha *ha_open(struct store_txn *txn, uint64_t now_mono, int *rc);
void ha_free(struct ha *h);

/* 0: a request of k is stored (its replica is the leader, there is none,
 * or the leader's time is up); 1: it is deduplicated (not stored). */
int ha_judge(struct ha *h, const struct ha_key *k, uint64_t now_mono,
	     uint64_t failover_ms);

/* A request of k is stored in txn (ha_judge said 0): elects its replica
 * if needed, and refreshes when the leader was last seen. Returns 0 or an
 * ERR_* code (the round then fails). */
int ha_admitted(struct ha *h, struct store_txn *txn, const struct ha_key *k,
		uint64_t now_mono, uint64_t now_wall, uint64_t failover_ms);

/* The round's transaction committed (1) or not (0): keeps or undoes what
 * ha_admitted did in it; logs and counts the changes of leader kept. */
void ha_round_end(struct ha *h, int committed);

/* The replica h holds elected for (tenant, cluster) into out (bytes),
 * or 0 when none. For tests. */
size_t ha_leader(struct ha *h, const char *tenant, size_t tlen,
		 const char *cluster, size_t clen, char *out, size_t outlen);

/* Calls fn for each committed election of the table opened last (the
 * writer's; none once it is freed), with its lock held, from any thread
 * (fn must not call ha_*): changes counts the changes of leader since
 * start. */
void ha_each_elected(void (*fn)(void *arg, const struct ha_key *k,
				uint64_t changes),
		     void *arg);

#endif
