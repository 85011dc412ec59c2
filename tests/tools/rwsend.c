/*
 * rwsend.c - a Remote Write 1.0 sender for the integration tests.
 *
 *   rwsend URL [options]            post generated requests, print a summary
 *   rwsend URL --file BODY.bin      post a body as it is (repeatable)
 *   rwsend --emit OUT [options]     write the first generated body to OUT
 *   rwsend --compress IN OUT        snappy-compress (block format) IN to OUT
 *   rwsend --decode IN              print a snappy WriteRequest as text
 *
 * Request i (0 <= i < R) holds N series, series j is
 *   P_metric{instance="host-j",job="rwsend",<--label k=v ...>}
 * with K samples each, at timestamps start + (i*K + k) * step, so that every
 * (series, timestamp) pair of a run is distinct and a test can count exactly
 * what arrived upstream. There are no retries: the summary line
 *   sent=R acked=A status_2xx=.. status_4xx=.. status_5xx=.. errors=..
 *   samples_acked=S
 * says what the receiver acknowledged (2xx), and the test compares that
 * with what it finds upstream. Exit status: 0 when every request got a 2xx,
 * 1 otherwise, 2 on a usage or local error.
 *
 * Threads: --concurrency C threads take request indexes from one shared
 * counter; each owns its curl handle and its encoded body.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <snappy-c.h>

#include "remote.pb-c.h"
#include "types.pb-c.h"

#define MAX_EXTRA_LABELS 32
#define MAX_FILES 256
#define MAX_ERR_PRINTS 5

struct opts {
	const char *url;
	long series;
	long samples;             /* per series per request */
	long requests;
	int64_t start_ts;         /* ms */
	int64_t step;             /* ms */
	const char *prefix;
	const char *extra_name[MAX_EXTRA_LABELS];
	const char *extra_value[MAX_EXTRA_LABELS];
	int nextra;
	long concurrency;
	const char *token;
	const char *content_type;
	const char *encoding;     /* "none": no Content-Encoding header */
	const char *method;
	const char *files[MAX_FILES];
	int nfiles;
	int unsorted;             /* swap two labels of every series */
	int insertion_order;      /* labels as the npm prometheus-remote-write
				   * package sends them (see build_body) */
	int empty_value;          /* give every series an empty label value */
	long value_bytes;         /* pad a "pad" label value to this length */
	int stale;                /* send the stale-marker NaN as every value */
	long timeout_s;
	int quiet;
};

struct run {
	const struct opts *o;
	pthread_mutex_t lock;
	long next;                /* next request index to send */
	long sent, acked, s2xx, s4xx, s5xx, errors;
	long long samples_acked;
	int err_prints;
};

static void usage(FILE *f)
{
	fprintf(f,
"usage: rwsend URL [--series N] [--samples-per-series K] [--requests R]\n"
"              [--start-ts MS] [--step MS] [--name-prefix P] [--label k=v ...]\n"
"              [--concurrency C] [--token T] [--content-type CT]\n"
"              [--encoding E|none] [--method M] [--timeout S]\n"
"              [--unsorted-labels] [--insertion-order]\n"
"              [--empty-label-value] [--value-bytes B]\n"
"              [--stale] [--quiet]\n"
"       rwsend URL --file BODY.bin [--file ...] (also --raw-body)\n"
"       rwsend --emit OUT [generation options]\n"
"       rwsend --compress IN OUT\n"
"       rwsend --decode IN\n");
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reads a whole file into a malloc'd buffer (caller frees); NULL on error. */
static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *p = NULL;
	size_t cap = 0, n = 0, r;

	if (f == NULL) {
		fprintf(stderr, "rwsend: %s: %s\n", path, strerror(errno));
		return NULL;
	}
	for (;;) {
		if (n == cap) {
			char *np = realloc(p, cap ? cap * 2 : 65536);
			if (np == NULL) {
				free(p);
				fclose(f);
				return NULL;
			}
			p = np;
			cap = cap ? cap * 2 : 65536;
		}
		r = fread(p + n, 1, cap - n, f);
		n += r;
		if (r == 0)
			break;
	}
	fclose(f);
	*len = n;
	return p;
}

static int write_file(const char *path, const char *p, size_t len)
{
	FILE *f = fopen(path, "wb");

	if (f == NULL || fwrite(p, 1, len, f) != len || fclose(f) != 0) {
		fprintf(stderr, "rwsend: %s: %s\n", path, strerror(errno));
		return -1;
	}
	return 0;
}

