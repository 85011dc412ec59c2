/*
 * ha.c - HA-pair deduplication: the settings, a request's cluster and
 * replica, and the election the writer keeps (see ha.h).
 */
#include "ha.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "log.h"
#include "wire.h"

void ha_settings(const struct config *cfg, const struct config_tenant *tc,
		 struct ha_settings *out)
{
	const char *cluster = cfg->ha_cluster_label;

	if (tc != NULL && tc->has_ha_cluster_label)
		cluster = tc->ha_cluster_label;
	out->cluster_label = cluster != NULL && *cluster != '\0' ? cluster : NULL;
	out->replica_label = tc != NULL && tc->ha_replica_label != NULL ?
			     tc->ha_replica_label : cfg->ha_replica_label;
	out->failover_ms = tc != NULL && tc->ha_failover_timeout_ms > 0 ?
			   tc->ha_failover_timeout_ms : cfg->ha_failover_timeout_ms;
	if (out->replica_label == NULL)
		out->cluster_label = NULL;
}

/* Reads the length-delimited field at *p into [*data, *data + *n) with its
 * key; skips other wire types. Returns 0, or -1 when malformed. */
static int field(const uint8_t **p, const uint8_t *end, uint64_t *key,
		 const uint8_t **data, uint64_t *n)
{
	if (wire_varint(p, end, key) < 0)
		return -1;
	*data = NULL;
	switch (*key & 7) {
	case 0:
		return wire_varint(p, end, n);
	case 1:
		if (end - *p < 8)
			return -1;
		*p += 8;
		return 0;
	case 5:
		if (end - *p < 4)
			return -1;
		*p += 4;
		return 0;
	case 2:
		if (wire_varint(p, end, n) < 0 || *n > (uint64_t)(end - *p))
			return -1;
		*data = *p;
		*p += *n;
		return 0;
	}
	return -1;
}

/* The value of label name in a series: its bytes, or NULL when absent or
 * the series is malformed (the decoder refuses it later). */
static const uint8_t *label_value(const uint8_t *s, size_t len,
				  const char *name, size_t *vlen)
{
	const uint8_t *p = s, *end = s + len, *lab, *q, *lend, *d;
	size_t nlen = strlen(name);
	uint64_t key, n, m;

	while (p < end) {
		if (field(&p, end, &key, &lab, &n) < 0)
			return NULL;
		if (key != 0x0a)
			continue;
		const uint8_t *nm = NULL, *val = NULL;
		size_t nl = 0, vl = 0;
		for (q = lab, lend = lab + n; q < lend;) {
			if (field(&q, lend, &key, &d, &m) < 0)
				return NULL;
			if (key == 0x0a) {
				nm = d;
				nl = (size_t)m;
			} else if (key == 0x12) {
				val = d;
				vl = (size_t)m;
			}
		}
		if (nm != NULL && nl == nlen && memcmp(nm, name, nlen) == 0) {
			*vlen = vl;
			return val;
		}
	}
	return NULL;
}

void ha_req_series(struct ha_req *r, const struct ha_settings *s,
		   const uint8_t *series, size_t len)
{
	const uint8_t *c, *rp;
	size_t cl = 0, rl = 0;

	if (r->kind == HA_MIXED || s->cluster_label == NULL)
		return;
	c = label_value(series, len, s->cluster_label, &cl);
	rp = label_value(series, len, s->replica_label, &rl);
	if (c == NULL || rp == NULL || cl == 0 || rl == 0 ||
	    cl > HA_VALUE_MAX || rl > HA_VALUE_MAX) {
		r->kind = HA_MIXED;
		return;
	}
	if (r->kind == HA_NO_SERIES) {
		r->kind = HA_PAIR;
		memcpy(r->cluster, c, cl);
		r->clen = cl;
		memcpy(r->replica, rp, rl);
		r->rlen = rl;
		return;
	}
	if (cl != r->clen || rl != r->rlen || memcmp(c, r->cluster, cl) != 0 ||
	    memcmp(rp, r->replica, rl) != 0)
		r->kind = HA_MIXED;
}

/* ---- The election ---- */

