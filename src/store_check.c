/*
 * store_check.c - the data directory's checks before the store is opened:
 * the directory itself, the store's identity, and LMDB's data file read
 * with lmdb_read (see store_check.h).
 */
#include "store_check.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"
#include "err.h"
#include "lmdb_read.h"
#include "store.h"

#define SALVAGE_HINT "; the relay does not start on a damaged store: run " \
	"`relay salvage -c FILE --to NEWDIR` to copy every intact entry into " \
	"a new directory, then set [storage] path to it (README: Damaged data " \
	"directory)"

static const char *const relay_files[] = {
	"data.mdb", "lock.mdb", "relay.lock", STORE_ID_FILE, "lost+found",
};

static int is_relay_file(const char *name)
{
	for (size_t i = 0; i < sizeof(relay_files) / sizeof(relay_files[0]); i++)
		if (strcmp(name, relay_files[i]) == 0)
			return 1;
	return 0;
}

/* Creates path and its missing parents, each 0700. */
static int make_dirs(const char *path, char *err, size_t errlen)
{
	char tmp[4096];
	size_t n = strlen(path);

	if (n == 0 || n >= sizeof(tmp)) {
		snprintf(err, errlen, "storage path \"%.64s\" is empty or too long",
			 path);
		return ERR_FAIL;
	}
	memcpy(tmp, path, n + 1);
	for (char *p = tmp + 1; ; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char c = *p;
		*p = '\0';
		if (mkdir(tmp, 0700) < 0 && errno != EEXIST) {
			int e = errno;
			snprintf(err, errlen, "cannot create %s: %s (errno %d)", tmp,
				 strerror(e), e);
			return err_from_errno(e);
		}
		*p = c;
		if (c == '\0')
			break;
	}
	return 0;
}

/* Lists the names in dir that are not the relay's into err. Returns how
 * many there are, or a negative ERR_* code. */
static int foreign_files(const char *path, char *err, size_t errlen)
{
	struct dirent *de;
	size_t used = 0;
	int n = 0;
	DIR *d;

	if ((d = opendir(path)) == NULL) {
		int e = errno;
		snprintf(err, errlen, "cannot read directory %s: %s (errno %d)",
			 path, strerror(e), e);
		return err_from_errno(e);
	}
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
		    is_relay_file(de->d_name))
			continue;
		if (n < 3 && used < errlen) {
			int w = snprintf(err + used, errlen - used, "%s\"%.64s\"",
					 n ? ", " : "", de->d_name);
			used += w > 0 ? (size_t)w : 0;
		}
		n++;
	}
	closedir(d);
	return n;
}

int store_check_dir(const char *path, int create, char *err, size_t errlen)
{
	char names[256] = "";
	struct stat sb;
	int n;

	if (stat(path, &sb) < 0) {
		int e = errno;
		if (e == ENOENT)
			return create ? make_dirs(path, err, errlen) : 0;
		snprintf(err, errlen, "storage path %s: %s (errno %d)", path,
			 strerror(e), e);
		return err_from_errno(e);
	}
	if (!S_ISDIR(sb.st_mode)) {
		snprintf(err, errlen, "storage path %s is not a directory: %s "
			 "(errno %d); set [storage] path to a directory of the "
			 "relay's own", path, strerror(ENOTDIR), ENOTDIR);
		return ERR_FAIL;
	}
	if (sb.st_mode & S_IWOTH) {
		snprintf(err, errlen, "storage path %s is writable by others "
			 "(mode %04o): a shared directory; set [storage] path to "
			 "a directory of the relay's own (a missing one is "
			 "created 0700)", path, (unsigned)(sb.st_mode & 07777));
		return ERR_FAIL;
	}
	n = foreign_files(path, names, sizeof(names));
	if (n < 0) {
		snprintf(err, errlen, "%s", names);
		return n;
	}
	if (n > 0) {
		snprintf(err, errlen, "storage path %s holds %d file%s not the "
			 "relay's (%s%s); the relay keeps its store in a "
			 "directory of its own: set [storage] path to a new or "
			 "empty directory", path, n, n > 1 ? "s" : "", names,
			 n > 3 ? ", ..." : "");
		return ERR_FAIL;
	}
	return 0;
}

static int file_exists(const char *dir, const char *name)
{
	char p[4200];
	struct stat sb;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	return stat(p, &sb) == 0;
}

/* Walks one tree; on damage writes the finding into err. */
static int check_tree(struct lmdb_file *f, const char *name,
		      const struct lmdb_db *db, int intkeys, char *err,
		      size_t errlen)
{
	struct lmdb_walk w;
	int rc;

	memset(&w, 0, sizeof(w));
	w.name = name;
	rc = lmdb_walk_tree(f, db, intkeys, NULL, NULL, &w);
	if (rc == ERR_CORRUPT)
		snprintf(err, errlen, "%s", w.problem);
	else if (rc < 0)
		snprintf(err, errlen, "%.200s: %s", f->path, err_str(rc));
	return rc;
}

