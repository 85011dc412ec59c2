/*
 * relabel.c - the relabel rule engine (see relabel.h): applying the rules,
 * as relabel_compile.c made them ready, to one series' labels.
 *
 * The labels stay one array sorted by name the whole time: a rule that
 * sets or removes a label finds its place by binary search and moves the
 * rest; labelmap reads the labels as they were before it and sets what it
 * made afterwards, as Prometheus' label builder does. Strings a rule makes
 * (joined values, expanded templates, hashmod's number) go into the
 * scratch's arena, which only grows until relabel_scratch_reset, so a
 * pointer handed out stays valid.
 *
 * Regular expressions: PCRE2's compiled, anchored pattern; "(.*)", ".*"
 * and patterns of plain characters are matched without PCRE2. lowercase and uppercase map
 * characters with C.UTF-8's towlower_l / towupper_l (Unicode's simple case
 * mapping, as Go's unicode package).
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "relabel_int.h"

#include <locale.h>
#include <openssl/evp.h>
#include <pcre2.h>
#include <pthread.h>
#include <wctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "labels.h"
#include "metrics.h"

#define ARENA_BLOCK 16384

struct relabel_arena_block {
	struct relabel_arena_block *next;
	size_t len, cap;
	uint8_t data[];
};

/* A match of the joined value: capture group i spans [ov[2i], ov[2i+1]),
 * or is unset when ov[2i] is PCRE2_UNSET. */
struct match {
	const uint8_t *subject;
	const PCRE2_SIZE *ov;
	unsigned pairs;
	PCRE2_SIZE whole[4];         /* for matches made without PCRE2 */
};

/* --- scratch ------------------------------------------------------------ */

void relabel_scratch_init(struct relabel_scratch *s)
{
	memset(s, 0, sizeof(*s));
}

void relabel_scratch_reset(struct relabel_scratch *s)
{
	struct relabel_arena_block *b = s->blocks, *next;

	if (b == NULL)
		return;
	for (next = b->next; next != NULL; next = b->next) {
		b->next = next->next;
		free(next);
	}
	b->len = 0;
}

void relabel_scratch_free(struct relabel_scratch *s)
{
	struct relabel_arena_block *b, *next;

	for (b = s->blocks; b != NULL; b = next) {
		next = b->next;
		free(b);
	}
	pcre2_match_data_free((pcre2_match_data *)s->match);
	EVP_MD_CTX_free((EVP_MD_CTX *)s->md5);
	free(s->pend);
	free(s->hm_key);
	memset(s, 0, sizeof(*s));
}

/* n bytes in the arena (they stay until the next reset); NULL when out
 * of memory. The first block is kept for reuse; later ones are freed. */
static uint8_t *arena_alloc(struct relabel_scratch *s, size_t n)
{
	struct relabel_arena_block *b = s->blocks, *nb;
	size_t cap;

	for (; b != NULL; b = b->next)
		if (b->cap - b->len >= n) {
			b->len += n;
			return b->data + b->len - n;
		}
	cap = n > ARENA_BLOCK ? n : ARENA_BLOCK;
	if ((nb = malloc(sizeof(*nb) + cap)) == NULL)
		return NULL;
	nb->cap = cap;
	nb->len = n;
	if (s->blocks == NULL) {
		nb->next = NULL;
		s->blocks = nb;
	} else {
		nb->next = s->blocks->next;
		s->blocks->next = nb;
	}
	return nb->data;
}

/* --- applying ----------------------------------------------------------- */

/* Whether a[0..n) equals b[0..n): names and literals are short, where
 * word compares (the last word overlapping the one before) beat both a
 * byte loop and a call to memcmp. */
static inline int bytes_eq(const uint8_t *a, const uint8_t *b, size_t n)
{
	uint64_t x, y;
	uint32_t u, v;

	if (n >= 8) {
		for (size_t i = 0; i + 8 < n; i += 8) {
			memcpy(&x, a + i, 8);
			memcpy(&y, b + i, 8);
			if (x != y)
				return 0;
		}
		memcpy(&x, a + n - 8, 8);
		memcpy(&y, b + n - 8, 8);
		return x == y;
	}
	if (n >= 4) {
		memcpy(&u, a, 4);
		memcpy(&v, b, 4);
		if (u != v)
			return 0;
		memcpy(&u, a + n - 4, 4);
		memcpy(&v, b + n - 4, 4);
		return u == v;
	}
	for (size_t i = 0; i < n; i++)
		if (a[i] != b[i])
			return 0;
	return 1;
}

