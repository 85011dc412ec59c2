/*
 * setaside.h - batches the upstream refused for good (a 4xx other than 408
 * and 429), kept apart with its answer so that the queue moves on and an
 * operator can look at them, send them again, or delete them:
 *
 *   relay setaside list   -c FILE [--tenant T] [--seq N]
 *   relay setaside replay -c FILE [--tenant T] [--seq N]
 *   relay setaside purge  -c FILE [--tenant T] [--seq N]
 *
 * The CLI works on the data directory itself when no relay holds it, and
 * through the running relay's admin API (GET /api/v1/setaside, POST
 * /api/v1/setaside/replay|purge, [server] admin_token) when one does, so
 * that only the relay's writer ever changes its buffer. They are kept up
 * to [storage] setaside_max_size and setaside_max_age; the oldest go first.
 * Format in store.h.
 */
#ifndef RELAY_SETASIDE_H
#define RELAY_SETASIDE_H

#include <lmdb.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "store.h"

/* Which set-aside entries an operation takes. */
struct setaside_filter {
	char tenant[TENANT_ID_MAX + 1];
	size_t tlen;
	int any_tenant;          /* 1: every tenant */
	uint64_t seq;            /* 0: every entry */
};

/* Called for each entry replayed (now in the queue as seq) or deleted. */
struct setaside_sink {
	void (*replayed)(void *arg, const char *tenant, size_t tlen, uint64_t seq,
			 uint64_t bytes, uint64_t samples, uint64_t created_ms);
	void (*deleted)(void *arg, const char *tenant, size_t tlen,
			uint64_t samples);
	void *arg;
};

/* Appends the matching entries as JSON ({"setaside":[...]}) or as text
 * lines. Returns 0 or -1. */
int setaside_format(MDB_txn *txn, struct store *st,
		    const struct setaside_filter *f, int json, struct buf *out);

/* Moves the matching entries back to the queue behind what it holds, with
 * new sequence numbers from st->next_seq. Returns 0 or an LMDB error code;
 * *n counts them. */
int setaside_replay(MDB_txn *txn, struct store *st,
		    const struct setaside_filter *f,
		    const struct setaside_sink *sink, uint64_t *n);

/* Deletes the matching entries. Returns 0 or an LMDB error code. */
int setaside_purge(MDB_txn *txn, struct store *st,
		   const struct setaside_filter *f,
		   const struct setaside_sink *sink, uint64_t *n);

/* Deletes entries older than max_age_ms, then the oldest until the
 * database's pages fit in max_bytes. Returns 0 or an LMDB error code. */
int setaside_trim(MDB_txn *txn, struct store *st, uint64_t max_bytes,
		  uint64_t max_age_ms, uint64_t now,
		  const struct setaside_sink *sink, uint64_t *n);

/* Parses ?tenant=&seq= style values into f. Returns 0 or -1. */
int setaside_filter_parse(struct setaside_filter *f, const char *tenant,
			  const char *seq);

/* The CLI (argv[0] is "setaside"). Returns the exit code. */
int setaside_main(int argc, char **argv);

#endif
