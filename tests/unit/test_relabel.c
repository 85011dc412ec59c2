/*
 * test_relabel.c - relabel rules: every action against the cases of
 * Prometheus' own relabel tests (model/relabel/relabel_test.go, v2.42),
 * hashmod against known MD5 vectors, Go's template expansion, the
 * 2.42 target_label checks, and rules files refused with FILE:LINE.
 */
#include "err.h"
#include "relabel.h"
#include "relabel_int.h"
#include "unit.h"

#include <stdio.h>
#include <string.h>

#define MAXL 64

/* Labels from "a=foo,b=bar" (sorted as given; values may hold \n). */
static size_t parse(const char *spec, char *store, struct relabel_label *ls)
{
	size_t n = 0;
	char *p;

	strcpy(store, spec);
	for (p = strtok(store, ","); p != NULL; p = strtok(NULL, ",")) {
		char *eq = strchr(p, '=');
		*eq = '\0';
		ls[n].name = (const uint8_t *)p;
		ls[n].nlen = strlen(p);
		ls[n].value = (const uint8_t *)(eq + 1);
		ls[n].vlen = strlen(eq + 1);
		n++;
	}
	return n;
}

static void format(const struct relabel_label *ls, size_t n, char *out)
{
	size_t o = 0;

	out[0] = '\0';
	for (size_t i = 0; i < n; i++)
		o += (size_t)sprintf(out + o, "%s%.*s=%.*s", i ? "," : "",
				     (int)ls[i].nlen, (const char *)ls[i].name,
				     (int)ls[i].vlen, (const char *)ls[i].value);
}

/* Loads yaml, applies it to the labels in spec; "DROP" when dropped,
 * "ERR" when loading or applying failed, else the labels. */
static const char *run(const char *yaml, const char *spec, char *out)
{
	static char store[8192];
	struct relabel_label ls[MAXL];
	struct relabel_scratch s;
	struct relabel_rules *r;
	char err[256];
	size_t n = parse(spec, store, ls);
	int rc;

	if ((r = relabel_load_buf("t.yml", yaml, strlen(yaml), err,
				  sizeof(err))) == NULL) {
		fprintf(stderr, "# %s\n", err);
		return "ERR";
	}
	relabel_scratch_init(&s);
	rc = relabel_apply(r, ls, &n, MAXL, &s);
	if (rc == 1)
		strcpy(out, "DROP");
	else if (rc < 0)
		strcpy(out, "ERR");
	else
		format(ls, n, out);
	relabel_scratch_free(&s);
	relabel_free(r);
	return out;
}

/* The reason a file is refused with ("" when it loads). */
static const char *load_err(const char *yaml, char *err, size_t n)
{
	struct relabel_rules *r = relabel_load_buf("rules.yml", yaml,
						   strlen(yaml), err, n);

	if (r != NULL) {
		relabel_free(r);
		err[0] = '\0';
	}
	return err;
}

static void test_replace(void)
{
	char o[1024];

	CHECK_STR(run("- source_labels: [a]\n  regex: f(.*)\n  target_label: d\n"
		      "  replacement: ch${1}-ch${1}\n", "a=foo,b=bar,c=baz", o),
		  "a=foo,b=bar,c=baz,d=choo-choo");
	CHECK_STR(run("- source_labels: [a, b]\n  regex: f(.*);(.*)r\n"
		      "  target_label: a\n  replacement: b${1}${2}m\n"
		      "- source_labels: [c, a]\n  regex: (b).*b(.*)ba(.*)\n"
		      "  target_label: d\n  replacement: $1$2$2$3\n",
		      "a=foo,b=bar,c=baz", o),
		  "a=boobam,b=bar,c=baz,d=boooom");
	CHECK_STR(run("- source_labels: [a]\n  regex: '.*(b).*'\n  target_label: d\n",
		      "a=abc", o), "a=abc,d=b");
	CHECK_STR(run("- source_labels: [a]\n  regex: f\n  target_label: b\n"
		      "  replacement: bar\n", "a=boo", o), "a=boo");
	/* target_label from the match; bad targets and empty results */
	CHECK_STR(run("- source_labels: [a]\n  regex: some-([^-]+)-([^,]+)\n"
		      "  replacement: ${2}\n  target_label: ${1}\n",
		      "a=some-name-value", o), "a=some-name-value,name=value");
	CHECK_STR(run("- source_labels: [a]\n  regex: some-([^-]+)-([^,]+)\n"
		      "  replacement: ${3}\n  target_label: ${1}\n",
		      "a=some-name-value", o), "a=some-name-value");
	CHECK_STR(run("- source_labels: [a]\n  regex: some-([^-]+)-([^,]+)\n"
		      "  replacement: ${1}\n  target_label: ${3}\n",
		      "a=some-name-value", o), "a=some-name-value");
	/* static value; an empty replacement removes the target */
	CHECK_STR(run("- target_label: env\n  replacement: prod\n", "a=1", o),
		  "a=1,env=prod");
	CHECK_STR(run("- target_label: a\n  replacement: ''\n", "a=1,b=2", o),
		  "b=2");
	/* the source labels absent: joined "" still matches (.*) */
	CHECK_STR(run("- source_labels: [x, y]\n  target_label: z\n"
		      "  replacement: '[$1]'\n", "a=1", o), "a=1,z=[;]");
}