static inline int name_cmp(const uint8_t *a, size_t an, const uint8_t *b,
			   size_t bn)
{
	size_t n = an < bn ? an : bn, i;

	for (i = 0; i < n; i++)
		if (a[i] != b[i])
			return a[i] < b[i] ? -1 : 1;
	return an < bn ? -1 : an > bn;
}

/* Index of the first label of ls[0..n) whose name is not below name;
 * *found: it is that name. */
static size_t find(const struct relabel_label *ls, size_t n,
		   const uint8_t *name, size_t nlen, int *found)
{
	size_t lo = 0, hi = n;
	int d = 1;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (name_cmp(ls[mid].name, ls[mid].nlen, name, nlen) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < n)
		d = name_cmp(ls[lo].name, ls[lo].nlen, name, nlen);
	*found = d == 0;
	return lo;
}

/* Sets label name to value in the sorted ls; an empty value removes it
 * (as Prometheus' label builder does). Returns 0 or ERR_FULL. */
static int label_set(struct relabel_label *ls, size_t *n, size_t cap,
		     const uint8_t *name, size_t nlen, const uint8_t *value,
		     size_t vlen)
{
	int found;
	size_t i = find(ls, *n, name, nlen, &found);

	if (vlen == 0) {
		if (found) {
			for (size_t k = i + 1; k < *n; k++)
				ls[k - 1] = ls[k];
			(*n)--;
		}
		return 0;
	}
	if (!found) {
		if (*n == cap)
			return ERR_FULL;
		/* a loop: a dozen labels move faster than memmove is called */
		for (size_t k = *n; k > i; k--)
			ls[k] = ls[k - 1];
		(*n)++;
		ls[i].name = name;
		ls[i].nlen = nlen;
	}
	ls[i].value = value;
	ls[i].vlen = vlen;
	return 0;
}

/* The value of label name in ls ("" when absent): a scan that most
 * names leave at their length or first byte beats a binary search over
 * the dozen labels a series has. */
static const uint8_t *label_get(const struct relabel_label *ls, size_t n,
				const uint8_t *name, size_t nlen, size_t *vlen)
{
	for (size_t i = 0; i < n; i++) {
		if (ls[i].nlen == nlen && bytes_eq(ls[i].name, name, nlen)) {
			*vlen = ls[i].vlen;
			return ls[i].value;
		}
	}
	*vlen = 0;
	return (const uint8_t *)"";
}

/* The source values joined by the separator (one source: its value as
 * it is). NULL when out of memory. */
static const uint8_t *join_sources(const struct relabel_rule *r,
				   const struct relabel_label *ls, size_t n,
				   struct relabel_scratch *s, size_t *len)
{
	const uint8_t *v[16];
	size_t vl[16], total = 0, i;
	uint8_t *d, *join;

	if (r->nsrc == 1)
		return label_get(ls, n, r->src[0].p, r->src[0].n, len);
	for (i = 0; i < r->nsrc && i < 16; i++) {
		v[i] = label_get(ls, n, r->src[i].p, r->src[i].n, &vl[i]);
		total += vl[i] + (i > 0 ? r->sep.n : 0);
	}
	for (; i < r->nsrc; i++) {
		size_t l;
		label_get(ls, n, r->src[i].p, r->src[i].n, &l);
		total += l + r->sep.n;
	}
	if (total == 0) {
		*len = 0;
		return (const uint8_t *)"";
	}
	/* in the arena: the joined value stays as long as what rules make
	 * of it, which may take it as it is */
	if ((d = join = arena_alloc(s, total)) == NULL)
		return NULL;
	for (i = 0; i < r->nsrc; i++) {
		const uint8_t *p = i < 16 ? v[i] : NULL;
		size_t l = i < 16 ? vl[i] : 0;

		if (i >= 16)
			p = label_get(ls, n, r->src[i].p, r->src[i].n, &l);
		if (i > 0) {
			memcpy(d, r->sep.p, r->sep.n);
			d += r->sep.n;
		}
		memcpy(d, p, l);
		d += l;
	}
	*len = total;
	return join;
}