/* Snappy-compresses in; returns a malloc'd buffer (caller frees) or NULL. */
static char *compress_body(const char *in, size_t len, size_t *outlen)
{
	size_t cap = snappy_max_compressed_length(len);
	char *out = malloc(cap ? cap : 1);

	if (out == NULL)
		return NULL;
	*outlen = cap;
	if (snappy_compress(in, len, out, outlen) != SNAPPY_OK) {
		free(out);
		return NULL;
	}
	return out;
}

static int cmp_label(const void *a, const void *b)
{
	const Prometheus__Label *la = *(Prometheus__Label *const *)a;
	const Prometheus__Label *lb = *(Prometheus__Label *const *)b;

	return strcmp(la->name, lb->name);
}

/*
 * Builds the snappy body of request idx. Returns a malloc'd buffer (caller
 * frees) with its length in *len, or NULL when out of memory.
 */
static char *build_body(const struct opts *o, long idx, size_t *len)
{
	long nl = 3 + o->nextra + (o->value_bytes > 0), j, k, l;
	Prometheus__WriteRequest wr = PROMETHEUS__WRITE_REQUEST__INIT;
	Prometheus__TimeSeries *ts = calloc((size_t)o->series, sizeof(*ts));
	Prometheus__TimeSeries **tsp = calloc((size_t)o->series, sizeof(*tsp));
	Prometheus__Label *lab = calloc((size_t)(o->series * nl), sizeof(*lab));
	Prometheus__Label **labp = calloc((size_t)(o->series * nl), sizeof(*labp));
	Prometheus__Sample *smp = calloc((size_t)(o->series * o->samples),
					 sizeof(*smp));
	Prometheus__Sample **smpp = calloc((size_t)(o->series * o->samples),
					   sizeof(*smpp));
	char *names = malloc(strlen(o->prefix) + 16);
	char *inst = malloc((size_t)o->series * 32);
	char *pad = NULL;
	uint8_t *raw = NULL;
	char *body = NULL;
	size_t rawlen;
	union { double d; uint64_t u; } stale = { .u = 0x7ff0000000000002ULL };

	if (!ts || !tsp || !lab || !labp || !smp || !smpp || !names || !inst)
		goto out;
	if (o->value_bytes > 0) {
		pad = malloc((size_t)o->value_bytes + 1);
		if (pad == NULL)
			goto out;
		for (l = 0; l < o->value_bytes; l++)
			pad[l] = (char)('a' + l % 26);
		pad[o->value_bytes] = '\0';
	}
	sprintf(names, "%s_metric", o->prefix);
	for (j = 0; j < o->series; j++) {
		Prometheus__Label *sl = lab + j * nl;
		Prometheus__Label **slp = labp + j * nl;
		char *iv = inst + j * 32;

		snprintf(iv, 32, "host-%ld", j);
		for (l = 0; l < nl; l++) {
			prometheus__label__init(&sl[l]);
			slp[l] = &sl[l];
		}
		sl[0].name = "__name__";
		sl[0].value = names;
		sl[1].name = "instance";
		sl[1].value = iv;
		sl[2].name = "job";
		sl[2].value = "rwsend";
		for (l = 0; l < o->nextra; l++) {
			sl[3 + l].name = (char *)o->extra_name[l];
			sl[3 + l].value = (char *)o->extra_value[l];
		}
		if (pad != NULL) {
			sl[nl - 1].name = "pad";
			sl[nl - 1].value = pad;
		}
		qsort(slp, (size_t)nl, sizeof(*slp), cmp_label);
		if (o->unsorted) {
			Prometheus__Label *t = slp[1];
			slp[1] = slp[2];
			slp[2] = t;
		}
		/* The npm package prometheus-remote-write builds a series'
		 * labels as Object.entries({...options.labels,
		 * ...series.labels}): insertion order, unsorted, the
		 * options' labels (here the --label ones) before the series'
		 * own (__name__ and the rest). */
		if (o->insertion_order) {
			k = 0;
			for (l = 0; l < o->nextra; l++)
				slp[k++] = &sl[3 + l];
			for (l = 0; l < 3; l++)
				slp[k++] = &sl[l];
			if (pad != NULL)
				slp[k++] = &sl[nl - 1];
		}
		if (o->empty_value)
			slp[nl - 1]->value = "";

		prometheus__time_series__init(&ts[j]);
		ts[j].n_labels = (size_t)nl;
		ts[j].labels = slp;
		ts[j].n_samples = (size_t)o->samples;
		ts[j].samples = smpp + j * o->samples;
		for (k = 0; k < o->samples; k++) {
			Prometheus__Sample *s = smp + j * o->samples + k;
			long n = idx * o->samples + k;

			prometheus__sample__init(s);
			s->timestamp = o->start_ts + n * o->step;
			s->value = o->stale ? stale.d : (double)(n + j);
			smpp[j * o->samples + k] = s;
		}
		tsp[j] = &ts[j];
	}
	wr.n_timeseries = (size_t)o->series;
	wr.timeseries = tsp;
	rawlen = prometheus__write_request__get_packed_size(&wr);
	raw = malloc(rawlen ? rawlen : 1);
	if (raw == NULL)
		goto out;
	prometheus__write_request__pack(&wr, raw);
	body = compress_body((const char *)raw, rawlen, len);
out:
	free(raw);
	free(pad);
	free(inst);
	free(names);
	free(smpp);
	free(smp);
	free(labp);
	free(lab);
	free(tsp);
	free(ts);
	return body;
}

