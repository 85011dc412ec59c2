/*
 * salvage.h - `relay salvage`: copies what is intact in a damaged data
 * directory into a new one.
 *
 *   relay salvage -c FILE --to NEWDIR        (from FILE's [storage] path)
 *   relay salvage --from DIR --to NEWDIR [--max-size BYTES]
 *   relay salvage --from DIR --pages          (lists the queue's leaf pages)
 *
 * It reads data.mdb with lmdb_read.h only (never through liblmdb, which
 * may crash on the damage), walking the live trees of the current meta
 * page: the queue and setaside databases, the usage records, the lanes'
 * cursors, the destination records and the HA elections. Pages that fail
 * their checks are skipped with every record on them; an entry is copied
 * only when its header, its snappy block and the WriteRequest inside pass
 * the relay's own checks (store_entry_hdr, snappy, wire_scan).
 * Entries keep their tenant and their order, under new sequence numbers
 * (set-aside entries first, then the queue's); set-aside entries keep
 * the upstream's status and reason (their set-aside time becomes the
 * salvage's). What is keyed by sequence number is translated
 * (salvage_state.c): a lane's cursor becomes the new number of the last
 * copied entry it was through, so what a lane delivered is not sent
 * again; each entry gets the destination record (account and project
 * ids) it had. HA elections are copied as they are. Usage records are
 * copied when they have the size and version of usage.h. Deleted
 * (delivered) entries are on freed pages no tree points at, so they are
 * not brought back. The dedup window, the usage sketches of the current
 * hours and the series of max_series tenants are not copied.
 *
 * The new directory must be missing or empty; the source is not changed
 * (beyond its relay.lock, held so that no relay writes it meanwhile).
 * Prints what it recovered and what it could not read; exit status 0 when
 * the copy is complete and committed (whatever was lost), 1 when it could
 * not be made, 2 on a usage error.
 */
#ifndef RELAY_SALVAGE_H
#define RELAY_SALVAGE_H

#include <stdint.h>

#include "lmdb_read.h"

/* What salvage did with one database. */
struct salvage_db {
	uint64_t read;        /* entries read from intact pages */
	uint64_t copied;      /* written to the new store */
	uint64_t invalid;     /* read, but failed the entry checks */
	uint64_t samples;     /* in the copied entries */
	struct lmdb_walk walk;
	int missing;          /* the database was not found */
};

struct salvage_report {
	unsigned page_size;
	uint64_t txnid;
	struct salvage_db queue, setaside, usage;
	/* lanes: copied counts the cursors written (a lane through none of
	 * the copied entries has none); dest: the old records carried over;
	 * ha: the elections. */
	struct salvage_db lanes, dest, ha;
	char invalid_sample[256]; /* why the first invalid entry failed */
};

/*
 * Copies the intact entries of from/data.mdb, with the cursors,
 * destinations and elections above, into a new store at to
 * (opened with store_open, max_size as there). Returns 0 with r filled,
 * or a negative ERR_* code with the reason in err.
 */
int salvage_run(const char *from, const char *to, uint64_t max_size,
		struct salvage_report *r, char *err, size_t errlen);

/* The CLI (argv[0] is "salvage"). Returns the exit status. */
int salvage_main(int argc, char **argv);

#endif
