/*
 * store_salvage.c - `relay salvage` (see salvage.h): reads a damaged data.mdb
 * with lmdb_read, checks each entry with the relay's own decoders, and
 * writes what passes into a new store, with the HA elections; the cursors
 * and destination records that go with the entries are salvage_state.c's.
 */
#include "salvage.h"
#include "salvage_int.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <snappy-c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config.h"
#include "err.h"
#include "log.h"
#include "lanes.h"
#include "store_int.h"
#include "usage.h"
#include "wire.h"

#define SALVAGE_RAW_MAX ((size_t)1 << 30)   /* decoded bytes of one entry */
#define SALVAGE_TXN_ENTRIES 64
#define SALVAGE_TXN_BYTES ((uint64_t)64 << 20)

/* --- the new store: the one place that writes it (store.h's API) -------- */

struct sink {
	struct store *st;
	struct store_txn *txn;
	struct salvage_state *state;  /* ref: cursors and destinations */
	uint64_t pending_bytes;
	size_t pending;
};

/* One record to write: a queue entry (status 0), a set-aside entry
 * (status and reason), a usage record (usage set), or an HA election (ha
 * set). */
struct record {
	const char *tenant;
	size_t tlen;
	uint64_t seq;           /* in the old store; usage: the hour */
	const uint8_t *value;   /* ref: queue value, or usage record */
	size_t vlen;
	long status;
	const char *reason;     /* NUL-terminated when status != 0 */
	int usage;
	const struct store_ha_rec *ha;
};

/*
 * Opens the new store (dir != NULL), writes one record, or commits what
 * was written (rec == NULL). Commits every SALVAGE_TXN_ENTRIES records.
 * Entries get the new store's sequence numbers, in the order they are
 * written (the old store's order, so each tenant's stay oldest first),
 * each under the destination it had; s->state learns the new numbers of
 * the queue entries. Returns 0 or a negative ERR_* code with the reason
 * in err.
 */
static int sink_write(struct sink *s, const char *dir, uint64_t max_size,
		      const struct record *rec, char *err, size_t errlen)
{
	struct store_span gone, next;
	uint64_t seq;
	int rc = 0;

	if (dir != NULL) {
		memset(s, 0, sizeof(*s));
		if ((s->st = store_open(dir, max_size, err, errlen)) == NULL)
			return ERR_FAIL;
		return 0;
	}
	if (s->txn == NULL && (rc = store_txn_begin(s->st, &s->txn)) != 0) {
		s->txn = NULL;
		goto out;
	}
	if (rec == NULL) {
		rc = store_txn_commit(s->txn);
		s->txn = NULL;
		s->pending = 0;
		s->pending_bytes = 0;
		goto out;
	}
	if (rec->ha != NULL) {
		rc = store_ha_put(s->txn, rec->ha);
	} else if (rec->usage) {
		rc = store_usage_put(s->txn, 0, rec->tenant, rec->tlen, rec->seq,
				     rec->value, rec->vlen);
	} else {
		rc = salvage_state_dest(s->state, s->txn, rec->tenant, rec->tlen,
					rec->seq);
		/* As it is, lane table and all (any version it reads). */
		if (rc == 0)
			rc = store_put_value(s->txn, rec->tenant, rec->tlen,
					     rec->value, rec->vlen, &seq);
		if (rc == 0 && rec->status == 0)
			salvage_state_moved(s->state, rec->tenant, rec->tlen,
					    rec->seq, seq);
		if (rc == 0 && rec->status != 0) {
			memset(&gone, 0, sizeof(gone));
			rc = store_set_aside(s->txn, rec->tenant, rec->tlen, -1, seq,
					     rec->status, rec->reason, &gone, &next);
		}
	}
	s->pending++;
	s->pending_bytes += rec->vlen;
	if (rc == 0 && (s->pending >= SALVAGE_TXN_ENTRIES ||
			s->pending_bytes >= SALVAGE_TXN_BYTES))
		return sink_write(s, NULL, 0, NULL, err, errlen);
out:
	if (rc != 0) {
		if (s->txn != NULL)
			store_txn_abort(s->txn);
		s->txn = NULL;
		snprintf(err, errlen, "cannot write the new store: %s",
			 err_str(rc));
		return rc < 0 ? rc : ERR_FAIL;
	}
	return 0;
}