static size_t discard(char *p, size_t size, size_t n, void *arg)
{
	struct { char buf[512]; size_t len; } *resp = arg;
	size_t total = size * n, take = total;

	if (take > sizeof(resp->buf) - 1 - resp->len)
		take = sizeof(resp->buf) - 1 - resp->len;
	memcpy(resp->buf + resp->len, p, take);
	resp->len += take;
	resp->buf[resp->len] = '\0';
	return total;
}

/*
 * Posts one body. Returns the HTTP status, or 0 on a transport error; the
 * start of the response body lands in resp.
 */
static long post(CURL *c, const struct opts *o, const char *body, size_t len,
		 char *resp, size_t resplen)
{
	struct curl_slist *h = NULL;
	struct { char buf[512]; size_t len; } r = { .len = 0 };
	char hdr[1024];
	long code = 0;
	CURLcode rc;

	r.buf[0] = '\0';
	snprintf(hdr, sizeof(hdr), "Content-Type: %s", o->content_type);
	h = curl_slist_append(h, hdr);
	if (strcmp(o->encoding, "none") != 0) {
		snprintf(hdr, sizeof(hdr), "Content-Encoding: %s", o->encoding);
		h = curl_slist_append(h, hdr);
	} else {
		h = curl_slist_append(h, "Content-Encoding:");
	}
	h = curl_slist_append(h, "X-Prometheus-Remote-Write-Version: 0.1.0");
	h = curl_slist_append(h, "Expect:");
	if (o->token != NULL) {
		snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s", o->token);
		h = curl_slist_append(h, hdr);
	}
	curl_easy_reset(c);
	curl_easy_setopt(c, CURLOPT_URL, o->url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, o->method);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "rwsend/1.0");
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, o->timeout_s);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	rc = curl_easy_perform(c);
	if (rc == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	else
		snprintf(r.buf, sizeof(r.buf), "%s", curl_easy_strerror(rc));
	curl_slist_free_all(h);
	snprintf(resp, resplen, "%s", r.buf);
	return code;
}

static void account(struct run *run, long idx, long code, const char *resp,
		    long long samples)
{
	pthread_mutex_lock(&run->lock);
	run->sent++;
	if (code >= 200 && code < 300) {
		run->acked++;
		run->s2xx++;
		run->samples_acked += samples;
	} else {
		if (code >= 400 && code < 500)
			run->s4xx++;
		else if (code >= 500 && code < 600)
			run->s5xx++;
		else
			run->errors++;
		if (!run->o->quiet && run->err_prints < MAX_ERR_PRINTS) {
			size_t n = strcspn(resp, "\n");
			run->err_prints++;
			fprintf(stderr, "rwsend: request %ld: status %ld: %.*s\n",
				idx, code, (int)n, resp);
		}
	}
	pthread_mutex_unlock(&run->lock);
}

static void *worker(void *arg)
{
	struct run *run = arg;
	const struct opts *o = run->o;
	CURL *c = curl_easy_init();
	char resp[512];

	if (c == NULL)
		return NULL;
	for (;;) {
		long idx, code, total = o->nfiles ? o->nfiles : o->requests;
		size_t len;
		char *body;

		pthread_mutex_lock(&run->lock);
		idx = run->next < total ? run->next++ : -1;
		pthread_mutex_unlock(&run->lock);
		if (idx < 0)
			break;
		if (o->nfiles)
			body = read_file(o->files[idx], &len);
		else
			body = build_body(o, idx, &len);
		if (body == NULL) {
			account(run, idx, 0, "cannot build body", 0);
			continue;
		}
		code = post(c, o, body, len, resp, sizeof(resp));
		account(run, idx, code, resp,
			o->nfiles ? 0 : (long long)o->series * o->samples);
		free(body);
	}
	curl_easy_cleanup(c);
	return NULL;
}