/* A free-page DB record: u64 count, then count page numbers, each one
 * LMDB may hand out again (so never a meta page nor past the last page). */
struct free_check {
	uint64_t last_pgno;
	char problem[200];
};

static int check_free_record(void *arg, const struct lmdb_entry *e)
{
	struct free_check *fc = arg;
	uint64_t n, pg;

	if (e->klen != 8 || e->vlen < 8 || e->vlen % 8) {
		snprintf(fc->problem, sizeof(fc->problem), "leaf page %llu: a "
			 "record of %zu bytes", (unsigned long long)e->leaf_pgno,
			 e->vlen);
		return ERR_CORRUPT;
	}
	memcpy(&n, e->val, 8);
	if (n > e->vlen / 8 - 1) {
		snprintf(fc->problem, sizeof(fc->problem), "leaf page %llu: a "
			 "record counts %llu pages in %zu bytes",
			 (unsigned long long)e->leaf_pgno, (unsigned long long)n,
			 e->vlen);
		return ERR_CORRUPT;
	}
	for (uint64_t i = 1; i <= n; i++) {
		memcpy(&pg, e->val + 8 * i, 8);
		if (pg < 2 || pg > fc->last_pgno) {
			snprintf(fc->problem, sizeof(fc->problem), "leaf page "
				 "%llu: lists page %llu as free (last page %llu)",
				 (unsigned long long)e->leaf_pgno,
				 (unsigned long long)pg,
				 (unsigned long long)fc->last_pgno);
			return ERR_CORRUPT;
		}
	}
	return 0;
}

static int check_free_db(struct lmdb_file *f, char *err, size_t errlen)
{
	struct free_check fc;
	struct lmdb_walk w;
	int rc;

	memset(&fc, 0, sizeof(fc));
	fc.last_pgno = f->last_pgno;
	memset(&w, 0, sizeof(w));
	w.name = "the free-page DB";
	w.want_values = 1;   /* the lists of free pages, not entries */
	rc = lmdb_walk_tree(f, &f->free_db, 1, check_free_record, &fc, &w);
	if (rc == ERR_CORRUPT && w.problem[0] != '\0')
		snprintf(err, errlen, "%s", w.problem);
	else if (rc == ERR_CORRUPT)
		snprintf(err, errlen, "%.200s: the free-page DB: %s", f->path,
			 fc.problem);
	else if (rc < 0)
		snprintf(err, errlen, "%.200s: %s", f->path, err_str(rc));
	return rc;
}

struct named {
	char name[32];
	struct lmdb_db db;
};

struct named_list {
	struct named dbs[16];
	size_t n;
	int odd;   /* a main DB entry that is not a named database */
};

static int collect_named(void *arg, const struct lmdb_entry *e)
{
	struct named_list *l = arg;

	/* A named database's record is inline: with F_BIGDATA (which LMDB
	 * never sets with F_SUBDATA) the walk has no value to give. */
	if (!(e->flags & LMDB_F_SUBDATA) || (e->flags & LMDB_F_BIGDATA) ||
	    e->val == NULL || e->vlen != 48 ||
	    e->klen >= sizeof(l->dbs[0].name)) {
		l->odd++;
		return 0;
	}
	/* More than the relay's databases: not its file, and the ones past
	 * the list would go unchecked. */
	if (l->n == sizeof(l->dbs) / sizeof(l->dbs[0])) {
		l->odd++;
		return 0;
	}
	memcpy(l->dbs[l->n].name, e->key, e->klen);
	l->dbs[l->n].name[e->klen] = '\0';
	lmdb_db_decode(e->val, &l->dbs[l->n].db);
	l->n++;
	return 0;
}

static int check_file(struct lmdb_file *f, char *err, size_t errlen)
{
	struct named_list l;
	struct lmdb_walk w;
	int rc;

	if ((rc = check_free_db(f, err, errlen)) != 0)
		return rc;
	memset(&l, 0, sizeof(l));
	memset(&w, 0, sizeof(w));
	w.name = "the main DB";
	rc = lmdb_walk_tree(f, &f->main_db, 0, collect_named, &l, &w);
	if (rc == 0 && l.odd > 0) {
		snprintf(w.problem, sizeof(w.problem), "%.200s: the main DB holds %d "
			 "entries that are not named databases", f->path, l.odd);
		rc = ERR_CORRUPT;
	}
	if (rc != 0) {
		snprintf(err, errlen, "%s", w.problem[0] ? w.problem : err_str(rc));
		return rc;
	}
	for (size_t i = 0; i < l.n; i++) {
		if (l.dbs[i].db.flags != 0) {
			snprintf(err, errlen, "%.200s: database %s has flags 0x%x that "
				 "the relay never sets", f->path, l.dbs[i].name,
				 l.dbs[i].db.flags);
			return ERR_CORRUPT;
		}
		if ((rc = check_tree(f, l.dbs[i].name, &l.dbs[i].db, 0, err,
				     errlen)) != 0)
			return rc;
	}
	return 0;
}