static void sink_close(struct sink *s)
{
	if (s->txn != NULL)
		store_txn_abort(s->txn);
	s->txn = NULL;
	if (s->st != NULL)
		store_close(s->st);
	s->st = NULL;
}

/* --- checking entries ---------------------------------------------------- */

/* A queue value the relay can send: header, lane table, and each lane's
 * snappy block a WriteRequest. Returns 0 with the header in h, or -1 with
 * the reason in why. */
static int entry_check(const uint8_t *v, size_t n, struct entry_hdr *h,
		       struct buf *raw, char *why, size_t whylen)
{
	MDB_val mv = {n, (void *)v};
	struct lane_table lt;
	struct wire_opts o;
	size_t len;

	if (store_entry_read(&mv, h, &lt) < 0) {
		snprintf(why, whylen, "bad entry header, lane table or snappy "
			 "preamble");
		return -1;
	}
	for (unsigned i = 0; i < lt.n; i++) {
		const struct lane_part *p = &lt.part[i];
		if (snappy_uncompressed_length((const char *)p->block, p->len,
					       &len) != SNAPPY_OK ||
		    len != p->raw_len || len > SALVAGE_RAW_MAX) {
			snprintf(why, whylen, "snappy length %u unreadable or "
				 "too large", p->raw_len);
			return -1;
		}
		buf_reset(raw);
		if (buf_reserve(raw, len ? len : 1) < 0) {
			snprintf(why, whylen, "out of memory for %zu bytes", len);
			return -1;
		}
		if (snappy_uncompress((const char *)p->block, p->len,
				      (char *)raw->p, &len) != SNAPPY_OK ||
		    len != p->raw_len) {
			snprintf(why, whylen, "corrupt snappy block");
			return -1;
		}
		memset(&o, 0, sizeof(o));
		if (wire_scan(raw->p, len, &o, NULL, NULL, why, whylen) != WIRE_OK)
			return -1;
	}
	return 0;
}

/* --- walking the old store ----------------------------------------------- */

struct copy {
	struct sink *sink;
	struct salvage_db *db;
	struct salvage_report *r;
	struct buf raw;
	struct buf whole;       /* a queue head joined with its tail */
	int kind;               /* 0 queue, 1 setaside, 2 usage, 3 ha */
	struct usage_rec urec;  /* a usage record, as written */
	int rc;                 /* the sink's failure */
	char err[512];
};

void salvage_invalid(struct salvage_report *r, struct salvage_db *db,
		     const char *tenant, size_t tlen, uint64_t seq,
		     const char *why)
{
	db->invalid++;
	if (r->invalid_sample[0] == '\0')
		snprintf(r->invalid_sample, sizeof(r->invalid_sample),
			 "tenant=\"%.*s\" seq=%" PRIu64 ": %.150s", (int)tlen, tenant,
			 seq, why);
}

static void invalid(struct copy *c, const char *tenant, size_t tlen,
		    uint64_t seq, const char *why)
{
	salvage_invalid(c->r, c->db, tenant, tlen, seq, why);
}

/* An HA election: written as it was read. */
static int copy_ha(struct copy *c, const struct lmdb_entry *e)
{
	struct store_ha_rec ha;
	struct record rec;

	if (e->val == NULL ||
	    store_ha_parse(e->key, e->klen, e->val, e->vlen, &ha) < 0) {
		invalid(c, "", 0, 0, "HA election: bad key, size or version");
		return 0;
	}
	memset(&rec, 0, sizeof(rec));
	rec.ha = &ha;
	rec.vlen = e->vlen;
	c->rc = sink_write(c->sink, NULL, 0, &rec, c->err, sizeof(c->err));
	if (c->rc < 0)
		return c->rc;
	c->db->copied++;
	return 0;
}