static void print_value(double v)
{
	union { double d; uint64_t u; } b = { .d = v };

	if (isnan(v))
		printf("NaN(0x%016llx)", (unsigned long long)b.u);
	else
		printf("%.17g", v);
}

/* Prints a snappy WriteRequest: one line per series, then metadata. */
static int decode(const char *path)
{
	size_t len, rawlen, i, j;
	char *body = read_file(path, &len), *raw = NULL;
	Prometheus__WriteRequest *wr = NULL;
	size_t nsamples = 0;
	int rc = 2;

	if (body == NULL)
		return 2;
	if (snappy_uncompressed_length(body, len, &rawlen) != SNAPPY_OK ||
	    (raw = malloc(rawlen ? rawlen : 1)) == NULL ||
	    snappy_uncompress(body, len, raw, &rawlen) != SNAPPY_OK) {
		fprintf(stderr, "rwsend: %s: not a snappy block\n", path);
		goto out;
	}
	wr = prometheus__write_request__unpack(NULL, rawlen, (uint8_t *)raw);
	if (wr == NULL) {
		fprintf(stderr, "rwsend: %s: not a WriteRequest\n", path);
		goto out;
	}
	for (i = 0; i < wr->n_timeseries; i++) {
		Prometheus__TimeSeries *ts = wr->timeseries[i];

		printf("series {");
		for (j = 0; j < ts->n_labels; j++)
			printf("%s%s=\"%s\"", j ? "," : "",
			       ts->labels[j]->name, ts->labels[j]->value);
		printf("}");
		for (j = 0; j < ts->n_samples; j++) {
			printf(" %lld:", (long long)ts->samples[j]->timestamp);
			print_value(ts->samples[j]->value);
		}
		if (ts->n_histograms)
			printf(" histograms=%zu", ts->n_histograms);
		if (ts->n_exemplars)
			printf(" exemplars=%zu", ts->n_exemplars);
		printf("\n");
		nsamples += ts->n_samples;
	}
	for (i = 0; i < wr->n_metadata; i++)
		printf("metadata %s type=%d\n",
		       wr->metadata[i]->metric_family_name,
		       (int)wr->metadata[i]->type);
	printf("total series=%zu samples=%zu metadata=%zu\n",
	       wr->n_timeseries, nsamples, wr->n_metadata);
	rc = 0;
out:
	if (wr != NULL)
		prometheus__write_request__free_unpacked(wr, NULL);
	free(raw);
	free(body);
	return rc;
}

static int compress_file(const char *in, const char *out)
{
	size_t len, clen;
	char *raw = read_file(in, &len), *c;
	int rc;

	if (raw == NULL)
		return 2;
	c = compress_body(raw, len, &clen);
	free(raw);
	if (c == NULL)
		return 2;
	rc = write_file(out, c, clen) == 0 ? 0 : 2;
	free(c);
	return rc;
}

static int parse_long(const char *s, long min, long *out)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || end == s || *end || v < min)
		return -1;
	*out = (long)v;
	return 0;
}