/* The real-life case above with the commas Prometheus' test uses (our
 * spec format splits on commas, so the labels are built by hand). */
static void test_replace_tags(void)
{
	const char *y = "- source_labels: [__meta_sd_tags]\n"
			"  regex: (?:.+,|^)path:(/[^,]+).*\n"
			"  replacement: ${1}\n  target_label: __metrics_path__\n"
			"- source_labels: [__meta_sd_tags]\n"
			"  regex: (?:.+,|^)job:([^,]+).*\n"
			"  replacement: ${1}\n  target_label: job\n"
			"- source_labels: [__meta_sd_tags]\n"
			"  regex: (?:.+,|^)label:([^=]+)=([^,]+).*\n"
			"  replacement: ${2}\n  target_label: ${1}\n";
	const char *v = "path:/secret,job:some-job,label:foo=bar";
	struct relabel_label ls[8] = {
		{ (const uint8_t *)"__meta_sd_tags", 14, (const uint8_t *)v,
		  strlen(v) }
	};
	struct relabel_scratch s;
	struct relabel_rules *r;
	char err[256], o[512];
	size_t n = 1;

	r = relabel_load_buf("t.yml", y, strlen(y), err, sizeof(err));
	CHECK(r != NULL);
	relabel_scratch_init(&s);
	CHECK_EQ_INT(relabel_apply(r, ls, &n, 8, &s), 0);
	format(ls, n, o);
	CHECK_STR(o, "__meta_sd_tags=path:/secret,job:some-job,label:foo=bar,"
		  "__metrics_path__=/secret,foo=bar,job=some-job");
	relabel_scratch_free(&s);
	relabel_free(r);
}

static void test_keep_drop(void)
{
	char o[256];

	CHECK_STR(run("- source_labels: [a]\n  regex: .*o.*\n  action: drop\n"
		      "- source_labels: [a]\n  regex: f(.*)\n  target_label: d\n"
		      "  replacement: ch$1-ch$1\n", "a=foo", o), "DROP");
	CHECK_STR(run("- source_labels: [a]\n  regex: .*o.*\n  action: drop\n",
		      "a=foo,b=bar", o), "DROP");
	CHECK_STR(run("- source_labels: [a]\n  regex: no-match\n  action: drop\n",
		      "a=foo", o), "a=foo");
	CHECK_STR(run("- source_labels: [a]\n  regex: f|o\n  action: drop\n",
		      "a=foo", o), "a=foo");
	CHECK_STR(run("- source_labels: [a]\n  regex: no-match\n  action: keep\n",
		      "a=foo", o), "DROP");
	CHECK_STR(run("- source_labels: [a]\n  regex: f.*\n  action: keep\n",
		      "a=foo", o), "a=foo");
	/* anchored: a partial match is no match; $ is the very end */
	CHECK_STR(run("- source_labels: [__name__]\n  regex: go_.*\n"
		      "  action: drop\n", "__name__=xgo_gc", o), "__name__=xgo_gc");
	CHECK_STR(run("- source_labels: [__name__]\n  regex: 'go_gc|up'\n"
		      "  action: drop\n", "__name__=up", o), "DROP");
	CHECK_STR(run("- source_labels: [a]\n  regex: 'x$'\n  action: keep\n",
		      "a=x\n", o), "DROP");
	/* a NUL in the pattern (a YAML escape) is a character like another */
	CHECK_STR(run("- source_labels: [a]\n  regex: \"x\\0?y+\"\n  action: drop\n",
		      "a=xyy", o), "DROP");
	/* action names in any case */
	CHECK_STR(run("- source_labels: [a]\n  regex: foo\n  action: DROP\n",
		      "a=foo", o), "DROP");
}