static int copy_entry(void *arg, const struct lmdb_entry *e)
{
	struct copy *c = arg;
	MDB_val k = {e->klen, (void *)e->key};
	struct record rec;
	struct entry_hdr h;
	struct setaside_hdr sh;
	char why[256], reason[1025];

	c->db->read++;
	if (c->kind == 3)
		return copy_ha(c, e);
	memset(&rec, 0, sizeof(rec));
	rec.value = e->val;
	rec.vlen = e->vlen;
	if (e->val == NULL ||
	    store_key_parse(&k, &rec.tenant, &rec.tlen, &rec.seq) < 0) {
		invalid(c, "", 0, 0, "not a key of the relay's");
		return 0;
	}
	if (c->kind == 2) {
		/* Any version this relay reads (shorter older records get
		 * zeros in the newer fields), written as the current one. */
		if (usage_rec_read(e->val, e->vlen, &c->urec) < 0 ||
		    c->urec.version < 1 || c->urec.version > USAGE_FORMAT) {
			invalid(c, rec.tenant, rec.tlen, rec.seq,
				"usage record size or version");
			return 0;
		}
		c->urec.version = USAGE_FORMAT;
		rec.value = (const uint8_t *)&c->urec;
		rec.vlen = sizeof(c->urec);
		rec.usage = 1;
	} else if (c->kind == 1) {
		if (e->vlen < sizeof(sh)) {
			invalid(c, rec.tenant, rec.tlen, rec.seq, "short set-aside value");
			return 0;
		}
		memcpy(&sh, e->val, sizeof(sh));
		if (sh.reason_len > 1024 || sh.reason_len > e->vlen - sizeof(sh) ||
		    sh.status == 0) {
			invalid(c, rec.tenant, rec.tlen, rec.seq, "bad set-aside header");
			return 0;
		}
		memcpy(reason, e->val + sizeof(sh), sh.reason_len);
		reason[sh.reason_len] = '\0';
		rec.status = sh.status;
		rec.reason = reason;
		rec.value = e->val + sizeof(sh) + sh.reason_len;
		rec.vlen = e->vlen - sizeof(sh) - sh.reason_len;
	} else if (c->kind == 0) {
		/* A head: joined with its tail, then read as a whole value. */
		MDB_val hv = {e->vlen, (void *)e->val};
		size_t len = store_value_len(&hv);
		if (len != e->vlen) {
			int jr = salvage_tails_join(c->sink->state, rec.tenant,
						    rec.tlen, rec.seq, e->val,
						    e->vlen, len, &c->whole);
			if (jr == ERR_NOMEM) {
				snprintf(c->err, sizeof(c->err), "out of memory");
				return c->rc = jr;
			}
			if (jr < 0) {
				invalid(c, rec.tenant, rec.tlen, rec.seq,
					"the tail of the entry is missing");
				return 0;
			}
			rec.value = c->whole.p;
			rec.vlen = c->whole.len;
		}
	}
	if (c->kind != 2 &&
	    entry_check(rec.value, rec.vlen, &h, &c->raw, why, sizeof(why)) < 0) {
		invalid(c, rec.tenant, rec.tlen, rec.seq, why);
		return 0;
	}
	c->rc = sink_write(c->sink, NULL, 0, &rec, c->err, sizeof(c->err));
	if (c->rc < 0)
		return c->rc;
	c->db->copied++;
	if (c->kind != 2)
		c->db->samples += h.samples;
	return 0;
}

int salvage_walk(struct lmdb_file *f, const char *name, struct salvage_db *db,
		 lmdb_entry_fn fn, void *arg, char *err, size_t errlen)
{
	struct lmdb_db rec;
	struct lmdb_walk mw;
	int rc;

	memset(&mw, 0, sizeof(mw));
	mw.name = "the main DB";
	memset(db, 0, sizeof(*db));
	db->walk.name = name;
	db->walk.want_values = 1;
	if (lmdb_find_db(f, name, &rec, &mw) < 0) {
		db->missing = 1;
		db->walk = mw;
		db->walk.name = name;
		if (mw.problem[0] == '\0')
			snprintf(db->walk.problem, sizeof(db->walk.problem),
				 "%.200s: no database %s", f->path, name);
		return 0;
	}
	rc = lmdb_walk_tree(f, &rec, 0, fn, arg, &db->walk);
	if (rc == ERR_NOMEM) {
		snprintf(err, errlen, "out of memory");
		return rc;
	}
	return rc == ERR_CORRUPT ? 0 : rc;
}