/* Whether subject[0..len) cannot match r (the first byte test of
 * relabel_rule.first): most label names a labeldrop or labelmap sees, most
 * metric names a drop sees, are told apart this way, without a call. */
static inline int rx_cannot(const struct relabel_rule *r,
			    const uint8_t *subject, size_t len)
{
	return r->first_on &&
	       (len == 0 || !(r->first[subject[0] >> 6] >> (subject[0] & 63) & 1));
}

/* Matches the anchored regex of r against subject[0..len). Returns 1
 * matched (m filled), 0 not, or ERR_NOMEM. */
static int rx_match(const struct relabel_rule *r, const uint8_t *subject,
		    size_t len, struct relabel_scratch *s, struct match *m)
{
	int rc;

	m->subject = subject;
	if (r->rx == RX_SET) {
		for (size_t i = 0; i < r->nalts; i++) {
			const struct relabel_alt *a = &r->alts[i];

			const uint8_t *any;  /* what .* or .+ takes */

			if (a->rest == 0 && a->head == 0 ? len != a->n :
			    len < a->n + (a->rest == 2 || a->head == 2))
				continue;
			if (!bytes_eq(a->head ? subject + len - a->n : subject,
				      a->lit, a->n))
				continue;
			/* . matches anything but a newline, as in RE2 */
			any = a->head ? subject : subject + a->n;
			if ((a->rest || a->head) &&
			    memchr(any, '\n', len - a->n) != NULL)
				continue;
			m->ov = m->whole;
			m->pairs = 1 + r->groups;
			m->whole[0] = m->whole[2] = 0;
			m->whole[1] = m->whole[3] = len;
			if (r->set_group == SG_REST)
				m->whole[2] = a->n;
			else if (r->set_group == SG_HEAD)
				m->whole[3] = len - a->n;
			return 1;
		}
		return 0;
	}
	if (s->match == NULL || s->match_pairs < r->groups + 1) {
		pcre2_match_data_free((pcre2_match_data *)s->match);
		s->match_pairs = r->groups + 1 > 32 ? r->groups + 1 : 32;
		s->match = pcre2_match_data_create(s->match_pairs, NULL);
		if (s->match == NULL) {
			s->match_pairs = 0;
			return ERR_NOMEM;
		}
	}
	rc = PCRE2_ERROR_JIT_STACKLIMIT;
	if (r->jit)
		rc = pcre2_jit_match((const pcre2_code *)r->code, subject, len,
				     0, 0, (pcre2_match_data *)s->match, NULL);
	/* The JIT's stack (32 KiB) runs out on a repeated group over a few
	 * KiB of value, where RE2 matches: the interpreter then, whose
	 * limits are far higher. */
	if (rc == PCRE2_ERROR_JIT_STACKLIMIT)
		rc = pcre2_match((const pcre2_code *)r->code, subject, len, 0,
				 PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT,
				 (pcre2_match_data *)s->match, NULL);
	if (rc < 0) {
		/* No match; or a limit even so: as no match, counted. */
		if (rc != PCRE2_ERROR_NOMATCH)
			metric_add(&metrics.relabel_regex_limits, 1);
		return 0;
	}
	m->ov = pcre2_get_ovector_pointer((pcre2_match_data *)s->match);
	m->pairs = (unsigned)rc;
	return 1;
}

/* Expands template t with match m into the arena. Returns the text
 * (*len bytes), or NULL when out of memory. */
static const uint8_t *expand(const struct relabel_tmpl *t,
			     const struct match *m, struct relabel_scratch *s,
			     size_t *len)
{
	size_t total = 0, i;
	uint8_t *d, *out;

	if (t->nparts == 1 && t->parts[0].text != NULL) {
		*len = t->parts[0].n;
		return t->parts[0].text;
	}
	for (i = 0; i < t->nparts; i++) {
		const struct relabel_part *q = &t->parts[i];

		if (q->text != NULL)
			total += q->n;
		else if (q->group >= 0 && (unsigned)q->group < m->pairs &&
			 m->ov[2 * q->group] != PCRE2_UNSET)
			total += m->ov[2 * q->group + 1] - m->ov[2 * q->group];
	}
	*len = total;
	if (total == 0)
		return (const uint8_t *)"";
	if ((out = d = arena_alloc(s, total)) == NULL)
		return NULL;
	for (i = 0; i < t->nparts; i++) {
		const struct relabel_part *q = &t->parts[i];
		size_t a, b;

		if (q->text != NULL) {
			memcpy(d, q->text, q->n);
			d += q->n;
		} else if (q->group >= 0 && (unsigned)q->group < m->pairs &&
			   m->ov[2 * q->group] != PCRE2_UNSET) {
			a = m->ov[2 * q->group];
			b = m->ov[2 * q->group + 1];
			memcpy(d, m->subject + a, b - a);
			d += b - a;
		}
	}
	return out;
}

