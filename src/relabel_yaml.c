/*
 * relabel_yaml.c - reads a relabel rules file (see relabel.h) with
 * libyaml's document loader, which keeps each node's line, and holds each
 * entry to the defaults and checks of Prometheus 2.42's relabel.Config
 * (strict: an unknown or repeated key is an error). Every reason names
 * the file and the line of the node at fault: "FILE:LINE: reason".
 */
#include "relabel_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#include "labels.h"

#define RULES_FILE_MAX (16u << 20)

struct loader {
	const char *name;            /* ref: the file, for reasons */
	yaml_document_t *doc;        /* ref */
	char *err;                   /* ref */
	size_t errlen;
};

/* Writes "FILE:LINE: reason" into l->err. Returns -1. */
__attribute__((format(printf, 3, 4)))
static int fail(struct loader *l, unsigned line, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (l->err == NULL || l->errlen == 0)
		return -1;
	if (line > 0)
		n = snprintf(l->err, l->errlen, "%s:%u: ", l->name, line);
	else
		n = snprintf(l->err, l->errlen, "%s: ", l->name);
	if (n < 0 || (size_t)n >= l->errlen)
		return -1;
	va_start(ap, fmt);
	vsnprintf(l->err + n, l->errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return -1;
}

static unsigned line_of(const yaml_node_t *node)
{
	return (unsigned)node->start_mark.line + 1;
}

/* Whether a scalar is YAML's null (which yaml.v2 reads into a string
 * field as ""). */
static int is_null(const yaml_node_t *node)
{
	const char *v = (const char *)node->data.scalar.value;

	return node->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
	       (*v == '\0' || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 ||
		strcmp(v, "Null") == 0 || strcmp(v, "NULL") == 0);
}

/* Copies a scalar into *dst (null: ""). Returns 0 or -1. */
static int get_string(struct loader *l, const yaml_node_t *node,
		      const char *key, struct relabel_str *dst)
{
	const char *v;

	if (node->type != YAML_SCALAR_NODE)
		return fail(l, line_of(node), "%s: expected a string", key);
	v = is_null(node) ? "" : (const char *)node->data.scalar.value;
	free(dst->p);
	dst->n = is_null(node) ? 0 : node->data.scalar.length;
	if ((dst->p = malloc(dst->n + 1)) == NULL)
		return fail(l, line_of(node), "out of memory");
	memcpy(dst->p, v, dst->n);
	dst->p[dst->n] = '\0';
	return 0;
}

static int get_modulus(struct loader *l, const yaml_node_t *node,
		       uint64_t *out)
{
	const char *v = (const char *)node->data.scalar.value;
	uint64_t m = 0;

	if (node->type != YAML_SCALAR_NODE)
		return fail(l, line_of(node), "modulus: expected a number");
	if (is_null(node)) {
		*out = 0;
		return 0;
	}
	if (*v == '+')
		v++;
	if (*v == '\0' || v[strspn(v, "0123456789")] != '\0')
		return fail(l, line_of(node),
			    "modulus: \"%s\" is not a non-negative integer",
			    (const char *)node->data.scalar.value);
	for (; *v != '\0'; v++) {
		if (m > (UINT64_MAX - (uint64_t)(*v - '0')) / 10)
			return fail(l, line_of(node), "modulus: too large");
		m = m * 10 + (uint64_t)(*v - '0');
	}
	*out = m;
	return 0;
}

static int get_sources(struct loader *l, const yaml_node_t *node,
		       struct relabel_rule *r)
{
	yaml_node_item_t *it;
	size_t n = 0;

	if (node->type == YAML_SCALAR_NODE && is_null(node))
		return 0;
	if (node->type != YAML_SEQUENCE_NODE)
		return fail(l, line_of(node),
			    "source_labels: expected a list of label names");
	n = (size_t)(node->data.sequence.items.top -
		     node->data.sequence.items.start);
	if ((r->src = calloc(n + 1, sizeof(*r->src))) == NULL)
		return fail(l, line_of(node), "out of memory");
	for (it = node->data.sequence.items.start;
	     it < node->data.sequence.items.top; it++) {
		yaml_node_t *e = yaml_document_get_node(l->doc, *it);
		struct relabel_str *s = &r->src[r->nsrc];

		if (get_string(l, e, "source_labels", s) < 0)
			return -1;
		r->nsrc++;
		if (!labels_name_valid(s->p, s->n))
			return fail(l, line_of(e), "\"%s\" is not a valid label name",
				    (const char *)s->p);
	}
	return 0;
}

enum { K_SOURCE, K_SEP, K_REGEX, K_MODULUS, K_TARGET, K_REPLACEMENT,
       K_ACTION, K_COUNT };
static const char *const key_names[K_COUNT] = {
	"source_labels", "separator", "regex", "modulus", "target_label",
	"replacement", "action"
};

static const char *const action_names[] = {
	[RA_REPLACE] = "replace",     [RA_KEEP] = "keep",
	[RA_DROP] = "drop",           [RA_KEEPEQUAL] = "keepequal",
	[RA_DROPEQUAL] = "dropequal", [RA_HASHMOD] = "hashmod",
	[RA_LABELMAP] = "labelmap",   [RA_LABELDROP] = "labeldrop",
	[RA_LABELKEEP] = "labelkeep", [RA_LOWERCASE] = "lowercase",
	[RA_UPPERCASE] = "uppercase"
};

static int get_action(struct loader *l, const yaml_node_t *node,
		      struct relabel_rule *r, int *empty)
{
	struct relabel_str s = {0};
	size_t i;

	if (get_string(l, node, "action", &s) < 0)
		return -1;
	*empty = s.n == 0;
	for (i = 0; i < sizeof(action_names) / sizeof(action_names[0]); i++)
		if (strcasecmp((const char *)s.p, action_names[i]) == 0)
			break;
	if (*empty || i < sizeof(action_names) / sizeof(action_names[0])) {
		r->action = *empty ? RA_REPLACE : (enum relabel_action)i;
		free(s.p);
		return 0;
	}
	fail(l, line_of(node), "unknown relabel action \"%s\"",
	     (const char *)s.p);
	free(s.p);
	return -1;
}

static int str_is(const struct relabel_str *s, const char *v)
{
	return s->n == strlen(v) && memcmp(s->p, v, s->n) == 0;
}

/* The checks of Prometheus 2.42's Config.UnmarshalYAML, on one entry. */
static int rule_check(struct loader *l, const struct relabel_rule *r,
		      const unsigned *seen, int action_empty)
{
	const char *a = action_names[r->action];
	int has_target = r->action == RA_REPLACE || r->action == RA_HASHMOD ||
			 r->action == RA_KEEPEQUAL || r->action == RA_DROPEQUAL ||
			 r->action == RA_LOWERCASE || r->action == RA_UPPERCASE;
	int casing = r->action == RA_LOWERCASE || r->action == RA_UPPERCASE;

	if (action_empty)
		return fail(l, seen[K_ACTION], "relabel action cannot be empty");
	if (r->action == RA_HASHMOD && r->modulus == 0)
		return fail(l, r->line, "relabel configuration for hashmod "
			    "requires non-zero modulus");
	if (has_target && r->target.n == 0)
		return fail(l, r->line, "relabel configuration for %s action "
			    "requires 'target_label' value", a);
	/* replace takes a template ($1, ${name}); keepequal and dropequal,
	 * as lowercase and uppercase below, a label name (Prometheus'
	 * LabelName.IsValid). */
	if ((r->action == RA_REPLACE &&
	     !relabel_target_valid(r->target.p, r->target.n)) ||
	    ((r->action == RA_KEEPEQUAL || r->action == RA_DROPEQUAL) &&
	     !labels_name_valid(r->target.p, r->target.n)))
		return fail(l, seen[K_TARGET], "\"%s\" is invalid 'target_label' "
			    "for %s action", (const char *)r->target.p, a);
	if ((r->action == RA_KEEPEQUAL || r->action == RA_DROPEQUAL) &&
	    !str_is(&r->replacement, "$1"))
		return fail(l, seen[K_REPLACEMENT], "'replacement' can not be set "
			    "for %s action", a);
	if (casing && !labels_name_valid(r->target.p, r->target.n))
		return fail(l, seen[K_TARGET], "\"%s\" is invalid 'target_label' "
			    "for %s action", (const char *)r->target.p, a);
	if (casing && !str_is(&r->replacement, "$1"))
		return fail(l, seen[K_REPLACEMENT], "'replacement' can not be set "
			    "for %s action", a);
	if (r->action == RA_LABELMAP &&
	    !relabel_target_valid(r->replacement.p, r->replacement.n))
		return fail(l, seen[K_REPLACEMENT] ? seen[K_REPLACEMENT] : r->line,
			    "\"%s\" is invalid 'replacement' for %s action",
			    (const char *)r->replacement.p, a);
	if (r->action == RA_HASHMOD &&
	    !labels_name_valid(r->target.p, r->target.n))
		return fail(l, seen[K_TARGET], "\"%s\" is invalid 'target_label' "
			    "for %s action", (const char *)r->target.p, a);
	if ((r->action == RA_KEEPEQUAL || r->action == RA_DROPEQUAL) &&
	    (seen[K_REGEX] || r->modulus != 0 || !str_is(&r->sep, ";")))
		return fail(l, r->line, "%s action requires only 'source_labels' "
			    "and `target_label`, and no other fields", a);
	if ((r->action == RA_LABELDROP || r->action == RA_LABELKEEP) &&
	    (seen[K_SOURCE] || r->target.n != 0 || r->modulus != 0 ||
	     !str_is(&r->sep, ";") || !str_is(&r->replacement, "$1")))
		return fail(l, r->line, "%s action requires only 'regex', and no "
			    "other fields", a);
	return 0;
}

/* Sets the defaults of an entry: replace, ";", "(.*)", "$1". */
static int rule_defaults(struct relabel_rule *r)
{
	struct { struct relabel_str *s; const char *v; } d[] = {
		{ &r->sep, ";" }, { &r->regex, "(.*)" },
		{ &r->replacement, "$1" }, { &r->target, "" }
	};

	r->action = RA_REPLACE;
	for (size_t i = 0; i < sizeof(d) / sizeof(d[0]); i++) {
		d[i].s->n = strlen(d[i].v);
		if ((d[i].s->p = (uint8_t *)strdup(d[i].v)) == NULL)
			return -1;
	}
	return 0;
}

/* Reads one list entry into r. Returns 0 or -1. */
static int rule_read(struct loader *l, const yaml_node_t *node,
		     struct relabel_rule *r)
{
	unsigned seen[K_COUNT] = {0};
	yaml_node_pair_t *pr;
	int action_empty = 0, rc = 0, k;
	char why[512];

	r->line = line_of(node);
	if (rule_defaults(r) < 0)
		return fail(l, r->line, "out of memory");
	if (node->type != YAML_MAPPING_NODE)
		return fail(l, r->line, "expected a relabel_config mapping");
	for (pr = node->data.mapping.pairs.start;
	     pr < node->data.mapping.pairs.top && rc == 0; pr++) {
		yaml_node_t *key = yaml_document_get_node(l->doc, pr->key);
		yaml_node_t *val = yaml_document_get_node(l->doc, pr->value);
		const char *kn = key->type == YAML_SCALAR_NODE ?
				 (const char *)key->data.scalar.value : "";

		for (k = 0; k < K_COUNT && strcmp(kn, key_names[k]) != 0; k++)
			;
		if (k == K_COUNT)
			return fail(l, line_of(key), "unknown field \"%s\" in "
				    "relabel_config", kn);
		if (seen[k])
			return fail(l, line_of(key), "field \"%s\" set twice (first "
				    "on line %u)", kn, seen[k]);
		seen[k] = line_of(val);
		switch (k) {
		case K_SOURCE: rc = get_sources(l, val, r); break;
		case K_SEP: rc = get_string(l, val, kn, &r->sep); break;
		case K_REGEX: rc = get_string(l, val, kn, &r->regex); break;
		case K_MODULUS: rc = get_modulus(l, val, &r->modulus); break;
		case K_TARGET: rc = get_string(l, val, kn, &r->target); break;
		case K_REPLACEMENT:
			rc = get_string(l, val, kn, &r->replacement);
			break;
		default: rc = get_action(l, val, r, &action_empty); break;
		}
	}
	if (rc < 0 || rule_check(l, r, seen, action_empty) < 0)
		return -1;
	if (relabel_rule_compile(r, why, sizeof(why)) < 0)
		return fail(l, seen[K_REGEX] ? seen[K_REGEX] : r->line, "%s", why);
	return 0;
}

/* Reads the document's root: a list of entries (or nothing at all). */
static int rules_read(struct loader *l, struct relabel_rules *rs)
{
	yaml_node_t *root = yaml_document_get_root_node(l->doc);
	yaml_node_item_t *it;
	size_t n;

	if (root == NULL || (root->type == YAML_SCALAR_NODE && is_null(root)))
		return 0;
	if (root->type != YAML_SEQUENCE_NODE)
		return fail(l, line_of(root), "expected a list of relabel_config "
			    "entries");
	n = (size_t)(root->data.sequence.items.top -
		     root->data.sequence.items.start);
	if ((rs->rule = calloc(n + 1, sizeof(*rs->rule))) == NULL)
		return fail(l, line_of(root), "out of memory");
	for (it = root->data.sequence.items.start;
	     it < root->data.sequence.items.top; it++)
		if (rule_read(l, yaml_document_get_node(l->doc, *it),
			      &rs->rule[rs->n++]) < 0)
			return -1;
	return 0;
}

struct relabel_rules *relabel_load_buf(const char *name, const char *text,
				       size_t len, char *err, size_t errlen)
{
	struct loader l = { .name = name, .err = err, .errlen = errlen };
	struct relabel_rules *rs = calloc(1, sizeof(*rs));
	yaml_parser_t parser;
	yaml_document_t doc, extra;
	int ok = 0;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (rs == NULL || (rs->file = strdup(name)) == NULL) {
		free(rs);
		fail(&l, 0, "out of memory");
		return NULL;
	}
	if (!yaml_parser_initialize(&parser)) {
		relabel_free(rs);
		fail(&l, 0, "out of memory");
		return NULL;
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	if (!yaml_parser_load(&parser, &doc)) {
		fail(&l, (unsigned)parser.problem_mark.line + 1, "YAML: %s%s%s",
		     parser.problem ? parser.problem : "cannot parse",
		     parser.context ? " " : "",
		     parser.context ? parser.context : "");
		yaml_parser_delete(&parser);
		relabel_free(rs);
		return NULL;
	}
	l.doc = &doc;
	if (rules_read(&l, rs) == 0) {
		ok = 1;
		if (yaml_document_get_root_node(&doc) != NULL) {
			/* A second document is refused: one list per file. */
			if (!yaml_parser_load(&parser, &extra)) {
				ok = fail(&l, (unsigned)parser.problem_mark.line + 1,
					  "YAML: %s", parser.problem ?
					  parser.problem : "cannot parse") + 1;
			} else {
				if (yaml_document_get_root_node(&extra) != NULL)
					ok = fail(&l, (unsigned)extra.start_mark.line + 1,
						  "more than one YAML document") + 1;
				yaml_document_delete(&extra);
			}
		}
	}
	yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
	if (!ok) {
		relabel_free(rs);
		return NULL;
	}
	return rs;
}

struct relabel_rules *relabel_load(const char *path, char *err, size_t errlen)
{
	struct loader l = { .name = path, .err = err, .errlen = errlen };
	struct relabel_rules *rs;
	char *text = NULL;
	size_t len = 0;
	FILE *f;
	long sz;

	if ((f = fopen(path, "rb")) == NULL) {
		fail(&l, 0, "cannot open: %s", strerror(errno));
		return NULL;
	}
	if (fseek(f, 0, SEEK_END) != 0 || (sz = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET) != 0) {
		fail(&l, 0, "cannot read: %s", strerror(errno));
		fclose(f);
		return NULL;
	}
	if ((unsigned long)sz > RULES_FILE_MAX) {
		fail(&l, 0, "larger than %u bytes", RULES_FILE_MAX);
		fclose(f);
		return NULL;
	}
	if ((text = malloc((size_t)sz + 1)) == NULL) {
		fail(&l, 0, "out of memory");
		fclose(f);
		return NULL;
	}
	len = fread(text, 1, (size_t)sz, f);
	if (ferror(f)) {
		fail(&l, 0, "cannot read: %s", strerror(errno));
		fclose(f);
		free(text);
		return NULL;
	}
	fclose(f);
	rs = relabel_load_buf(path, text, len, err, errlen);
	free(text);
	return rs;
}
