/*
 * lmdb_read.c - reads LMDB's data file page by page with every offset
 * checked (see lmdb_read.h for the format and the checks). Nothing here
 * maps the file: a page past the end or a read error is a finding, not a
 * SIGBUS.
 */
#include "lmdb_read.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"

#define META_BYTES 136          /* MDB_meta on a 64-bit host */
#define OVERFLOW_VALUE_MAX ((size_t)1 << 31)

static uint16_t le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t le32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

static uint64_t le64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

void lmdb_db_decode(const uint8_t *p, struct lmdb_db *db)
{
	db->pad = le32(p);
	db->flags = le16(p + 4);
	db->depth = le16(p + 6);
	db->branch_pages = le64(p + 8);
	db->leaf_pages = le64(p + 16);
	db->overflow_pages = le64(p + 24);
	db->entries = le64(p + 32);
	db->root = le64(p + 40);
}

/* Reads exactly n bytes at off; 0, or -1 with errno (EIO for a short
 * read: the file ends there). */
static int read_at(int fd, void *buf, size_t n, uint64_t off)
{
	uint8_t *p = buf;

	while (n > 0) {
		ssize_t r = pread(fd, p, n, (off_t)off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0) {
			errno = EIO;
			return -1;
		}
		p += r;
		n -= (size_t)r;
		off += (uint64_t)r;
	}
	return 0;
}

struct meta {
	unsigned psize;
	uint64_t last_pgno, txnid;
	struct lmdb_db free_db, main_db;
};

static int root_ok(const struct lmdb_db *db, uint64_t last)
{
	if (db->root == LMDB_NOPAGE)
		return db->depth == 0;
	return db->root >= 2 && db->root <= last && db->depth >= 1 &&
	       db->depth <= LMDB_MAXDEPTH;
}

/* Reads and checks meta page which (0 or 1) at offset off. Returns 0, or
 * -1 with the reason in why. */
static int read_meta(const struct lmdb_file *f, int which, uint64_t off,
		     struct meta *m, char *why, size_t whylen)
{
	uint8_t p[LMDB_PAGEHDRSZ + META_BYTES];
	const uint8_t *mm = p + LMDB_PAGEHDRSZ;
	uint32_t magic, version;

	if (off + sizeof(p) > f->size) {
		snprintf(why, whylen, "meta page %d: past the end of the file", which);
		return -1;
	}
	if (read_at(f->fd, p, sizeof(p), off) < 0) {
		snprintf(why, whylen, "meta page %d: %s", which, strerror(errno));
		return -1;
	}
	magic = le32(mm);
	version = le32(mm + 4);
	if (le64(p) != (uint64_t)which || !(le16(p + 10) & LMDB_P_META) ||
	    magic != LMDB_MAGIC) {
		snprintf(why, whylen, "meta page %d: not an LMDB meta page "
			 "(magic 0x%08x)", which, magic);
		return -1;
	}
	if (version != LMDB_VERSION) {
		snprintf(why, whylen, "meta page %d: LMDB data version %u, "
			 "expected %u", which, version, LMDB_VERSION);
		return -1;
	}
	lmdb_db_decode(mm + 24, &m->free_db);
	lmdb_db_decode(mm + 72, &m->main_db);
	m->psize = m->free_db.pad;
	m->last_pgno = le64(mm + 120);
	m->txnid = le64(mm + 128);
	if (m->psize < 512 || m->psize > 65536 || (m->psize & (m->psize - 1))) {
		snprintf(why, whylen, "meta page %d: bad page size %u", which,
			 m->psize);
		return -1;
	}
	if (m->last_pgno < 1 || !root_ok(&m->free_db, m->last_pgno) ||
	    !root_ok(&m->main_db, m->last_pgno)) {
		snprintf(why, whylen, "meta page %d: bad last page %llu or "
			 "root pages", which, (unsigned long long)m->last_pgno);
		return -1;
	}
	return 0;
}