/* MD5 fetched once from OpenSSL's default provider (an implicit fetch on
 * every digest takes locks and costs more than the digest itself). */
static EVP_MD *md5_method;
static pthread_once_t md5_once = PTHREAD_ONCE_INIT;

static void md5_fetch(void)
{
	md5_method = EVP_MD_fetch(NULL, "MD5", NULL);
}

/* replace, as Prometheus 2.42 does it. */
static int do_replace(const struct relabel_rule *r, struct relabel_label *ls,
		      size_t *n, size_t cap, struct relabel_scratch *s,
		      const uint8_t *val, size_t vlen)
{
	const uint8_t *target, *res;
	size_t tlen, rlen;
	struct match m;
	int rc;

	if (r->match_all && r->target_static &&
	    (!r->replacement_t.has_group ||
	     (r->replacement_t.nparts == 1 && r->replacement_t.parts[0].group == 1))) {
		/* (.*) into a fixed label, of a fixed value or $1: no
		 * match to make, nothing to expand */
		if (memchr(val, '\n', vlen) != NULL)
			return 0;
		if (!r->replacement_t.has_group) {
			/* Expanded all the same: "$$" is "$" (Go's Expand). */
			memset(&m, 0, sizeof(m));
			if ((res = expand(&r->replacement_t, &m, s, &rlen)) == NULL)
				return ERR_NOMEM;
			return label_set(ls, n, cap, r->target.p, r->target.n,
					 res, rlen);
		}
		return label_set(ls, n, cap, r->target.p, r->target.n, val, vlen);
	}
	if (rx_cannot(r, val, vlen))
		return 0;
	if ((rc = rx_match(r, val, vlen, s, &m)) <= 0)
		return rc;
	if ((target = expand(&r->target_t, &m, s, &tlen)) == NULL)
		return ERR_NOMEM;
	if (!labels_name_valid(target, tlen))
		return label_set(ls, n, cap, r->target.p, r->target.n, NULL, 0);
	if ((res = expand(&r->replacement_t, &m, s, &rlen)) == NULL)
		return ERR_NOMEM;
	if (rlen == 0)
		return label_set(ls, n, cap, r->target.p, r->target.n, NULL, 0);
	return label_set(ls, n, cap, target, tlen, res, rlen);
}

static int do_hashmod(const struct relabel_rule *r, struct relabel_label *ls,
		      size_t *n, size_t cap, struct relabel_scratch *s,
		      const uint8_t *val, size_t vlen)
{
	uint8_t md[EVP_MAX_MD_SIZE], digits[20], *d;
	unsigned mdlen = 0;
	uint64_t h = 0;
	size_t len = 0;

	if (s->hm_valid && s->hm_klen == vlen &&
	    memcmp(s->hm_key, val, vlen) == 0) {
		h = s->hm_hash;
		goto found;
	}
	pthread_once(&md5_once, md5_fetch);
	if (md5_method == NULL)
		return ERR_FAIL;
	if (s->md5 == NULL && (s->md5 = EVP_MD_CTX_new()) == NULL)
		return ERR_NOMEM;
	if (EVP_DigestInit_ex((EVP_MD_CTX *)s->md5, md5_method, NULL) != 1 ||
	    EVP_DigestUpdate((EVP_MD_CTX *)s->md5, val, vlen) != 1 ||
	    EVP_DigestFinal_ex((EVP_MD_CTX *)s->md5, md, &mdlen) != 1 ||
	    mdlen != 16)
		return ERR_FAIL;
	for (int i = 8; i < 16; i++)
		h = h << 8 | md[i];
	s->hm_valid = 0;
	if ((s->hm_key != NULL && vlen <= s->hm_cap) ||
	    (vlen <= 4096 && (d = realloc(s->hm_key, vlen + 64)) != NULL &&
	     (s->hm_key = d, s->hm_cap = vlen + 64))) {
		memcpy(s->hm_key, val, vlen);
		s->hm_klen = vlen;
		s->hm_hash = h;
		s->hm_valid = 1;
	}
found:
	h %= r->modulus;
	do {
		digits[sizeof(digits) - ++len] = (uint8_t)('0' + h % 10);
		h /= 10;
	} while (h > 0);
	if ((d = arena_alloc(s, len)) == NULL)
		return ERR_NOMEM;
	memcpy(d, digits + sizeof(digits) - len, len);
	return label_set(ls, n, cap, r->target.p, r->target.n, d, len);
}