/* Reads PATH/relay.id: 1 when it is there and of STORE_ID_FORMAT, 0 when
 * it is not there, or a negative ERR_* code with the reason in err. */
static int read_id(const char *path, char *err, size_t errlen)
{
	char file[4200], text[256];
	int fd, format = -1;
	ssize_t n;

	snprintf(file, sizeof(file), "%s/%s", path, STORE_ID_FILE);
	if ((fd = open(file, O_RDONLY | O_CLOEXEC)) < 0) {
		int e = errno;
		if (e == ENOENT)
			return 0;
		snprintf(err, errlen, "cannot read %s: %s (errno %d)", file,
			 strerror(e), e);
		return err_from_errno(e);
	}
	n = read(fd, text, sizeof(text) - 1);
	close(fd);
	text[n > 0 ? n : 0] = '\0';
	if (strncmp(text, "relay store\n", 12) != 0 ||
	    sscanf(text + 12, "format=%d", &format) != 1) {
		snprintf(err, errlen, "%s is not the relay's store identity file",
			 file);
		return ERR_FAIL;
	}
	if (format != STORE_ID_FORMAT) {
		snprintf(err, errlen, "%s: format %d, this relay reads %d", file,
			 format, STORE_ID_FORMAT);
		return ERR_FORMAT;
	}
	return 1;
}

int store_check_data(const char *path, char *err, size_t errlen)
{
	struct lmdb_file f;
	char file[4200], why[512];
	int rc, marked = read_id(path, err, errlen);

	if (marked < 0)
		return marked;

	snprintf(file, sizeof(file), "%s/data.mdb", path);
	rc = lmdb_file_open(&f, file, 1, why, sizeof(why));
	if (rc == ERR_NOTFOUND && !marked)
		return 0;   /* a new store */
	if (rc == ERR_NOTFOUND) {
		snprintf(err, errlen, "%s is missing, but %s/%s says this "
			 "directory held a store: its data is gone or was moved; "
			 "restore data.mdb, or point [storage] path at a new "
			 "directory (the relay does not replace a store with an "
			 "empty one)", file, path, STORE_ID_FILE);
		return ERR_CORRUPT;
	}
	if (rc == ERR_IO) {
		snprintf(err, errlen, "cannot read %s", why);
		return rc;
	}
	if (rc == 0) {
		rc = check_file(&f, why, sizeof(why));
		lmdb_file_close(&f);
	}
	if (rc == ERR_CORRUPT) {
		snprintf(err, errlen, "data file damaged: %s" SALVAGE_HINT, why);
		return rc;
	}
	if (rc < 0)
		snprintf(err, errlen, "cannot check %s: %s", file, why);
	return rc;
}

int store_check_mark(const char *path)
{
	char file[4200], text[160], hex[33];
	uint8_t id[16];
	int fd, n, rc = 0;

	if (file_exists(path, STORE_ID_FILE))
		return 0;
	if (getrandom(id, sizeof(id), 0) != (ssize_t)sizeof(id))
		return err_from_errno(errno);
	for (size_t i = 0; i < sizeof(id); i++)
		snprintf(hex + 2 * i, 3, "%02x", id[i]);
	n = snprintf(text, sizeof(text), "relay store\nformat=%d\nid=%s\n"
		     "created_ms=%llu\n", STORE_ID_FORMAT, hex,
		     (unsigned long long)clock_wall_ms());
	snprintf(file, sizeof(file), "%s/%s", path, STORE_ID_FILE);
	fd = open(file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return errno == EEXIST ? 0 : err_from_errno(errno);
	if (write(fd, text, (size_t)n) != n || fsync(fd) < 0)
		rc = err_from_errno(errno ? errno : EIO);
	close(fd);
	if (rc == 0 && (fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
		fsync(fd);
		close(fd);
	}
	return rc;
}

int store_check_config(const char *path, char *err, size_t errlen)
{
	int rc, lock;

	if ((rc = store_check_dir(path, 0, err, errlen)) != 0)
		return rc;
	if (!file_exists(path, "data.mdb") && !file_exists(path, STORE_ID_FILE))
		return 0;
	lock = store_lock(path);
	if (lock == ERR_BUSY)
		return 0;   /* a relay runs on it: it checked it when it started */
	rc = store_check_data(path, err, errlen);
	store_unlock(lock);
	return rc;
}