int lmdb_file_open(struct lmdb_file *f, const char *path, int strict,
		   char *err, size_t errlen)
{
	static const unsigned guesses[] = {4096, 8192, 16384, 32768, 65536,
					   2048, 1024, 512};
	struct meta m[2];
	char why[2][200] = {"", ""};
	int ok[2] = {0, 0}, cur;
	struct stat sb;

	memset(f, 0, sizeof(*f));
	snprintf(f->path, sizeof(f->path), "%s", path);
	f->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (f->fd < 0) {
		int e = errno;
		snprintf(err, errlen, "%s: %s", path, strerror(e));
		return e == ENOENT ? ERR_NOTFOUND : ERR_IO;
	}
	if (fstat(f->fd, &sb) < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		lmdb_file_close(f);
		return ERR_IO;
	}
	f->size = (uint64_t)sb.st_size;
	if (f->size == 0) {
		snprintf(err, errlen, "%s is empty (0 bytes)", path);
		lmdb_file_close(f);
		return ERR_CORRUPT;
	}
	ok[0] = read_meta(f, 0, 0, &m[0], why[0], sizeof(why[0])) == 0;
	if (ok[0]) {
		ok[1] = read_meta(f, 1, m[0].psize, &m[1], why[1],
				  sizeof(why[1])) == 0 &&
			m[1].psize == m[0].psize;
		if (!ok[1] && why[1][0] == '\0')
			snprintf(why[1], sizeof(why[1]), "meta page 1: page "
				 "size differs from meta page 0's");
	} else {
		for (size_t i = 0; i < sizeof(guesses) / sizeof(guesses[0]); i++) {
			char w[200];
			if (read_meta(f, 1, guesses[i], &m[1], w, sizeof(w)) == 0 &&
			    m[1].psize == guesses[i]) {
				ok[1] = 1;
				break;
			}
		}
		if (!ok[1])
			snprintf(why[1], sizeof(why[1]), "meta page 1 not found");
	}
	f->metas_ok = ok[0] + ok[1];
	if (f->metas_ok == 0 || (strict && f->metas_ok < 2)) {
		snprintf(err, errlen, "%s (%llu bytes): %s%s%s", path,
			 (unsigned long long)f->size, why[0],
			 why[0][0] && why[1][0] ? "; " : "", why[1]);
		lmdb_file_close(f);
		return ERR_CORRUPT;
	}
	cur = !ok[0] || (ok[1] && m[1].txnid > m[0].txnid);
	f->meta = cur;
	f->psize = m[cur].psize;
	f->pages = f->size / f->psize;
	f->last_pgno = m[cur].last_pgno;
	f->txnid = m[cur].txnid;
	f->free_db = m[cur].free_db;
	f->main_db = m[cur].main_db;
	return 0;
}

void lmdb_file_close(struct lmdb_file *f)
{
	if (f->fd >= 0)
		close(f->fd);
	f->fd = -1;
}

/* --- walking a tree ------------------------------------------------------ */

struct key {
	const uint8_t *p;  /* ref: an ancestor's page buffer; NULL: no bound */
	size_t len;
};

struct walker {
	struct lmdb_file *f;
	const struct lmdb_db *db;
	int intkeys;
	lmdb_entry_fn fn;
	void *arg;
	struct lmdb_walk *w;
	uint8_t *bufs[LMDB_MAXDEPTH + 1]; /* one page per level */
	uint8_t *value;                    /* an overflow value */
	size_t value_cap;
	int stop;                          /* fn's return when it stopped */
	int nomem;
};

