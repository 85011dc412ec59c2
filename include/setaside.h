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

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "store.h"

/*
 * A listing of the matching entries as JSON ({"setaside":[...]}) or as
 * text lines, made part by part: each part from one page of entries read
 * in a short read transaction of its own (store_setaside_page), so that
 * neither memory nor the time a read transaction is held grows with the
 * number of entries.
 *
 * open reads the store once (the caller frees the listing with
 * setaside_list_free); returns 0, ERR_NOMEM or the store's ERR_* code.
 * next appends the next part to out (the head, one page's entries,
 * possibly none, or the end); returns 1 after a part, 0 when the listing
 * is complete, or an ERR_* code.
 */
struct setaside_list;
int setaside_list_open(struct setaside_list **out, struct store *st,
		       const struct setaside_filter *f, int json);
int setaside_list_next(struct setaside_list *l, struct buf *out);
void setaside_list_free(struct setaside_list *l);

/* The whole listing appended to out. Returns 0 or an ERR_* code. */
int setaside_format(struct store *st, const struct setaside_filter *f,
		    int json, struct buf *out);

/* The filter, the sink and the operations on set-aside entries are the
 * store's (store.h: store_setaside_*). */

/* Parses ?tenant=&seq= style values into f. Returns 0 or -1. */
int setaside_filter_parse(struct setaside_filter *f, const char *tenant,
			  const char *seq);

/* The CLI (argv[0] is "setaside"). Returns the exit code. */
int setaside_main(int argc, char **argv);

#endif
