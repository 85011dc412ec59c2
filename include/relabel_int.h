/*
 * relabel_int.h - the loaded form of relabel rules, shared by the loader
 * (relabel_yaml.c) and the engine (relabel.c). Nothing else includes it.
 */
#ifndef RELAY_RELABEL_INT_H
#define RELAY_RELABEL_INT_H

#include <stddef.h>
#include <stdint.h>

#include "relabel.h"

enum relabel_action {
	RA_REPLACE, RA_KEEP, RA_DROP, RA_KEEPEQUAL, RA_DROPEQUAL, RA_HASHMOD,
	RA_LABELMAP, RA_LABELDROP, RA_LABELKEEP, RA_LOWERCASE, RA_UPPERCASE
};

/* How a regex is matched: PCRE2, or without it when the pattern is a set
 * of alternatives each of plain characters, maybe followed or preceded by
 * .* or .+ ("go_.*", "prod|dev", "(.*)", "label_(.+)", "(.*):9100"), as
 * vmagent does too. */
enum relabel_rx { RX_PCRE, RX_SET };

/* One alternative of an RX_SET pattern. */
struct relabel_alt {
	const uint8_t *lit;          /* ref into the rule's regex */
	size_t n;
	int rest;                    /* 0: nothing after lit; 1: .*; 2: .+ */
	int head;                    /* 0: nothing before lit; 1: .*; 2: .+
				      * (an alternative has rest or head) */
};

/* What an RX_SET pattern's one capture group holds. */
enum relabel_set_group { SG_NONE, SG_WHOLE, SG_REST, SG_HEAD };

struct relabel_str {
	uint8_t *p;                  /* owned, NUL-terminated */
	size_t n;
};

/* One piece of a template (target_label or replacement): text, or the
 * capture group of a $ reference (-1: a group the regex does not have,
 * which expands to nothing). */
struct relabel_part {
	const uint8_t *text;         /* ref into the template; NULL: a group */
	size_t n;                    /* text length */
	int group;
};

struct relabel_tmpl {
	struct relabel_part *parts;  /* owned */
	size_t nparts;
	int has_group;               /* some part is a group */
};

struct relabel_rule {
	enum relabel_action action;
	struct relabel_str *src;     /* owned: source_labels */
	size_t nsrc;
	struct relabel_str sep;
	struct relabel_str regex;    /* as written */
	struct relabel_str target;
	struct relabel_str replacement;
	struct relabel_tmpl target_t, replacement_t;
	enum relabel_rx rx;
	void *code;                  /* owned: pcre2_code_8, RX_PCRE only */
	int jit;                     /* code was JIT-compiled */
	struct relabel_alt *alts;    /* owned: RX_SET only */
	size_t nalts;
	enum relabel_set_group set_group;
	unsigned groups;             /* capture groups in regex */
	int match_all;               /* regex is (.*) or .*: matches what has
				      * no newline, group 1 (if any) all */
	int target_static;           /* target is a label name, no $ */
	/* RX_SET whose every alternative starts with a character: the
	 * first bytes they start with (a subject starting otherwise, or
	 * empty, does not match: no need to try the alternatives) */
	int first_on;
	uint64_t first[4];
	uint64_t modulus;
	unsigned line;               /* where the rule starts */
};

struct relabel_rules {
	struct relabel_rule *rule;   /* owned */
	size_t n;
	char *file;                  /* owned */
};

/* Compiles r->regex and r's templates (relabel.c). Returns 0, or -1 with
 * the reason (no FILE:LINE) in why. */
int relabel_rule_compile(struct relabel_rule *r, char *why, size_t whylen);

/* Frees what one rule owns. */
void relabel_rule_free(struct relabel_rule *r);

/* Whether s[0..n) is a target_label as Prometheus 2.42 allows it for
 * replace (a label name where ${x} / $x may stand for characters). */
int relabel_target_valid(const uint8_t *s, size_t n);

#endif