static void finding(struct walker *k, int page, uint64_t pgno,
		    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Records damage at pgno: a page that cannot be used (page) or an entry. */
static void finding(struct walker *k, int page, uint64_t pgno,
		    const char *fmt, ...)
{
	struct lmdb_walk *w = k->w;
	va_list ap;

	if (page)
		w->bad_pages++;
	else
		w->bad_entries++;
	if (w->nbad < LMDB_SAMPLES)
		w->bad_pgno[w->nbad++] = pgno;
	if (w->problem[0] == '\0') {
		char what[240];
		va_start(ap, fmt);
		vsnprintf(what, sizeof(what), fmt, ap);
		va_end(ap);
		snprintf(w->problem, sizeof(w->problem), "%.200s: page %llu of %s: %s",
			 k->f->path, (unsigned long long)pgno,
			 w->name ? w->name : "a tree", what);
	}
}

static int key_cmp(int intkeys, const uint8_t *a, size_t al,
		   const uint8_t *b, size_t bl)
{
	size_t n = al < bl ? al : bl;
	int c;

	if (intkeys && al == 8 && bl == 8) {
		uint64_t x = le64(a), y = le64(b);
		return x < y ? -1 : x > y;
	}
	c = n ? memcmp(a, b, n) : 0;
	if (c != 0)
		return c;
	return al < bl ? -1 : al > bl;
}

/* A page number a tree may point at: not a meta page, within the meta's
 * last page and within the file. Returns NULL or what is wrong. */
static const char *pgno_problem(const struct lmdb_file *f, uint64_t pgno,
				uint64_t n)
{
	if (pgno < 2)
		return "points at a meta page";
	if (pgno > f->last_pgno || n > f->last_pgno - pgno + 1)
		return "points past the last page the meta page names";
	if (pgno >= f->pages || n > f->pages - pgno)
		return "lies past the end of the file (truncated?)";
	return NULL;
}

static const char *type_name(unsigned type)
{
	switch (type) {
	case LMDB_P_BRANCH: return "branch";
	case LMDB_P_LEAF: return "leaf";
	case LMDB_P_OVERFLOW: return "overflow";
	case LMDB_P_META: return "meta";
	case 0: return "blank";
	default: return "unknown";
	}
}

/*
 * Checks page p (number pgno, on level, with keys in [lo, hi)) as a whole
 * before anything on it is used. Returns its number of nodes, or 0 after
 * recording what is wrong.
 */
static unsigned check_page(struct walker *k, const uint8_t *p, uint64_t pgno,
			   int level, const struct key *lo, const struct key *hi)
{
	unsigned psize = k->f->psize, want = level > 1 ? LMDB_P_BRANCH : LMDB_P_LEAF;
	unsigned type = le16(p + 10) & LMDB_P_TYPES;
	unsigned lower = le16(p + 12), upper = le16(p + 14), n;
	const uint8_t *prev = NULL;
	size_t prevlen = 0;

	if (le64(p) != pgno) {
		finding(k, 1, pgno, "its header names page %llu (flags 0x%x): "
			"overwritten or zeroed", (unsigned long long)le64(p),
			le16(p + 10));
		return 0;
	}
	if (type != want) {
		finding(k, 1, pgno, "a %s page (flags 0x%x) where the tree needs "
			"a %s page", type_name(type), le16(p + 10), type_name(want));
		return 0;
	}
	if (lower < LMDB_PAGEHDRSZ || (lower - LMDB_PAGEHDRSZ) % 2 ||
	    lower > upper || upper > psize || lower == LMDB_PAGEHDRSZ) {
		finding(k, 1, pgno, "bad free-space bounds lower=%u upper=%u",
			lower, upper);
		return 0;
	}
	n = (lower - LMDB_PAGEHDRSZ) / 2;
	for (unsigned i = 0; i < n; i++) {
		unsigned off = le16(p + LMDB_PAGEHDRSZ + 2 * i), ksize, flags;
		uint64_t end;
		const uint8_t *node = p + off;

		if (off < upper || off % 2 || off + LMDB_NODESIZE > psize) {
			finding(k, 1, pgno, "node %u at offset %u is outside "
				"[%u, %u)", i, off, upper, psize);
			return 0;
		}
		ksize = le16(node + 6);
		flags = le16(node + 4);
		end = off + LMDB_NODESIZE + (uint64_t)ksize;
		if (want == LMDB_P_LEAF) {
			if (flags & ~(unsigned)(LMDB_F_BIGDATA | LMDB_F_SUBDATA)) {
				finding(k, 1, pgno, "node %u has unknown flags 0x%x",
					i, flags);
				return 0;
			}
			end += flags & LMDB_F_BIGDATA ? 8 :
			       (uint64_t)(le16(node) | (uint32_t)le16(node + 2) << 16);
		}
		if (end > psize || ((want == LMDB_P_LEAF || i > 0) &&
				    (ksize == 0 || ksize > LMDB_MAXKEY))) {
			finding(k, 1, pgno, "node %u (key %u bytes) does not fit "
				"the page", i, ksize);
			return 0;
		}
		if (want == LMDB_P_BRANCH && i == 0)
			continue;
		if ((prev != NULL &&
		     key_cmp(k->intkeys, prev, prevlen, node + 8, ksize) >= 0) ||
		    (prev == NULL && lo->p != NULL &&
		     key_cmp(k->intkeys, lo->p, lo->len, node + 8, ksize) > 0)) {
			finding(k, 1, pgno, "node %u: keys out of order", i);
			return 0;
		}
		prev = node + 8;
		prevlen = ksize;
	}
	if (prev != NULL && hi->p != NULL &&
	    key_cmp(k->intkeys, prev, prevlen, hi->p, hi->len) >= 0) {
		finding(k, 1, pgno, "keys beyond the parent's bound");
		return 0;
	}
	return n;
}

/* Checks the overflow run at ovpg holding vlen bytes and, when the walk
 * wants values, reads it. Returns the value (or an empty non-NULL pointer
 * when not read), or NULL after recording what is wrong. */
static const uint8_t *overflow_value(struct walker *k, uint64_t leaf,
				     unsigned i, uint64_t ovpg, size_t vlen)
{
	struct lmdb_file *f = k->f;
	uint8_t hdr[LMDB_PAGEHDRSZ];
	const char *why;
	uint32_t pages;

	if ((why = pgno_problem(f, ovpg, 1)) != NULL) {
		finding(k, 0, leaf, "node %u's overflow page %llu %s", i,
			(unsigned long long)ovpg, why);
		return NULL;
	}
	if (read_at(f->fd, hdr, sizeof(hdr), ovpg * f->psize) < 0) {
		finding(k, 0, ovpg, "overflow page: %s", strerror(errno));
		return NULL;
	}
	pages = le32(hdr + 12);
	if (le64(hdr) != ovpg || (le16(hdr + 10) & LMDB_P_TYPES) != LMDB_P_OVERFLOW ||
	    pages == 0 || (uint64_t)pages * f->psize - LMDB_PAGEHDRSZ < vlen) {
		finding(k, 0, ovpg, "not the overflow run node %u of page %llu "
			"points at (header page %llu, flags 0x%x, %u pages for "
			"%zu bytes)", i, (unsigned long long)leaf,
			(unsigned long long)le64(hdr), le16(hdr + 10), pages, vlen);
		return NULL;
	}
	if ((why = pgno_problem(f, ovpg, pages)) != NULL) {
		finding(k, 0, ovpg, "overflow run of %u pages %s", pages, why);
		return NULL;
	}
	k->w->overflow_pages += pages;
	if (!k->w->want_values)
		return (const uint8_t *)"";
	if (vlen > OVERFLOW_VALUE_MAX) {
		finding(k, 0, ovpg, "value of %zu bytes too large to read", vlen);
		return NULL;
	}
	if (vlen > k->value_cap) {
		uint8_t *nv = realloc(k->value, vlen);
		if (nv == NULL) {
			k->nomem = 1;
			return NULL;
		}
		k->value = nv;
		k->value_cap = vlen;
	}
	if (read_at(f->fd, k->value, vlen, ovpg * f->psize + LMDB_PAGEHDRSZ) < 0) {
		finding(k, 0, ovpg, "overflow run: %s", strerror(errno));
		return NULL;
	}
	return k->value;
}

/* Entry i of checked leaf page p (number pgno), as the node says: e->val
 * points into the page (an overflow value's is read by the caller).
 * Returns the node. */
static const uint8_t *leaf_entry(const uint8_t *p, uint64_t pgno, unsigned i,
				 struct lmdb_entry *e)
{
	const uint8_t *node = p + le16(p + LMDB_PAGEHDRSZ + 2 * i);

	e->flags = le16(node + 4);
	e->klen = le16(node + 6);
	e->key = node + 8;
	e->vlen = le16(node) | (size_t)le16(node + 2) << 16;
	e->leaf_pgno = pgno;
	e->val = node + 8 + e->klen;
	return node;
}

static void walk_leaf(struct walker *k, const uint8_t *p, uint64_t pgno,
		      unsigned n)
{
	k->w->leaf_pages++;
	for (unsigned i = 0; i < n && !k->stop && !k->nomem; i++) {
		struct lmdb_entry e;
		const uint8_t *node = leaf_entry(p, pgno, i, &e);

		k->w->entries++;
		if (e.flags & LMDB_F_BIGDATA) {
			e.val = overflow_value(k, pgno, i, le64(node + 8 + e.klen),
					       e.vlen);
			if (e.val == NULL)
				continue;
			if (!k->w->want_values)
				e.val = NULL;
		}
		if (k->fn != NULL)
			k->stop = k->fn(k->arg, &e);
	}
}

static void walk_page(struct walker *k, uint64_t pgno, int level,
		      const struct key *lo, const struct key *hi)
{
	struct lmdb_file *f = k->f;
	uint8_t *p = k->bufs[level];
	const char *why;
	unsigned n;

	if ((why = pgno_problem(f, pgno, 1)) != NULL) {
		finding(k, 1, pgno, "the parent's pointer %s", why);
		return;
	}
	if (read_at(f->fd, p, f->psize, pgno * f->psize) < 0) {
		finding(k, 1, pgno, "%s", strerror(errno));
		return;
	}
	if ((n = check_page(k, p, pgno, level, lo, hi)) == 0)
		return;
	if (level == 1) {
		walk_leaf(k, p, pgno, n);
		return;
	}
	k->w->branch_pages++;
	for (unsigned i = 0; i < n && !k->stop && !k->nomem; i++) {
		const uint8_t *node = p + le16(p + LMDB_PAGEHDRSZ + 2 * i);
		uint64_t child = le16(node) | (uint64_t)le16(node + 2) << 16 |
				 (uint64_t)le16(node + 4) << 32;
		struct key clo = *lo, chi = *hi;

		if (i > 0) {
			clo.p = node + 8;
			clo.len = le16(node + 6);
		}
		if (i + 1 < n) {
			const uint8_t *next = p + le16(p + LMDB_PAGEHDRSZ + 2 * (i + 1));
			chi.p = next + 8;
			chi.len = le16(next + 6);
		}
		walk_page(k, child, level - 1, &clo, &chi);
	}
}

int lmdb_walk_tree(struct lmdb_file *f, const struct lmdb_db *db,
		   int integer_keys, lmdb_entry_fn fn, void *arg,
		   struct lmdb_walk *w)
{
	struct walker k;
	struct key none = {NULL, 0};
	int rc = 0;

	memset(&k, 0, sizeof(k));
	k.f = f;
	k.db = db;
	k.intkeys = integer_keys;
	k.fn = fn;
	k.arg = arg;
	k.w = w;
	if (db->root == LMDB_NOPAGE) {
		if (db->depth != 0 || db->entries != 0)
			finding(&k, 1, 0, "empty tree with depth %u and %llu entries",
				db->depth, (unsigned long long)db->entries);
		return w->problem[0] ? ERR_CORRUPT : 0;
	}
	if (db->depth < 1 || db->depth > LMDB_MAXDEPTH) {
		finding(&k, 1, db->root, "tree depth %u", db->depth);
		return ERR_CORRUPT;
	}
	for (int l = 1; l <= db->depth; l++) {
		if ((k.bufs[l] = malloc(f->psize)) == NULL) {
			rc = ERR_NOMEM;
			goto out;
		}
	}
	walk_page(&k, db->root, db->depth, &none, &none);
	if (k.nomem)
		rc = ERR_NOMEM;
	else if (k.stop)
		rc = k.stop;
	else if (w->bad_pages == 0 && w->bad_entries == 0 &&
		 (w->branch_pages != db->branch_pages ||
		  w->leaf_pages != db->leaf_pages ||
		  w->overflow_pages != db->overflow_pages ||
		  w->entries != db->entries))
		finding(&k, 1, db->root, "the tree holds %llu/%llu/%llu branch/"
			"leaf/overflow pages and %llu entries, its record says "
			"%llu/%llu/%llu and %llu",
			(unsigned long long)w->branch_pages,
			(unsigned long long)w->leaf_pages,
			(unsigned long long)w->overflow_pages,
			(unsigned long long)w->entries,
			(unsigned long long)db->branch_pages,
			(unsigned long long)db->leaf_pages,
			(unsigned long long)db->overflow_pages,
			(unsigned long long)db->entries);
	if (rc == 0 && w->problem[0] != '\0')
		rc = ERR_CORRUPT;
out:
	for (int l = 1; l <= LMDB_MAXDEPTH; l++)
		free(k.bufs[l]);
	free(k.value);
	return rc;
}

/* The entry i of checked leaf page p (number pgno) to fn, its overflow
 * value read (k->w->want_values set). Returns fn's return, or
 * ERR_CORRUPT (the value's run is damaged) or ERR_NOMEM. */
static int get_entry(struct walker *k, const uint8_t *p, uint64_t pgno,
		     unsigned i)
{
	struct lmdb_entry e;
	const uint8_t *node = leaf_entry(p, pgno, i, &e);

	if ((e.flags & LMDB_F_BIGDATA) &&
	    (e.val = overflow_value(k, pgno, i, le64(node + 8 + e.klen),
				    e.vlen)) == NULL)
		return k->nomem ? ERR_NOMEM : ERR_CORRUPT;
	return k->fn(k->arg, &e);
}

/* lmdb_get's descent from the root: each page checked before it is
 * used, as the walk checks it. */
static int get_key(struct walker *k, const uint8_t *key, size_t klen)
{
	struct lmdb_file *f = k->f;
	struct key lo = {NULL, 0}, hi = {NULL, 0};
	uint64_t pgno = k->db->root;

	for (int level = k->db->depth; level >= 1; level--) {
		uint8_t *p = k->bufs[level];
		unsigned n, i;

		if (pgno_problem(f, pgno, 1) != NULL ||
		    read_at(f->fd, p, f->psize, pgno * f->psize) < 0 ||
		    (n = check_page(k, p, pgno, level, &lo, &hi)) == 0)
			return ERR_CORRUPT;
		if (level == 1) {
			for (i = 0; i < n; i++) {
				const uint8_t *node =
					p + le16(p + LMDB_PAGEHDRSZ + 2 * i);
				if (key_cmp(k->intkeys, node + 8, le16(node + 6),
					    key, klen) == 0)
					return get_entry(k, p, pgno, i);
			}
			return ERR_NOTFOUND;
		}
		/* The last child whose first key is not above key. */
		for (i = 1; i < n; i++) {
			const uint8_t *node = p + le16(p + LMDB_PAGEHDRSZ + 2 * i);
			if (key_cmp(k->intkeys, node + 8, le16(node + 6), key,
				    klen) > 0)
				break;
		}
		i--;
		const uint8_t *node = p + le16(p + LMDB_PAGEHDRSZ + 2 * i);
		pgno = le16(node) | (uint64_t)le16(node + 2) << 16 |
		       (uint64_t)le16(node + 4) << 32;
		if (i > 0) {
			lo.p = node + 8;
			lo.len = le16(node + 6);
		}
		if (i + 1 < n) {
			const uint8_t *next =
				p + le16(p + LMDB_PAGEHDRSZ + 2 * (i + 1));
			hi.p = next + 8;
			hi.len = le16(next + 6);
		}
	}
	return ERR_CORRUPT;   /* depth 0 with a root: not reached */
}

int lmdb_get(struct lmdb_file *f, const struct lmdb_db *db,
	     const uint8_t *key, size_t klen, lmdb_entry_fn fn, void *arg)
{
	struct walker k;
	struct lmdb_walk w;
	int rc;

	if (db->root == LMDB_NOPAGE)
		return ERR_NOTFOUND;
	if (db->depth < 1 || db->depth > LMDB_MAXDEPTH)
		return ERR_CORRUPT;
	memset(&k, 0, sizeof(k));
	memset(&w, 0, sizeof(w));
	w.want_values = 1;
	k.f = f;
	k.db = db;
	k.fn = fn;
	k.arg = arg;
	k.w = &w;
	rc = 0;
	for (int l = 1; l <= db->depth && rc == 0; l++)
		if ((k.bufs[l] = malloc(f->psize)) == NULL)
			rc = ERR_NOMEM;
	if (rc == 0)
		rc = get_key(&k, key, klen);
	for (int l = 1; l <= LMDB_MAXDEPTH; l++)
		free(k.bufs[l]);
	free(k.value);
	return rc;
}

struct find {
	const char *name;
	struct lmdb_db *db;
	int found;
};

static int find_entry(void *arg, const struct lmdb_entry *e)
{
	struct find *fd = arg;

	if ((e->flags & LMDB_F_SUBDATA) && e->vlen == 48 && e->val != NULL &&
	    e->klen == strlen(fd->name) && memcmp(e->key, fd->name, e->klen) == 0) {
		lmdb_db_decode(e->val, fd->db);
		fd->found = 1;
	}
	return 0;
}

int lmdb_find_db(struct lmdb_file *f, const char *name, struct lmdb_db *db,
		 struct lmdb_walk *w)
{
	struct find fd = {name, db, 0};
	int rc;

	rc = lmdb_walk_tree(f, &f->main_db, 0, find_entry, &fd, w);
	if (fd.found)
		return 0;
	return rc < 0 ? rc : ERR_NOTFOUND;
}