static int copy_db(struct lmdb_file *f, const char *name, int kind,
		   struct sink *s, struct salvage_db *db, struct salvage_report *r,
		   char *err, size_t errlen)
{
	struct copy c;
	int rc;

	memset(&c, 0, sizeof(c));
	c.sink = s;
	c.db = db;
	c.r = r;
	c.kind = kind;
	buf_init(&c.raw, SALVAGE_RAW_MAX);
	buf_init(&c.whole, SALVAGE_RAW_MAX);
	rc = salvage_walk(f, name, db, copy_entry, &c, err, errlen);
	buf_free(&c.raw);
	buf_free(&c.whole);
	if (c.rc < 0) {
		snprintf(err, errlen, "%s", c.err);
		return c.rc;
	}
	return rc;
}

/* 1 when path (which need not exist) lies inside dir. */
static int inside(const char *dir, const char *path)
{
	char d[PATH_MAX], p[PATH_MAX], parent[PATH_MAX];
	const char *slash = strrchr(path, '/');
	size_t n;

	if (realpath(dir, d) == NULL)
		return 0;
	if (realpath(path, p) == NULL) {
		/* A new directory: its parent's real path, then its name. */
		n = slash ? (size_t)(slash - path) : 1;
		snprintf(parent, sizeof(parent), "%.*s", (int)n,
			 slash ? (n ? path : "/") : ".");
		if (realpath(parent, p) == NULL)
			return 0;
		n = strlen(p);
		snprintf(p + n, sizeof(p) - n, "/%s", slash ? slash + 1 : path);
	}
	n = strlen(d);
	return strncmp(p, d, n) == 0 && (p[n] == '/' || p[n] == '\0');
}

/* to must be missing or an empty directory, outside from. */
static int target_ok(const char *from, const char *to, char *err, size_t errlen)
{
	struct stat a, b;
	struct dirent *de;
	DIR *d;

	if (inside(from, to)) {
		snprintf(err, errlen, "--to %s is inside the damaged directory "
			 "%s: choose a directory elsewhere", to, from);
		return ERR_FAIL;
	}
	if (stat(to, &b) < 0)
		return 0;
	if (stat(from, &a) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino) {
		snprintf(err, errlen, "--to %s is the damaged directory itself", to);
		return ERR_FAIL;
	}
	if ((d = opendir(to)) == NULL) {
		snprintf(err, errlen, "--to %s: %s", to, strerror(errno));
		return ERR_FAIL;
	}
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
			closedir(d);
			snprintf(err, errlen, "--to %s is not empty: salvage "
				 "writes a new store", to);
			return ERR_FAIL;
		}
	}
	closedir(d);
	return 0;
}

static int meta_format(void *arg, const struct lmdb_entry *e)
{
	uint32_t *format = arg;

	if (e->klen == 6 && memcmp(e->key, "format", 6) == 0 &&
	    e->val != NULL && e->vlen == sizeof(*format))
		memcpy(format, e->val, sizeof(*format));
	return 0;
}

/* Refuses a store a newer relay wrote (its meta format above
 * STORE_FORMAT: it may lay entries out in a way this one would misread).
 * A meta database that cannot be read says nothing: the copy goes on, it
 * checks every entry. Returns 0 or ERR_FORMAT (or ERR_NOMEM) with err. */
static int source_format_ok(struct lmdb_file *f, char *err, size_t errlen)
{
	struct salvage_db db;
	uint32_t format = 0;
	int rc;

	if ((rc = salvage_walk(f, "meta", &db, meta_format, &format, err,
			       errlen)) < 0)
		return rc;
	if (format > STORE_FORMAT) {
		snprintf(err, errlen, "%.200s is of buffer format %u, newer than "
			 "this relay's (%d): salvage it with the relay that "
			 "wrote it", f->path, format, STORE_FORMAT);
		return ERR_FORMAT;
	}
	return 0;
}

int salvage_run(const char *from, const char *to, uint64_t max_size,
		struct salvage_report *r, char *err, size_t errlen)
{
	static const char *const names[] = {"setaside", "queue", "usage", "ha"};
	struct salvage_db *dbs[] = {&r->setaside, &r->queue, &r->usage, &r->ha};
	const int kinds[] = {1, 0, 2, 3};
	struct salvage_state state;
	struct lmdb_file f;
	struct sink s;
	char file[4200];
	int rc, lock;

