/*
 * relabel.h - Prometheus relabel rules (relabel_config), applied to the
 * labels of each series at the door, before the tenant label is set.
 *
 * A rules file is a YAML list of relabel_config entries, written exactly
 * as in Prometheus' metric_relabel_configs or vmagent's
 * -remoteWrite.relabelConfig. relabel_yaml.c reads it (libyaml) into
 * struct relabel_rules with the defaults and checks of Prometheus 2.42;
 * relabel.c applies the rules (regular expressions by PCRE2 with its JIT,
 * MD5 by OpenSSL's libcrypto).
 *
 *   action        replace (default), keep, drop, keepequal, dropequal,
 *                 hashmod, labelmap, labeldrop, labelkeep, lowercase,
 *                 uppercase (any case)
 *   source_labels names whose values are joined by separator (";")
 *   regex         "(.*)", anchored at both ends: ^(?:REGEX)$
 *   target_label  replace (may hold $1, ${name}), hashmod, *equal
 *   replacement   "$1"; $1, ${1}, $name, ${name} and $$ as Go's
 *                 Regexp.Expand
 *   modulus       hashmod: MD5 of the joined values, its last 8 bytes as
 *                 a big-endian integer, modulo modulus
 *
 *   lowercase / uppercase: target_label set to the joined value with
 *                 each character mapped by Unicode's simple case mapping
 *                 (as Go's strings.ToLower / ToUpper)
 *
 * The rules are immutable once loaded and may be shared by any number of
 * threads; each thread brings its own struct relabel_scratch.
 */
#ifndef RELAY_RELABEL_H
#define RELAY_RELABEL_H

#include <stddef.h>
#include <stdint.h>

/* One label; the strings are not NUL-terminated and are borrowed. */
struct relabel_label {
	const uint8_t *name;
	size_t nlen;
	const uint8_t *value;
	size_t vlen;
};

struct relabel_rules;            /* opaque; relabel.c */
struct relabel_arena_block;

/* A thread's working memory for relabel_apply. */
struct relabel_scratch {
	struct relabel_arena_block *blocks; /* owned: strings made by rules */
	void *match;                 /* owned: pcre2_match_data_8 */
	unsigned match_pairs;        /* its capacity, in capture pairs */
	void *md5;                   /* owned: EVP_MD_CTX */
	struct relabel_label *pend;  /* owned: labelmap's pending labels */
	size_t pend_cap;
	/* hashmod's last hash: series of one target come together and
	 * share the values hashed (instance), so one entry saves most MD5s */
	int hm_valid;
	uint8_t *hm_key;             /* owned: the value hashed */
	size_t hm_klen, hm_cap;
	uint64_t hm_hash;            /* its MD5's last 8 bytes */
};

/*
 * Reads the rules file at path. Returns the rules (the caller frees them
 * with relabel_free), or NULL with "FILE:LINE: reason" in err (or
 * "FILE: reason" when no line applies, e.g. it cannot be opened).
 */
struct relabel_rules *relabel_load(const char *path, char *err,
				   size_t errlen);

/* The same from a buffer; name stands for the file in reasons. */
struct relabel_rules *relabel_load_buf(const char *name, const char *text,
				       size_t len, char *err, size_t errlen);

void relabel_free(struct relabel_rules *r);

/* How many rules r holds (0 for NULL). */
size_t relabel_count(const struct relabel_rules *r);

/* The file the rules were read from (ref; valid while r lives). */
const char *relabel_file(const struct relabel_rules *r);

/*
 * Applies the rules in order to ls[0..*n), sorted by name, names unique,
 * values valid UTF-8. Returns 0 keep: ls[0..*n) then holds the result,
 * sorted by name, without labels whose value is empty; its strings point
 * into the input, into the rules or into s, valid until relabel_scratch_reset
 * (or the end of the rules). Returns 1 when a rule dropped the series, or
 * ERR_FULL when the result would need more than cap labels, ERR_NOMEM when
 * memory is short (ls is then unspecified).
 */
int relabel_apply(const struct relabel_rules *r, struct relabel_label *ls,
		  size_t *n, size_t cap, struct relabel_scratch *s);

/* A scratch with nothing allocated yet (allocations come on first use). */
void relabel_scratch_init(struct relabel_scratch *s);

/* Ends the life of the strings relabel_apply made; keeps memory to reuse. */
void relabel_scratch_reset(struct relabel_scratch *s);

void relabel_scratch_free(struct relabel_scratch *s);

#endif
