/*
 * store_ha.c - the ha database: the elected replica of each (tenant, HA
 * cluster), with when it was elected and last seen (see store.h, ha.h).
 */
#include "store_int.h"

#include <string.h>

#define HA_KEY_MAX (TENANT_ID_MAX + 1 + STORE_HA_VALUE_MAX)

int store_ha_parse(const void *key, size_t klen, const void *val,
		   size_t vlen, struct store_ha_rec *rec)
{
	struct ha_hdr hdr;
	const char *zero;

	if (vlen < sizeof(hdr) || (zero = memchr(key, 0, klen)) == NULL)
		return -1;
	memcpy(&hdr, val, sizeof(hdr));
	if (hdr.version != STORE_HA_VERSION ||
	    hdr.replica_len != vlen - sizeof(hdr) ||
	    hdr.replica_len == 0 || hdr.replica_len > STORE_HA_VALUE_MAX)
		return -1;
	rec->tenant = key;
	rec->tlen = (size_t)(zero - (const char *)key);
	rec->cluster = zero + 1;
	rec->clen = klen - rec->tlen - 1;
	rec->replica = (const char *)val + sizeof(hdr);
	rec->rlen = hdr.replica_len;
	rec->elected_ms = hdr.elected_ms;
	rec->last_seen_ms = hdr.last_seen_ms;
	if (rec->tlen > TENANT_ID_MAX || rec->clen == 0 ||
	    rec->clen > STORE_HA_VALUE_MAX)
		return -1;
	return 0;
}

int store_ha_each(struct store_txn *t,
		  int (*fn)(void *arg, const struct store_ha_rec *rec),
		  void *arg)
{
	struct store_ha_rec rec;
	MDB_cursor *cur;
	MDB_val k, v;
	int rc, ret = 0;

	if ((rc = mdb_cursor_open(t->txn, t->st->ha, &cur)) != 0)
		return err_from_mdb(rc);
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (store_ha_parse(k.mv_data, k.mv_size, v.mv_data, v.mv_size,
				   &rec) < 0)
			continue;
		if ((ret = fn(arg, &rec)) != 0)
			break;
	}
	mdb_cursor_close(cur);
	if (ret != 0)
		return ret;
	return rc == MDB_NOTFOUND ? 0 : err_from_mdb(rc);
}

int store_ha_put(struct store_txn *t, const struct store_ha_rec *rec)
{
	uint8_t key[HA_KEY_MAX], val[sizeof(struct ha_hdr) + STORE_HA_VALUE_MAX];
	struct ha_hdr hdr;
	MDB_val k = {0, key}, v = {0, val};

	if (rec->tlen > TENANT_ID_MAX || rec->clen == 0 ||
	    rec->clen > STORE_HA_VALUE_MAX || rec->rlen == 0 ||
	    rec->rlen > STORE_HA_VALUE_MAX)
		return ERR_FAIL;
	memcpy(key, rec->tenant, rec->tlen);
	key[rec->tlen] = 0;
	memcpy(key + rec->tlen + 1, rec->cluster, rec->clen);
	k.mv_size = rec->tlen + 1 + rec->clen;
	memset(&hdr, 0, sizeof(hdr));
	hdr.version = STORE_HA_VERSION;
	hdr.replica_len = (uint32_t)rec->rlen;
	hdr.elected_ms = rec->elected_ms;
	hdr.last_seen_ms = rec->last_seen_ms;
	memcpy(val, &hdr, sizeof(hdr));
	memcpy(val + sizeof(hdr), rec->replica, rec->rlen);
	v.mv_size = sizeof(hdr) + rec->rlen;
	return err_from_mdb(store_seam_put(t->txn, t->st->ha, &k, &v, 0));
}