	memset(r, 0, sizeof(*r));
	memset(&s, 0, sizeof(s));
	memset(&state, 0, sizeof(state));
	if ((rc = target_ok(from, to, err, errlen)) < 0)
		return rc;
	lock = store_lock(from);
	if (lock == ERR_BUSY) {
		snprintf(err, errlen, "a relay is running on %s: stop it first", from);
		return ERR_BUSY;
	}
	snprintf(file, sizeof(file), "%s/data.mdb", from);
	if ((rc = lmdb_file_open(&f, file, 0, err, errlen)) < 0)
		goto out_unlock;
	r->page_size = f.psize;
	r->txnid = f.txnid;
	if ((rc = source_format_ok(&f, err, errlen)) < 0 ||
	    (rc = salvage_state_load(&state, &f, r, err, errlen)) < 0 ||
	    (rc = sink_write(&s, to, max_size, NULL, err, errlen)) < 0)
		goto out;
	s.state = &state;
	for (size_t i = 0; i < 4; i++) {
		rc = copy_db(&f, names[i], kinds[i], &s, dbs[i], r, err, errlen);
		if (rc < 0)
			goto out;
	}
	/* The cursors, in the new numbers, and the latest destinations. */
	if ((rc = sink_write(&s, NULL, 0, NULL, err, errlen)) < 0)
		goto out;
	if ((rc = store_txn_begin(s.st, &s.txn)) < 0) {
		s.txn = NULL;
		snprintf(err, errlen, "cannot write the new store: %s",
			 err_str(rc));
		goto out;
	}
	if ((rc = salvage_state_write(&state, s.txn, r)) < 0) {
		snprintf(err, errlen, "cannot write the new store: %s",
			 err_str(rc));
		goto out;
	}
	rc = sink_write(&s, NULL, 0, NULL, err, errlen);
out:
	salvage_state_free(&state);
	sink_close(&s);
	lmdb_file_close(&f);
out_unlock:
	store_unlock(lock);
	return rc;
}

/* --- the CLI ------------------------------------------------------------- */

/* entries: a database of queue values (with samples to count). */
static void print_db(FILE *out, const char *name, const struct salvage_db *d,
		     int entries)
{
	const struct lmdb_walk *w = &d->walk;

	fprintf(out, "%s: copied=%" PRIu64, name, d->copied);
	if (entries)
		fprintf(out, " samples=%" PRIu64, d->samples);
	fprintf(out, " read=%" PRIu64 " invalid=%" PRIu64 " damaged_pages=%"
		PRIu64 " damaged_entries=%" PRIu64 "%s\n", d->read, d->invalid,
		w->bad_pages, w->bad_entries,
		d->missing ? " (database not found)" : "");
	if (w->nbad > 0) {
		fprintf(out, "%s: damaged pages:", name);
		for (unsigned i = 0; i < w->nbad; i++)
			fprintf(out, " %" PRIu64, w->bad_pgno[i]);
		fprintf(out, "%s\n", w->bad_pages + w->bad_entries > w->nbad ?
			" ..." : "");
	}
	if (w->problem[0] != '\0')
		fprintf(out, "%s: first damage: %s\n", name, w->problem);
	log_msg(d->walk.problem[0] ? LOG_WARN : LOG_INFO, "salvaged",
		"db=%s copied=%" PRIu64 " invalid=%" PRIu64
		" damaged_pages=%" PRIu64 " damaged_entries=%" PRIu64, name,
		d->copied, d->invalid, w->bad_pages, w->bad_entries);
}

struct page_list {
	uint64_t pgno, n;
};

static int list_entry(void *arg, const struct lmdb_entry *e)
{
	struct page_list *l = arg;

	if (e->leaf_pgno != l->pgno) {
		if (l->n > 0)
			printf("queue leaf %" PRIu64 " entries %" PRIu64 "\n",
			       l->pgno, l->n);
		l->pgno = e->leaf_pgno;
		l->n = 0;
	}
	l->n++;
	return 0;
}

/* --pages: the main DB's and the queue's root pages, and the queue's leaf
 * pages with how many entries each holds. */
