/*
 * relabel_compile.c - a relabel rule made ready once, at load (see
 * relabel_int.h): its regex compiled by PCRE2 (8-bit, UTF mode, JIT) as
 * ^(?:REGEX)$ with $ matching only at the very end, as Go's regexp (RE2
 * syntax) anchors Prometheus' patterns; a regex of plain alternatives
 * (with an optional "(.*)"/"(.+)" end) kept as a set of literals that
 * relabel.c matches without PCRE2; replacement and target templates split
 * into literal parts and $ references.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "relabel_int.h"

#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "labels.h"

static int is_word(uint8_t c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '_';
}

/* Length of a $ reference at s[0..n) (s[0] == '$'), as the target regex
 * \$(?:\{\w+\}|\w+) takes it; 0 when there is none. */
static size_t target_ref(const uint8_t *s, size_t n)
{
	size_t i = 1;

	if (n > 1 && s[1] == '{') {
		for (i = 2; i < n && is_word(s[i]); i++)
			;
		return i > 2 && i < n && s[i] == '}' ? i + 1 : 0;
	}
	while (i < n && is_word(s[i]))
		i++;
	return i > 1 ? i : 0;
}

int relabel_target_valid(const uint8_t *s, size_t n)
{
	size_t i = 0, k;

	if (n == 0)
		return 0;
	if (s[0] == '$') {
		if ((k = target_ref(s, n)) == 0)
			return 0;
		i = k;
	} else if (!is_word(s[0]) || (s[0] >= '0' && s[0] <= '9')) {
		return 0;
	}
	while (i < n) {
		if (s[i] == '$') {
			if ((k = target_ref(s + i, n - i)) == 0)
				return 0;
			i += k;
		} else if (is_word(s[i])) {
			i++;
		} else {
			return 0;
		}
	}
	return 1;
}

/* The group a reference name stands for, as Go's Regexp.Expand reads it:
 * a number without leading zeros, or a named group (the first of that
 * name); -1 when the regex has none. */
static int ref_group(const struct relabel_rule *r, const uint8_t *name,
		     size_t n)
{
	char buf[256];
	long num = 0;
	size_t i;
	int rc;

	for (i = 0; i < n && name[i] >= '0' && name[i] <= '9' && num < 100000000;
	     i++)
		num = num * 10 + (name[i] - '0');
	if (i == n && !(name[0] == '0' && n > 1))
		return num <= (long)r->groups ? (int)num : -1;
	if (r->rx != RX_PCRE || n >= sizeof(buf))
		return -1;
	memcpy(buf, name, n);
	buf[n] = '\0';
	rc = pcre2_substring_number_from_name((const pcre2_code *)r->code,
					      (PCRE2_SPTR)buf);
	if (rc == PCRE2_ERROR_NOUNIQUESUBSTRING) {
		/* Several groups of that name: Go takes the first. */
		PCRE2_SPTR first, last;
		int size = pcre2_substring_nametable_scan(
			(const pcre2_code *)r->code, (PCRE2_SPTR)buf, &first, &last);
		(void)size;
		rc = (first[0] << 8) | first[1];
	}
	return rc > 0 ? rc : -1;
}

/* Splits template s into text and $ references (Go's Regexp.Expand:
 * $$ is a $, $name or ${name} takes the longest run of letters, digits
 * and _, a $ that starts no reference stays as it is). */
static int tmpl_compile(const struct relabel_rule *r,
			const struct relabel_str *s, struct relabel_tmpl *t)
{
	const uint8_t *p = s->p, *end = s->p + s->n;

	t->parts = calloc(s->n + 1, sizeof(*t->parts));
	if (t->parts == NULL)
		return -1;
	while (p < end) {
		const uint8_t *d = memchr(p, '$', (size_t)(end - p)), *nm;
		struct relabel_part *q;
		size_t k;
		int brace;

		if (d == NULL)
			d = end;
		if (d > p) {
			q = &t->parts[t->nparts++];
			q->text = p;
			q->n = (size_t)(d - p);
		}
		if (d == end)
			break;
		p = d + 1;
		if (p < end && *p == '$') {
			q = &t->parts[t->nparts++];
			q->text = p++;
			q->n = 1;
			continue;
		}
		brace = p < end && *p == '{';
		nm = p + brace;
		for (k = 0; nm + k < end && is_word(nm[k]); k++)
			;
		if (k == 0 || (brace && (nm + k >= end || nm[k] != '}'))) {
			q = &t->parts[t->nparts++];
			q->text = d;
			q->n = 1;
			continue;
		}
		q = &t->parts[t->nparts++];
		q->group = ref_group(r, nm, k);
		t->has_group = 1;
		p = nm + k + brace;
	}
	return 0;
}

/* Whether p[0..n) is plain characters, which match only themselves. */
static int plain(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strchr("\\^$.|?*+()[]{}", p[i]) != NULL || p[i] == '\0')
			return 0;
	return 1;
}

/* Adds the alternative p[0..n) ("lit", "lit.*", "lit.+", ".*lit" or
 * ".+lit") to r's set. Returns 0, or -1 when it is not of that shape. */
static int set_add(struct relabel_rule *r, const uint8_t *p, size_t n)
{
	struct relabel_alt *a = &r->alts[r->nalts];

	a->rest = a->head = 0;
	if (n >= 2 && p[n - 2] == '.' && (p[n - 1] == '*' || p[n - 1] == '+')) {
		a->rest = p[n - 1] == '*' ? 1 : 2;
		n -= 2;
	} else if (n >= 2 && p[0] == '.' && (p[1] == '*' || p[1] == '+')) {
		a->head = p[1] == '*' ? 1 : 2;
		p += 2;
		n -= 2;
	}
	if (!plain(p, n))
		return -1;
	a->lit = p;
	a->n = n;
	r->nalts++;
	return 0;
}