/* Patterns matched without PCRE2 (alternatives of plain text, maybe with
 * .* or .+ after) give what PCRE2 gives: . does not match a newline, an
 * empty alternative matches "", groups hold the whole or the rest. */
static void test_set_patterns(void)
{
	char o[256];

	CHECK_STR(run("- source_labels: [env]\n  regex: 'prod|'\n  action: keep\n",
		      "a=1", o), "a=1");
	CHECK_STR(run("- source_labels: [env]\n  regex: 'prod|'\n  action: keep\n",
		      "env=dev", o), "DROP");
	CHECK_STR(run("- source_labels: [a]\n  regex: 'x.*'\n  action: drop\n",
		      "a=x\ny", o), "a=x\ny");
	CHECK_STR(run("- source_labels: [a]\n  regex: '(?s)x.*'\n  action: drop\n",
		      "a=x\ny", o), "DROP");
	CHECK_STR(run("- source_labels: [a]\n  target_label: b\n", "a=x\ny", o),
		  "a=x\ny");
	CHECK_STR(run("- source_labels: [a]\n  regex: '(dev|prod)'\n"
		      "  target_label: b\n  replacement: '<$1>'\n", "a=prod", o),
		  "a=prod,b=<prod>");
	CHECK_STR(run("- source_labels: [a]\n  regex: 'go_(.*)'\n"
		      "  target_label: b\n", "a=go_gc", o), "a=go_gc,b=gc");
	CHECK_STR(run("- source_labels: [a]\n  regex: 'go_(.+)'\n"
		      "  target_label: b\n  replacement: 'x$1'\n", "a=go_", o),
		  "a=go_");
	CHECK_STR(run("- source_labels: [a]\n  regex: 'go_.+|up'\n"
		      "  action: drop\n", "a=up", o), "DROP");
	CHECK_STR(run("- source_labels: [a]\n  regex: 'go_.+|up'\n"
		      "  action: drop\n", "a=go_", o), "a=go_");
	CHECK_STR(run("- source_labels: [a]\n  regex: '(.*):9100'\n"
		      "  target_label: h\n", "a=10.0.0.1:9100", o),
		  "a=10.0.0.1:9100,h=10.0.0.1");
	CHECK_STR(run("- source_labels: [a]\n  regex: '(.*):9100'\n"
		      "  target_label: h\n", "a=x\n:9100", o), "a=x\n:9100");
	CHECK_STR(run("- source_labels: [a]\n  regex: '(.+)x'\n"
		      "  target_label: h\n", "a=x", o), "a=x");
	CHECK_STR(run("- source_labels: [a]\n  regex: '.*_total|up'\n"
		      "  action: drop\n", "a=http_total", o), "DROP");
	CHECK_STR(run("- source_labels: [a]\n  regex: '.*_total|up'\n"
		      "  action: drop\n", "a=_totals", o), "a=_totals");
}

static void test_equal(void)
{
	char o[256];
	const char *in = "__port1=1234,__port2=5678,__tmp_port=1234";

	CHECK_STR(run("- source_labels: [__tmp_port]\n  action: keepequal\n"
		      "  target_label: __port1\n", in, o), in);
	CHECK_STR(run("- source_labels: [__tmp_port]\n  action: dropequal\n"
		      "  target_label: __port1\n", in, o), "DROP");
	CHECK_STR(run("- source_labels: [__tmp_port]\n  action: dropequal\n"
		      "  target_label: __port2\n", in, o), in);
	CHECK_STR(run("- source_labels: [__tmp_port]\n  action: keepequal\n"
		      "  target_label: __port2\n", in, o), "DROP");
}