/* A leader as committed (done) or as this round left it (cur). */
struct ha_state {
	char replica[HA_VALUE_MAX];
	size_t rlen;                /* 0: no leader */
	uint64_t seen_mono;         /* its last stored request, monotonic */
	uint64_t elected_ms;        /* wall clock, stored */
	uint64_t written_ms;        /* last_seen_ms as last written */
};

struct ha_entry {
	char tenant[TENANT_ID_MAX];
	size_t tlen;
	char cluster[HA_VALUE_MAX];
	size_t clen;
	struct ha_state done, cur;
	int dirty;                  /* cur changed in this round */
	uint64_t changes;           /* changes of leader since start */
};

struct ha {
	struct ha_entry *e;         /* owned */
	size_t n, cap;
};

/* The table ha_each_elected shows, and the lock over every change of the
 * entries' committed state and of the array itself. */
static pthread_mutex_t pub_lock = PTHREAD_MUTEX_INITIALIZER;
static struct ha *published;

static struct ha_entry *find(struct ha *h, const char *t, size_t tlen,
			     const char *c, size_t clen)
{
	for (size_t i = 0; i < h->n; i++) {
		struct ha_entry *e = &h->e[i];
		if (e->tlen == tlen && e->clen == clen &&
		    memcmp(e->tenant, t, tlen) == 0 &&
		    memcmp(e->cluster, c, clen) == 0)
			return e;
	}
	return NULL;
}

/* A new entry without a leader; NULL when out of memory. */
static struct ha_entry *add(struct ha *h, const char *t, size_t tlen,
			    const char *c, size_t clen)
{
	struct ha_entry *e;

	if (tlen > TENANT_ID_MAX || clen == 0 || clen > HA_VALUE_MAX)
		return NULL;
	if (h->n == h->cap) {
		size_t cap = h->cap ? h->cap * 2 : 8;
		pthread_mutex_lock(&pub_lock);
		e = realloc(h->e, cap * sizeof(*e));
		if (e != NULL) {
			h->e = e;
			h->cap = cap;
		}
		pthread_mutex_unlock(&pub_lock);
		if (e == NULL)
			return NULL;
	}
	e = &h->e[h->n];
	memset(e, 0, sizeof(*e));
	memcpy(e->tenant, t, tlen);
	e->tlen = tlen;
	memcpy(e->cluster, c, clen);
	e->clen = clen;
	pthread_mutex_lock(&pub_lock);
	h->n++;
	pthread_mutex_unlock(&pub_lock);
	return e;
}

struct load_ctx {
	struct ha *h;
	uint64_t now_mono;
};

static int load_one(void *arg, const struct store_ha_rec *rec)
{
	struct load_ctx *lc = arg;
	struct ha_entry *e = add(lc->h, rec->tenant, rec->tlen, rec->cluster,
				 rec->clen);

	if (e == NULL)
		return ERR_NOMEM;
	memcpy(e->done.replica, rec->replica, rec->rlen);
	e->done.rlen = rec->rlen;
	e->done.seen_mono = lc->now_mono;
	e->done.elected_ms = rec->elected_ms;
	e->done.written_ms = rec->last_seen_ms;
	e->cur = e->done;
	return 0;
}

struct ha *ha_open(struct store_txn *txn, uint64_t now_mono, int *rc)
{
	struct ha *h = calloc(1, sizeof(*h));
	struct load_ctx lc = {h, now_mono};

	if (h == NULL) {
		*rc = ERR_NOMEM;
		return NULL;
	}
	if ((*rc = store_ha_each(txn, load_one, &lc)) != 0) {
		ha_free(h);
		return NULL;
	}
	pthread_mutex_lock(&pub_lock);
	published = h;
	pthread_mutex_unlock(&pub_lock);
	return h;
}

void ha_free(struct ha *h)
{
	if (h == NULL)
		return;
	pthread_mutex_lock(&pub_lock);
	if (published == h)
		published = NULL;
	pthread_mutex_unlock(&pub_lock);
	free(h->e);
	free(h);
}

/* Whether the leader of e (as this round sees it) is k's replica. */
static int is_leader(const struct ha_entry *e, const struct ha_key *k)
{
	return e->cur.rlen == k->rlen &&
	       memcmp(e->cur.replica, k->replica, k->rlen) == 0;
}