/* C.UTF-8's case mapping (Unicode's simple one, as Go's unicode.ToLower
 * and ToUpper), made once. */
static locale_t utf8_locale;
static pthread_once_t utf8_once = PTHREAD_ONCE_INIT;

static void utf8_locale_new(void)
{
	utf8_locale = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
}

/* Reads the UTF-8 character at p[0..n) (n > 0) into *cp. Returns its
 * length, or 0 when it is not a well-formed one. */
static size_t utf8_get(const uint8_t *p, size_t n, uint32_t *cp)
{
	size_t k = p[0] >= 0xf0 ? 4 : p[0] >= 0xe0 ? 3 : p[0] >= 0xc0 ? 2 : 0;
	uint32_t c = p[0] & (0x7f >> k);

	if (k == 0 || k > n || p[0] > 0xf4)
		return 0;
	for (size_t i = 1; i < k; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		c = c << 6 | (p[i] & 0x3f);
	}
	*cp = c;
	return k;
}

/* Writes cp as UTF-8 at d; returns its length (1 to 4). */
static size_t utf8_put(uint8_t *d, uint32_t cp)
{
	if (cp < 0x80) {
		d[0] = (uint8_t)cp;
		return 1;
	}
	if (cp < 0x800) {
		d[0] = (uint8_t)(0xc0 | cp >> 6);
		d[1] = (uint8_t)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		d[0] = (uint8_t)(0xe0 | cp >> 12);
		d[1] = (uint8_t)(0x80 | (cp >> 6 & 0x3f));
		d[2] = (uint8_t)(0x80 | (cp & 0x3f));
		return 3;
	}
	d[0] = (uint8_t)(0xf0 | cp >> 18);
	d[1] = (uint8_t)(0x80 | (cp >> 12 & 0x3f));
	d[2] = (uint8_t)(0x80 | (cp >> 6 & 0x3f));
	d[3] = (uint8_t)(0x80 | (cp & 0x3f));
	return 4;
}

/* lowercase and uppercase, as Prometheus 2.42 does them: target_label set
 * to the joined value mapped as Go's strings.ToLower / ToUpper (each
 * character by Unicode's simple case mapping; an empty result removes the
 * label). A mapped character takes at most 3/2 of the bytes it had (a
 * 2-byte one may become 3), so 2 * vlen bytes hold the result. */
static int do_case(const struct relabel_rule *r, struct relabel_label *ls,
		   size_t *n, size_t cap, struct relabel_scratch *s,
		   const uint8_t *val, size_t vlen)
{
	int upper = r->action == RA_UPPERCASE;
	uint8_t *out, *d, c;
	size_t i = 0, k;
	uint32_t cp;

	if ((out = d = arena_alloc(s, 2 * vlen + 4)) == NULL)
		return ERR_NOMEM;
	while (i < vlen) {
		c = val[i];
		if (c < 0x80) {
			if (upper ? c >= 'a' && c <= 'z' : c >= 'A' && c <= 'Z')
				c ^= 0x20;
			*d++ = c;
			i++;
			continue;
		}
		if ((k = utf8_get(val + i, vlen - i, &cp)) == 0) {
			*d++ = c;        /* not UTF-8: left as it is */
			i++;
			continue;
		}
		pthread_once(&utf8_once, utf8_locale_new);
		if (utf8_locale != (locale_t)0)
			cp = (uint32_t)(upper ? towupper_l((wint_t)cp, utf8_locale) :
					towlower_l((wint_t)cp, utf8_locale));
		if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			utf8_get(val + i, vlen - i, &cp);
		d += utf8_put(d, cp);
		i += k;
	}
	return label_set(ls, n, cap, r->target.p, r->target.n, out,
			 (size_t)(d - out));
}