static int list_pages(const char *from)
{
	struct page_list l = {0, 0};
	struct lmdb_file f;
	struct lmdb_walk w;
	struct lmdb_db db;
	char file[4200], err[512];
	int rc;

	snprintf(file, sizeof(file), "%s/data.mdb", from);
	if (lmdb_file_open(&f, file, 0, err, sizeof(err)) < 0) {
		fprintf(stderr, "relay salvage: %s\n", err);
		return 1;
	}
	memset(&w, 0, sizeof(w));
	w.name = "queue";
	printf("main root %" PRIu64 " depth %u\n", f.main_db.root,
	       f.main_db.depth);
	rc = lmdb_find_db(&f, "queue", &db, &w);
	if (rc == 0) {
		printf("queue root %" PRIu64 " depth %u\n", db.root, db.depth);
		memset(&w, 0, sizeof(w));
		w.name = "queue";
		rc = lmdb_walk_tree(&f, &db, 0, list_entry, &l, &w);
		if (l.n > 0)
			printf("queue leaf %" PRIu64 " entries %" PRIu64 "\n",
			       l.pgno, l.n);
	}
	if (w.problem[0] != '\0')
		fprintf(stderr, "relay salvage: %s\n", w.problem);
	lmdb_file_close(&f);
	return rc == 0 ? 0 : 1;
}

static void salvage_help(FILE *out)
{
	fprintf(out,
		"usage: relay salvage -c FILE --to NEWDIR\n"
		"       relay salvage --from DIR --to NEWDIR [--max-size SIZE]\n"
		"       relay salvage --from DIR --pages\n"
		"Copies every intact entry of a damaged data directory into a new\n"
		"one, with the lanes' cursors, the destinations and the HA\n"
		"elections (docs/recovery.md).\n");
}

int salvage_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"from", required_argument, NULL, 'f'},
		{"to", required_argument, NULL, 't'},
		{"max-size", required_argument, NULL, 'm'},
		{"pages", no_argument, NULL, 'p'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *file = NULL, *from = NULL, *to = NULL;
	struct config cfg;
	struct salvage_report r;
	uint64_t max_size = (uint64_t)1 << 30;
	char err[1024];
	int opt, pages = 0, rc, have_cfg = 0;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "c:h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c': file = optarg; break;
		case 'f': from = optarg; break;
		case 't': to = optarg; break;
		case 'm':
			/* As [storage] max_size is written: 8GiB, 512MiB... */
			if (config_parse_size(optarg, &max_size) < 0 ||
			    max_size == 0) {
				fprintf(stderr, "relay salvage: --max-size: \"%s\" "
					"is not a size (use e.g. 8GiB)\n", optarg);
				return 2;
			}
			break;
		case 'p': pages = 1; break;
		case 'h': salvage_help(stdout); return 0;
		default: salvage_help(stderr); return 2;
		}
	}
	if (optind != argc || (file == NULL) == (from == NULL) ||
	    (to == NULL && !pages) || max_size == 0) {
		salvage_help(stderr);
		return 2;
	}
	if (file != NULL) {
		if (config_load_storage(&cfg, file, err, sizeof(err)) < 0) {
			fprintf(stderr, "%s\n", err);
			config_free(&cfg);
			return 1;
		}
		have_cfg = 1;
		from = cfg.path;
		max_size = cfg.max_size;
	}
	if (pages) {
		rc = list_pages(from);
		goto out;
	}
	printf("salvage: from %s/data.mdb to %s\n", from, to);
	if (salvage_run(from, to, max_size, &r, err, sizeof(err)) < 0) {
		fprintf(stderr, "relay salvage: %s\n", err);
		log_msg(LOG_ERROR, "salvage failed", "from=%s to=%s reason=\"%s\"",
			from, to, err);
		rc = 1;
		goto out;
	}
	printf("salvage: page_size=%u txnid=%" PRIu64 "\n", r.page_size, r.txnid);
	print_db(stdout, "queue", &r.queue, 1);
	print_db(stdout, "setaside", &r.setaside, 1);
	print_db(stdout, "usage", &r.usage, 0);
	print_db(stdout, "lanes", &r.lanes, 0);
	print_db(stdout, "dest", &r.dest, 0);
	print_db(stdout, "ha", &r.ha, 0);
	if (r.invalid_sample[0] != '\0')
		printf("salvage: first invalid entry: %s\n", r.invalid_sample);
	printf("salvage: done; set [storage] path = %s and start the relay\n", to);
	rc = 0;
out:
	if (have_cfg)
		config_free(&cfg);
	return rc;
}