int ha_judge(struct ha *h, const struct ha_key *k, uint64_t now_mono,
	     uint64_t failover_ms)
{
	struct ha_entry *e = find(h, k->tenant, k->tlen, k->cluster, k->clen);

	if (e == NULL || e->cur.rlen == 0 || is_leader(e, k))
		return 0;
	return now_mono - e->cur.seen_mono >= failover_ms ? 0 : 1;
}

int ha_admitted(struct ha *h, struct store_txn *txn, const struct ha_key *k,
		uint64_t now_mono, uint64_t now_wall, uint64_t failover_ms)
{
	struct ha_entry *e = find(h, k->tenant, k->tlen, k->cluster, k->clen);
	struct store_ha_rec rec;
	int elect;

	(void)failover_ms;
	if (e == NULL && (e = add(h, k->tenant, k->tlen, k->cluster,
				  k->clen)) == NULL)
		return ERR_NOMEM;
	elect = !is_leader(e, k);
	if (elect) {
		memcpy(e->cur.replica, k->replica, k->rlen);
		e->cur.rlen = k->rlen;
		e->cur.elected_ms = now_wall;
	}
	e->cur.seen_mono = now_mono;
	e->dirty = 1;
	if (!elect && now_wall - e->cur.written_ms < 1000 &&
	    now_wall >= e->cur.written_ms)
		return 0;
	e->cur.written_ms = now_wall;
	rec.tenant = k->tenant;
	rec.tlen = k->tlen;
	rec.cluster = k->cluster;
	rec.clen = k->clen;
	rec.replica = e->cur.replica;
	rec.rlen = e->cur.rlen;
	rec.elected_ms = e->cur.elected_ms;
	rec.last_seen_ms = now_wall;
	return store_ha_put(txn, &rec);
}

void ha_round_end(struct ha *h, int committed)
{
	size_t i, kept = 0;

	pthread_mutex_lock(&pub_lock);
	for (i = 0; i < h->n; i++) {
		struct ha_entry *e = &h->e[i];
		if (e->dirty && committed) {
			if (e->done.rlen != e->cur.rlen ||
			    memcmp(e->done.replica, e->cur.replica,
				   e->cur.rlen) != 0) {
				e->changes++;
				log_msg(LOG_INFO, "HA leader elected",
					"tenant=\"%.*s\" cluster=\"%.*s\" "
					"replica=\"%.*s\" previous=\"%.*s\"",
					(int)e->tlen, e->tenant, (int)e->clen,
					e->cluster, (int)e->cur.rlen,
					e->cur.replica, (int)e->done.rlen,
					e->done.replica);
			}
			e->done = e->cur;
		} else if (e->dirty) {
			e->cur = e->done;
		}
		e->dirty = 0;
		/* An entry made in a round that did not commit goes. */
		if (e->done.rlen == 0)
			continue;
		if (kept != i)
			h->e[kept] = *e;
		kept++;
	}
	h->n = kept;
	pthread_mutex_unlock(&pub_lock);
}

size_t ha_leader(struct ha *h, const char *tenant, size_t tlen,
		 const char *cluster, size_t clen, char *out, size_t outlen)
{
	struct ha_entry *e = find(h, tenant, tlen, cluster, clen);

	if (e == NULL || e->done.rlen == 0 || e->done.rlen > outlen)
		return 0;
	memcpy(out, e->done.replica, e->done.rlen);
	return e->done.rlen;
}

void ha_each_elected(void (*fn)(void *arg, const struct ha_key *k,
				uint64_t changes),
		     void *arg)
{
	struct ha_key k;

	pthread_mutex_lock(&pub_lock);
	for (size_t i = 0; published != NULL && i < published->n; i++) {
		const struct ha_entry *e = &published->e[i];
		if (e->done.rlen == 0)
			continue;
		k.tenant = e->tenant;
		k.tlen = e->tlen;
		k.cluster = e->cluster;
		k.clen = e->clen;
		k.replica = e->done.replica;
		k.rlen = e->done.rlen;
		fn(arg, &k, e->changes);
	}
	pthread_mutex_unlock(&pub_lock);
}