static void test_hashmod(void)
{
	char o[256];

	CHECK_STR(run("- source_labels: [c]\n  target_label: d\n"
		      "  action: hashmod\n  modulus: 1000\n",
		      "a=foo,b=bar,c=baz", o), "a=foo,b=bar,c=baz,d=976");
	CHECK_STR(run("- source_labels: [a]\n  target_label: b\n"
		      "  action: hashmod\n  modulus: 1000\n", "a=foo\nbar", o),
		  "a=foo\nbar,b=734");
	/* MD5("") = d41d8cd98f00b204 e9800998ecf8427e */
	CHECK_STR(run("- target_label: h\n  action: hashmod\n"
		      "  modulus: 1000000007\n", "a=1", o), "a=1,h=493334464");
	/* MD5("10.0.0.1:9100") ends 4cfeac4083628b3d */
	CHECK_STR(run("- source_labels: [instance]\n  target_label: shard\n"
		      "  action: hashmod\n  modulus: 3\n",
		      "instance=10.0.0.1:9100", o),
		  "instance=10.0.0.1:9100,shard=2");
	/* joined "a;b": MD5 ends 21960bf46f2ebd0a, the whole 64 bits */
	CHECK_STR(run("- source_labels: [x, y]\n  target_label: h\n"
		      "  action: hashmod\n  modulus: 18446744073709551615\n",
		      "x=a,y=b", o), "h=2420134994223480074,x=a,y=b");
}

static void test_labelmap(void)
{
	char o[256];

	CHECK_STR(run("- regex: (b.*)\n  replacement: bar_${1}\n  action: labelmap\n",
		      "a=foo,b1=bar,b2=baz", o),
		  "a=foo,b1=bar,b2=baz,bar_b1=bar,bar_b2=baz");
	CHECK_STR(run("- regex: __meta_(my.*)\n  replacement: ${1}\n"
		      "  action: labelmap\n",
		      "__meta_my_bar=aaa,__meta_my_baz=bbb,__meta_other=ccc,a=foo", o),
		  "__meta_my_bar=aaa,__meta_my_baz=bbb,__meta_other=ccc,a=foo,"
		  "my_bar=aaa,my_baz=bbb");
	/* reads the labels as they were: a->b and b->c in one rule */
	CHECK_STR(run("- regex: x_(.*)\n  action: labelmap\n",
		      "x_a=1,x_b=2", o), "a=1,b=2,x_a=1,x_b=2");
}

static void test_labeldrop_keep(void)
{
	char o[256];

	CHECK_STR(run("- regex: (b.*)\n  action: labelkeep\n",
		      "a=foo,b1=bar,b2=baz", o), "b1=bar,b2=baz");
	CHECK_STR(run("- regex: (b.*)\n  action: labeldrop\n",
		      "a=foo,b1=bar,b2=baz", o), "a=foo");
	CHECK_STR(run("- regex: b1\n  action: labeldrop\n",
		      "a=foo,b1=bar,b2=baz", o), "a=foo,b2=baz");
}

/* Go's Regexp.Expand: $$, a $ that starts no reference, $1x is the group
 * named "1x" (none: empty), named groups. */
/* lowercase and uppercase: Prometheus' own case, then characters past
 * ASCII as Go's strings.ToLower / ToUpper map them (Unicode's simple case
 * mapping: no ß -> SS, no final sigma; İ -> i, ı -> I, K (Kelvin) -> k,
 * ɐ (2 bytes) -> Ɐ (3 bytes)). */
static void test_case(void)
{
	char o[1024];

	CHECK_STR(run("- source_labels: [foo]\n  action: uppercase\n"
		      "  target_label: foo_uppercase\n"
		      "- source_labels: [foo]\n  action: lowercase\n"
		      "  target_label: foo_lowercase\n", "foo=bAr123Foo", o),
		  "foo=bAr123Foo,foo_lowercase=bar123foo,foo_uppercase=BAR123FOO");
	CHECK_STR(run("- source_labels: [a, b]\n  separator: '-'\n"
		      "  action: Lowercase\n  target_label: c\n",
		      "a=ÄÖÜ Straße,b=ΣΊΣΥΦΟΣ", o),
		  "a=ÄÖÜ Straße,b=ΣΊΣΥΦΟΣ,c=äöü straße-σίσυφοσ");
	CHECK_STR(run("- source_labels: [a]\n  action: uppercase\n"
		      "  target_label: a\n", "a=straße ıɐ", o), "a=STRAßE IⱯ");
	CHECK_STR(run("- source_labels: [a]\n  action: lowercase\n"
		      "  target_label: a\n", "a=İ\u212a", o), "a=ik");
	/* an empty value removes the target */
	CHECK_STR(run("- source_labels: [x]\n  action: lowercase\n"
		      "  target_label: a\n", "a=1,b=2", o), "b=2");
}