int main(int argc, char **argv)
{
	struct opts o = {
		.series = 1, .samples = 1, .requests = 1, .start_ts = -1,
		.step = 1000, .prefix = "rwsend", .concurrency = 1,
		.content_type = "application/x-protobuf", .encoding = "snappy",
		.method = "POST", .timeout_s = 60,
	};
	struct run run;
	const char *emit = NULL;
	pthread_t *th;
	long i, v;
	int a;

	for (a = 1; a < argc; a++) {
		char *arg = argv[a], *val = a + 1 < argc ? argv[a + 1] : NULL;

#define NEED_VAL                                                              \
	do {                                                                  \
		if (val == NULL) {                                            \
			fprintf(stderr, "rwsend: %s needs a value\n", arg);   \
			return 2;                                             \
		}                                                             \
		a++;                                                          \
	} while (0)
#define NUM(field, min)                                                       \
	do {                                                                  \
		NEED_VAL;                                                     \
		if (parse_long(val, (min), &v) != 0) {                        \
			fprintf(stderr, "rwsend: bad %s: %s\n", arg, val);    \
			return 2;                                             \
		}                                                             \
		(field) = v;                                                  \
	} while (0)

		if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
			usage(stdout);
			return 0;
		} else if (strcmp(arg, "--compress") == 0) {
			if (a + 2 >= argc) {
				usage(stderr);
				return 2;
			}
			return compress_file(argv[a + 1], argv[a + 2]);
		} else if (strcmp(arg, "--decode") == 0) {
			NEED_VAL;
			return decode(val);
		} else if (strcmp(arg, "--series") == 0) {
			NUM(o.series, 1);
		} else if (strcmp(arg, "--samples-per-series") == 0) {
			NUM(o.samples, 0);
		} else if (strcmp(arg, "--requests") == 0) {
			NUM(o.requests, 0);
		} else if (strcmp(arg, "--start-ts") == 0) {
			NUM(o.start_ts, 0);
		} else if (strcmp(arg, "--step") == 0) {
			NUM(o.step, 1);
		} else if (strcmp(arg, "--concurrency") == 0) {
			NUM(o.concurrency, 1);
		} else if (strcmp(arg, "--timeout") == 0) {
			NUM(o.timeout_s, 1);
		} else if (strcmp(arg, "--value-bytes") == 0) {
			NUM(o.value_bytes, 0);
		} else if (strcmp(arg, "--name-prefix") == 0) {
			NEED_VAL;
			o.prefix = val;
		} else if (strcmp(arg, "--label") == 0) {
			char *eq;
			NEED_VAL;
			eq = strchr(val, '=');
			if (eq == NULL || o.nextra == MAX_EXTRA_LABELS) {
				fprintf(stderr, "rwsend: bad --label %s\n", val);
				return 2;
			}
			*eq = '\0'; /* argv is ours to cut in place */
			o.extra_name[o.nextra] = val;
			o.extra_value[o.nextra++] = eq + 1;
		} else if (strcmp(arg, "--token") == 0) {
			NEED_VAL;
			o.token = val;
		} else if (strcmp(arg, "--content-type") == 0) {
			NEED_VAL;
			o.content_type = val;
		} else if (strcmp(arg, "--encoding") == 0) {
			NEED_VAL;
			o.encoding = val;
		} else if (strcmp(arg, "--method") == 0) {
			NEED_VAL;
			o.method = val;
		} else if (strcmp(arg, "--file") == 0 ||
			   strcmp(arg, "--raw-body") == 0) {
			NEED_VAL;
			if (o.nfiles == MAX_FILES) {
				fprintf(stderr, "rwsend: too many --file\n");
				return 2;
			}
			o.files[o.nfiles++] = val;
		} else if (strcmp(arg, "--emit") == 0) {
			NEED_VAL;
			emit = val;
		} else if (strcmp(arg, "--unsorted-labels") == 0) {
			o.unsorted = 1;
		} else if (strcmp(arg, "--insertion-order") == 0) {
			o.insertion_order = 1;
		} else if (strcmp(arg, "--empty-label-value") == 0) {
			o.empty_value = 1;
		} else if (strcmp(arg, "--stale") == 0) {
			o.stale = 1;
		} else if (strcmp(arg, "--quiet") == 0) {
			o.quiet = 1;
		} else if (arg[0] == '-') {
			fprintf(stderr, "rwsend: unknown option %s\n", arg);
			usage(stderr);
			return 2;
		} else if (o.url == NULL) {
			o.url = arg;
		} else {
			usage(stderr);
			return 2;
		}
	}
	if (o.start_ts < 0)
		o.start_ts = now_ms() - 3600 * 1000;
	if (emit != NULL) {
		size_t len;
		char *body = build_body(&o, 0, &len);
		int rc;

		if (body == NULL)
			return 2;
		rc = write_file(emit, body, len) == 0 ? 0 : 2;
		free(body);
		return rc;
	}
	if (o.url == NULL) {
		usage(stderr);
		return 2;
	}
	if (curl_global_init(CURL_GLOBAL_ALL) != 0)
		return 2;
	memset(&run, 0, sizeof(run));
	run.o = &o;
	pthread_mutex_init(&run.lock, NULL);
	th = calloc((size_t)o.concurrency, sizeof(*th));
	if (th == NULL)
		return 2;
	for (i = 0; i < o.concurrency; i++)
		if (pthread_create(&th[i], NULL, worker, &run) != 0) {
			fprintf(stderr, "rwsend: pthread_create failed\n");
			return 2;
		}
	for (i = 0; i < o.concurrency; i++)
		pthread_join(th[i], NULL);
	free(th);
	printf("sent=%ld acked=%ld status_2xx=%ld status_4xx=%ld status_5xx=%ld "
	       "errors=%ld samples_acked=%lld\n", run.sent, run.acked, run.s2xx,
	       run.s4xx, run.s5xx, run.errors, run.samples_acked);
	fflush(stdout);
	curl_global_cleanup();
	return run.acked == run.sent ? 0 : 1;
}