static int do_labelmap(const struct relabel_rule *r, struct relabel_label *ls,
		       size_t *n, size_t cap, struct relabel_scratch *s)
{
	size_t np = 0, i;
	struct match m;
	int rc;

	if (s->pend_cap < *n) {
		struct relabel_label *p = realloc(s->pend, *n * sizeof(*p));
		if (p == NULL)
			return ERR_NOMEM;
		s->pend = p;
		s->pend_cap = *n;
	}
	for (i = 0; i < *n; i++) {
		struct relabel_label *p = &s->pend[np];

		if (rx_cannot(r, ls[i].name, ls[i].nlen))
			continue;
		if ((rc = rx_match(r, ls[i].name, ls[i].nlen, s, &m)) < 0)
			return rc;
		if (rc == 0)
			continue;
		if ((p->name = expand(&r->replacement_t, &m, s, &p->nlen)) == NULL)
			return ERR_NOMEM;
		p->value = ls[i].value;
		p->vlen = ls[i].vlen;
		np++;
	}
	for (i = 0; i < np; i++)
		if ((rc = label_set(ls, n, cap, s->pend[i].name, s->pend[i].nlen,
				    s->pend[i].value, s->pend[i].vlen)) < 0)
			return rc;
	return 0;
}

/* labeldrop (keep_matching 0) and labelkeep (1). */
static int do_labelfilter(const struct relabel_rule *r,
			  struct relabel_label *ls, size_t *n,
			  struct relabel_scratch *s, int keep_matching)
{
	size_t i, j = 0;
	struct match m;
	int rc;

	for (i = 0; i < *n; i++) {
		if (rx_cannot(r, ls[i].name, ls[i].nlen))
			rc = 0;
		else if ((rc = rx_match(r, ls[i].name, ls[i].nlen, s, &m)) < 0)
			return rc;
		if (rc == keep_matching && j++ != i)
			ls[j - 1] = ls[i];
	}
	*n = j;
	return 0;
}

/* One rule. Returns 0 keep, 1 dropped, or an ERR_* code. */
static int apply_rule(const struct relabel_rule *r, struct relabel_label *ls,
		      size_t *n, size_t cap, struct relabel_scratch *s)
{
	const uint8_t *val = (const uint8_t *)"", *cur;
	size_t vlen = 0, clen;
	struct match m;
	int rc;

	if (r->nsrc > 0 && (val = join_sources(r, ls, *n, s, &vlen)) == NULL)
		return ERR_NOMEM;
	switch (r->action) {
	case RA_DROP:
	case RA_KEEP:
		if (rx_cannot(r, val, vlen))
			rc = 0;
		else if ((rc = rx_match(r, val, vlen, s, &m)) < 0)
			return rc;
		return rc == (r->action == RA_DROP);
	case RA_DROPEQUAL:
	case RA_KEEPEQUAL:
		cur = label_get(ls, *n, r->target.p, r->target.n, &clen);
		rc = clen == vlen && memcmp(cur, val, vlen) == 0;
		return rc == (r->action == RA_DROPEQUAL);
	case RA_REPLACE:
		return do_replace(r, ls, n, cap, s, val, vlen);
	case RA_HASHMOD:
		return do_hashmod(r, ls, n, cap, s, val, vlen);
	case RA_LABELMAP:
		return do_labelmap(r, ls, n, cap, s);
	case RA_LABELDROP:
		return do_labelfilter(r, ls, n, s, 0);
	case RA_LABELKEEP:
		return do_labelfilter(r, ls, n, s, 1);
	case RA_LOWERCASE:
	case RA_UPPERCASE:
		return do_case(r, ls, n, cap, s, val, vlen);
	}
	return ERR_FAIL;
}

int relabel_apply(const struct relabel_rules *rs, struct relabel_label *ls,
		  size_t *n, size_t cap, struct relabel_scratch *s)
{
	size_t i, j;
	int rc;

	for (i = 0; rs != NULL && i < rs->n; i++)
		if ((rc = apply_rule(&rs->rule[i], ls, n, cap, s)) != 0)
			return rc;
	for (i = j = 0; i < *n; i++)
		if (ls[i].vlen > 0 && j++ != i)
			ls[j - 1] = ls[i];
	*n = j;
	return 0;
}