static void test_expand(void)
{
	char o[256];

	CHECK_STR(run("- source_labels: [a]\n  regex: (?P<w>x)(y)\n"
		      "  target_label: t\n  replacement: '$$-$-${w}-$2-$1x-${2}x-$'\n",
		      "a=xy", o), "a=xy,t=$-$-x-y--yx-$");
	CHECK_STR(run("- source_labels: [a]\n  regex: (x)|(y)\n"
		      "  target_label: t\n  replacement: '<$2>'\n", "a=x", o),
		  "a=x,t=<>");
}

static void test_cap(void)
{
	const char *y = "- target_label: z\n  replacement: v\n";
	struct relabel_label ls[2];
	struct relabel_scratch s;
	struct relabel_rules *r;
	char err[256], store[64];
	size_t n = parse("a=1,b=2", store, ls);

	r = relabel_load_buf("t.yml", y, strlen(y), err, sizeof(err));
	CHECK(r != NULL);
	relabel_scratch_init(&s);
	CHECK_EQ_INT(relabel_apply(r, ls, &n, 2, &s), ERR_FULL);
	relabel_scratch_free(&s);
	relabel_free(r);
}

static void test_target_valid(void)
{
	static const struct { const char *s; int ok; } v[] = {
		{"-label", 0}, {"label", 1}, {"label${1}", 1}, {"${1}label", 1},
		{"${1}", 1}, {"${", 0}, {"$", 0}, {"${}", 0}, {"foo${", 0},
		{"$1", 1}, {"asd$2asd", 1}, {"-foo${1}bar-", 0}, {"_${1}_", 1},
		{"foo${bar}foo", 1},
	};

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		CHECK_EQ_INT(relabel_target_valid((const uint8_t *)v[i].s,
						  strlen(v[i].s)), v[i].ok);
}

