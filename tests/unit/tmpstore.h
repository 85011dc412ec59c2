/*
 * tmpstore.h - a store of a test's own in a new directory under /tmp
 * (removed again with tmpdir_remove).
 */
#ifndef RELAY_TMPSTORE_H
#define RELAY_TMPSTORE_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "store_int.h"   /* the store's tests look inside it */
#include "tmpdir.h"

/* Makes dir (/tmp/relay-test-NAME-XXXXXX) and opens *st at path
 * (dir/buf) with a map of mapsize bytes. Returns 0, or -1 with the reason
 * on stderr. */
static inline int tmpstore_open(char *dir, size_t dirlen, char *path,
				size_t pathlen, const char *name,
				struct store **st, uint64_t mapsize)
{
	char why[256];

	snprintf(dir, dirlen, "/tmp/relay-test-%s-XXXXXX", name);
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(path, pathlen, "%s/buf", dir);
	if ((*st = store_open(path, mapsize, why, sizeof(why))) == NULL) {
		fprintf(stderr, "store_open: %s\n", why);
		return -1;
	}
	return 0;
}

#endif
