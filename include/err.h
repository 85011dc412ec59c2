/*
 * err.h - the relay's one error convention.
 *
 * Every function that can fail returns an int:
 *
 *   0    it did what its name says;
 *   1    only where its comment names a second success ("found",
 *        "a duplicate", "stored with a warning"); never an error;
 *   < 0  it failed: -1 (ERR_FAIL), or one of the negative codes below
 *        when a caller acts on the kind of failure (a full disk is
 *        answered 503 and retried, a corrupt store refuses to start).
 *
 * Functions that make a pointer return NULL on failure instead. A reason a
 * person reads goes into the caller's `char *err, size_t errlen`, filled
 * only on failure; it names the object ("path=...", "tenant=...") and the
 * cause (strerror, mdb_strerror).
 *
 * Library codes stop at the module that called the library: LMDB codes
 * (which are negative) and errno values (positive) never travel across a
 * header. store.c turns LMDB's into these with err_from_mdb, others use
 * err_from_errno. HTTP statuses are not error codes: admission.h returns
 * a verdict that carries one.
 */
#ifndef RELAY_ERR_H
#define RELAY_ERR_H

enum relay_err {
	ERR_OK = 0,
	ERR_FAIL = -1,      /* failed; the reason, if any, is in err */
	ERR_NOMEM = -2,     /* out of memory */
	ERR_NOSPACE = -3,   /* the filesystem is full (ENOSPC, EDQUOT) */
	ERR_FULL = -4,      /* the buffer reached max_size (LMDB map full) */
	ERR_NOTFOUND = -5,  /* no such entry, key or file */
	ERR_CORRUPT = -6,   /* stored data fails its checks */
	ERR_IO = -7,        /* a read, write or sync failed otherwise */
	ERR_BUSY = -8,      /* held by another process (the store's lock) */
	ERR_FORMAT = -9     /* written by another format version */
};

/* A short text for a code ("no space left", "buffer full", ...). */
const char *err_str(int rc);

/* The relay code for an LMDB return code (0 stays 0). */
int err_from_mdb(int mdb_rc);

/* The relay code for an errno value (0 stays 0). */
int err_from_errno(int errnum);

#endif