/*
 * Reads r->regex as a set when it is one: alternatives "lit", "lit.*" or
 * "lit.+" joined by |, the whole maybe in one group; or "lit(.*)" /
 * "lit(.+)", its group the rest. Returns 1 (r->rx is RX_SET), 0 when the
 * pattern is of another shape, -1 when out of memory.
 */
static int set_compile(struct relabel_rule *r)
{
	const uint8_t *p = r->regex.p, *end = p + r->regex.n, *q;
	size_t n = r->regex.n;

	if ((r->alts = calloc(n / 2 + 2, sizeof(*r->alts))) == NULL)
		return -1;
	r->nalts = 0;
	if (n >= 4 && (memcmp(end - 4, "(.*)", 4) == 0 ||
		       memcmp(end - 4, "(.+)", 4) == 0) && plain(p, n - 4)) {
		r->alts[0] = (struct relabel_alt){ p, n - 4,
						   end[-2] == '*' ? 1 : 2, 0 };
		r->nalts = 1;
		r->set_group = SG_REST;
		return 1;
	}
	if (n >= 4 && (memcmp(p, "(.*)", 4) == 0 || memcmp(p, "(.+)", 4) == 0) &&
	    plain(p + 4, n - 4)) {
		r->alts[0] = (struct relabel_alt){ p + 4, n - 4, 0,
						   p[2] == '*' ? 1 : 2 };
		r->nalts = 1;
		r->set_group = SG_HEAD;
		return 1;
	}
	r->set_group = SG_NONE;
	if (n >= 2 && p[0] == '(' && end[-1] == ')') {
		p++;
		end--;
		r->set_group = SG_WHOLE;
	}
	for (q = p;; q++) {
		if (q == end || *q == '|') {
			if (set_add(r, p, (size_t)(q - p)) < 0) {
				r->nalts = 0;
				return 0;
			}
			if (q == end)
				break;
			p = q + 1;
		}
	}
	return 1;
}

int relabel_rule_compile(struct relabel_rule *r, char *why, size_t whylen)
{
	PCRE2_UCHAR msg[256];
	PCRE2_SIZE off;
	uint32_t groups = 0;
	size_t plen = r->regex.n + 6;
	char *pat;
	int rc;

	if ((rc = set_compile(r)) < 0) {
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	if (rc == 1) {
		r->rx = RX_SET;
		r->groups = r->set_group != SG_NONE;
	} else {
		r->rx = RX_PCRE;
		if ((pat = malloc(plen + 1)) == NULL) {
			snprintf(why, whylen, "out of memory");
			return -1;
		}
		/* memcpy: a YAML escape may put a NUL in the pattern */
		memcpy(pat, "^(?:", 4);
		memcpy(pat + 4, r->regex.p, r->regex.n);
		memcpy(pat + 4 + r->regex.n, ")$", 2);
		r->code = pcre2_compile((PCRE2_SPTR)pat, plen,
					PCRE2_UTF | PCRE2_DOLLAR_ENDONLY |
					PCRE2_NEVER_BACKSLASH_C,
					&rc, &off, NULL);
		free(pat);
		if (r->code == NULL) {
			pcre2_get_error_message(rc, msg, sizeof(msg));
			snprintf(why, whylen,
				 "regex \"%s\": %s at offset %zu",
				 (const char *)r->regex.p, (const char *)msg,
				 off < 4 ? 0 : off - 4 > r->regex.n ?
				 r->regex.n : (size_t)off - 4);
			return -1;
		}
		r->jit = pcre2_jit_compile((pcre2_code *)r->code,
					   PCRE2_JIT_COMPLETE) == 0;
		pcre2_pattern_info((pcre2_code *)r->code,
				   PCRE2_INFO_CAPTURECOUNT, &groups);
		r->groups = groups;
	}
	if (tmpl_compile(r, &r->target, &r->target_t) < 0 ||
	    tmpl_compile(r, &r->replacement, &r->replacement_t) < 0) {
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	r->match_all = r->rx == RX_SET && r->nalts == 1 &&
		       r->alts[0].n == 0 && r->alts[0].rest == 1 &&
		       r->alts[0].head == 0 && r->set_group != SG_HEAD;
	r->target_static = !r->target_t.has_group &&
			   labels_name_valid(r->target.p, r->target.n);
	r->first_on = r->rx == RX_SET;
	for (size_t i = 0; i < r->nalts && r->first_on; i++) {
		const struct relabel_alt *a = &r->alts[i];

		r->first_on = a->head == 0 && a->n > 0;
		if (r->first_on)
			r->first[a->lit[0] >> 6] |= 1ull << (a->lit[0] & 63);
	}
	return 0;
}

void relabel_rule_free(struct relabel_rule *r)
{
	for (size_t i = 0; i < r->nsrc; i++)
		free(r->src[i].p);
	free(r->src);
	free(r->sep.p);
	free(r->regex.p);
	free(r->target.p);
	free(r->replacement.p);
	free(r->target_t.parts);
	free(r->replacement_t.parts);
	free(r->alts);
	pcre2_code_free((pcre2_code *)r->code);
	memset(r, 0, sizeof(*r));
}

void relabel_free(struct relabel_rules *rs)
{
	if (rs == NULL)
		return;
	for (size_t i = 0; i < rs->n; i++)
		relabel_rule_free(&rs->rule[i]);
	free(rs->rule);
	free(rs->file);
	free(rs);
}

size_t relabel_count(const struct relabel_rules *rs)
{
	return rs != NULL ? rs->n : 0;
}

const char *relabel_file(const struct relabel_rules *rs)
{
	return rs != NULL ? rs->file : NULL;
}