static void test_load_errors(void)
{
	char e[512];

	CHECK_STR(load_err("- action: hashmod\n  target_label: x\n", e, sizeof(e)),
		  "rules.yml:1: relabel configuration for hashmod requires "
		  "non-zero modulus");
	CHECK_STR(load_err("- source_labels: [a]\n  regex: x\n", e, sizeof(e)),
		  "rules.yml:1: relabel configuration for replace action "
		  "requires 'target_label' value");
	CHECK_STR(load_err("- action: keep\n  source_labels: [a]\n"
			   "- action: bogus\n", e, sizeof(e)),
		  "rules.yml:3: unknown relabel action \"bogus\"");
	CHECK_STR(load_err("- action: drop\n  regex: '(a'\n", e, sizeof(e)),
		  "rules.yml:2: regex \"(a\": missing closing parenthesis at "
		  "offset 2");
	CHECK_STR(load_err("- action: drop\n  regexp: a\n", e, sizeof(e)),
		  "rules.yml:2: unknown field \"regexp\" in relabel_config");
	CHECK_STR(load_err("- action: drop\n  source_labels: [a-b]\n", e, sizeof(e)),
		  "rules.yml:2: \"a-b\" is not a valid label name");
	CHECK_STR(load_err("- action: drop\n  action: keep\n", e, sizeof(e)),
		  "rules.yml:2: field \"action\" set twice (first on line 1)");
	CHECK_STR(load_err("- target_label: 1x\n", e, sizeof(e)),
		  "rules.yml:1: \"1x\" is invalid 'target_label' for replace action");
	CHECK_STR(load_err("- action: labelmap\n  regex: a\n  replacement: 'a-b'\n",
			   e, sizeof(e)),
		  "rules.yml:3: \"a-b\" is invalid 'replacement' for labelmap action");
	CHECK_STR(load_err("- action: labeldrop\n  regex: a\n  source_labels: [a]\n",
			   e, sizeof(e)),
		  "rules.yml:1: labeldrop action requires only 'regex', and no "
		  "other fields");
	CHECK_STR(load_err("- action: keepequal\n  source_labels: [a]\n"
			   "  target_label: b\n  regex: x\n", e, sizeof(e)),
		  "rules.yml:1: keepequal action requires only 'source_labels' and "
		  "`target_label`, and no other fields");
	/* a template is replace's alone (Prometheus: LabelName.IsValid) */
	CHECK_STR(load_err("- action: dropequal\n  source_labels: [a]\n"
			   "  target_label: '${1}'\n", e, sizeof(e)),
		  "rules.yml:3: \"${1}\" is invalid 'target_label' for "
		  "dropequal action");
	CHECK_STR(load_err("- action: hashmod\n  target_label: x\n  modulus: -1\n",
			   e, sizeof(e)),
		  "rules.yml:3: modulus: \"-1\" is not a non-negative integer");
	CHECK_STR(load_err("- action: ''\n", e, sizeof(e)),
		  "rules.yml:1: relabel action cannot be empty");
	CHECK_STR(load_err("- action: lowercase\n", e, sizeof(e)),
		  "rules.yml:1: relabel configuration for lowercase action "
		  "requires 'target_label' value");
	CHECK_STR(load_err("- action: uppercase\n  target_label: 'a-b'\n", e,
			   sizeof(e)),
		  "rules.yml:2: \"a-b\" is invalid 'target_label' for "
		  "uppercase action");
	CHECK_STR(load_err("- action: lowercase\n  target_label: a\n"
			   "  replacement: x\n", e, sizeof(e)),
		  "rules.yml:3: 'replacement' can not be set for lowercase "
		  "action");
	CHECK_STR(load_err("- action: lowercase\n  target_label: ${1}\n", e,
			   sizeof(e)),
		  "rules.yml:2: \"${1}\" is invalid 'target_label' for "
		  "lowercase action");
	CHECK_STR(load_err("- action: titlecase\n", e, sizeof(e)),
		  "rules.yml:1: unknown relabel action \"titlecase\"");
	CHECK_STR(load_err("action: drop\n", e, sizeof(e)),
		  "rules.yml:1: expected a list of relabel_config entries");
	CHECK_STR(load_err("- action: drop\n  regex: [a\n", e, sizeof(e)),
		  "rules.yml:3: YAML: did not find expected ',' or ']' while "
		  "parsing a flow sequence");
	CHECK_STR(load_err("- action: drop\n\t- x\n", e, sizeof(e)),
		  "rules.yml:2: YAML: found a tab character that violates "
		  "indentation while scanning a plain scalar");
	/* empty files and comments only: no rules */
	CHECK_STR(load_err("", e, sizeof(e)), "");
	CHECK_STR(load_err("# nothing\n", e, sizeof(e)), "");
	CHECK_STR(load_err("- action: drop\n  source_labels: [a]\n  regex: x\n",
			   e, sizeof(e)), "");
}

static void test_load_file(void)
{
	char e[512];
	struct relabel_rules *r = relabel_load("/nonexistent/rules.yml", e,
					       sizeof(e));

	CHECK(r == NULL);
	CHECK_STR(e, "/nonexistent/rules.yml: cannot open: No such file or "
		  "directory");
}

/* Results that once differed from Prometheus 2.42's for the same rules.
 * (1) "$$" in a static replacement under the default regex: Go's Expand
 * makes "a$b"; the (.*) fast path in do_replace set the replacement as
 * written. (2) A keep rule whose regex repeats an alternation, on a
 * 4000-byte value: RE2 matches; PCRE2's JIT ran out of its 32 KiB stack,
 * which counted as no match, and the series was dropped. */
static void test_prometheus_differences(void)
{
	char o[64];

	CHECK_STR(run("- target_label: x\n  replacement: 'a$$b'\n", "a=1", o),
		  "a=1,x=a$b");
}

static void test_prometheus_differences_jit(void)
{
	static char spec[4200];
	char o[8192];

	strcpy(spec, "a=");
	memset(spec + 2, 'x', 4000);
	spec[4002] = '\0';
	CHECK_STR(run("- source_labels: [a]\n  regex: '(?:x|y)+'\n"
		      "  action: keep\n", spec, o), spec);
}

int main(void)
{
	RUN(test_replace);
	RUN(test_replace_tags);
	RUN(test_keep_drop);
	RUN(test_set_patterns);
	RUN(test_equal);
	RUN(test_hashmod);
	RUN(test_labelmap);
	RUN(test_labeldrop_keep);
	RUN(test_case);
	RUN(test_expand);
	RUN(test_cap);
	RUN(test_target_valid);
	RUN(test_load_errors);
	RUN(test_load_file);
	RUN(test_prometheus_differences);
	RUN(test_prometheus_differences_jit);
	return unit_done();
}
