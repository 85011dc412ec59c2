/*
 * tmpdir.h - removing a test's directory under /tmp with what is in it.
 */
#ifndef RELAY_TMPDIR_H
#define RELAY_TMPDIR_H

#include <ftw.h>
#include <stdio.h>
#include <sys/stat.h>

static inline int tmpdir_rm_entry(const char *p, const struct stat *sb,
				  int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(p);
}

/* Removes dir and everything below it; an empty name is nothing. */
static inline void tmpdir_remove(const char *dir)
{
	if (dir[0] != '\0')
		nftw(dir, tmpdir_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

#endif
