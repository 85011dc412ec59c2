/*
 * err.c - texts and translations of the error codes (see err.h).
 */
#include "err.h"

#include <errno.h>
#include <lmdb.h>

const char *err_str(int rc)
{
	switch (rc) {
	case ERR_OK:       return "ok";
	case ERR_NOMEM:    return "out of memory";
	case ERR_NOSPACE:  return "no space left on the filesystem";
	case ERR_FULL:     return "buffer full (max_size)";
	case ERR_NOTFOUND: return "not found";
	case ERR_CORRUPT:  return "stored data is damaged";
	case ERR_IO:       return "input/output error";
	case ERR_BUSY:     return "held by another process";
	case ERR_FORMAT:   return "written by another format version";
	default:           return "failed";
	}
}

int err_from_mdb(int mdb_rc)
{
	switch (mdb_rc) {
	case MDB_SUCCESS:
		return ERR_OK;
	case MDB_NOTFOUND:
		return ERR_NOTFOUND;
	case MDB_MAP_FULL:
		return ERR_FULL;
	case MDB_CORRUPTED:
	case MDB_PAGE_NOTFOUND:
	case MDB_INVALID:
	case MDB_BAD_TXN:
	case MDB_BAD_VALSIZE:
		return ERR_CORRUPT;
	case MDB_VERSION_MISMATCH:
		return ERR_FORMAT;
	default:
		return mdb_rc > 0 ? err_from_errno(mdb_rc) : ERR_FAIL;
	}
}

int err_from_errno(int errnum)
{
	switch (errnum) {
	case 0:
		return ERR_OK;
	case ENOMEM:
		return ERR_NOMEM;
	case ENOSPC:
	case EDQUOT:
		return ERR_NOSPACE;
	case ENOENT:
		return ERR_NOTFOUND;
	case EIO:
		return ERR_IO;
	case EAGAIN:
	case EBUSY:
		return ERR_BUSY;
	default:
		return ERR_FAIL;
	}
}
