/*
 * queue.c - in-memory index of the buffer, per tenant (see queue.h).
 */
#include "queue.h"

#include "clock.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void queue_init(struct queue *q)
{
	memset(q, 0, sizeof(*q));
	pthread_mutex_init(&q->lock, NULL);
	clock_cond_init(&q->wake);
}

void queue_destroy(struct queue *q)
{
	struct queue_tenant *t, *next;

	for (t = q->tenants; t != NULL; t = next) {
		next = t->next;
		free(t);
	}
	q->tenants = NULL;
	pthread_cond_destroy(&q->wake);
	pthread_mutex_destroy(&q->lock);
}

struct queue_tenant *queue_tenant_get(struct queue *q, const char *id,
				      size_t idlen, int create)
{
	struct queue_tenant *t, **tail = &q->tenants;

	for (t = q->tenants; t != NULL; t = t->next) {
		if (t->idlen == idlen && memcmp(t->id, id, idlen) == 0)
			return t;
		tail = &t->next;
	}
	if (!create || idlen > TENANT_ID_MAX)
		return NULL;
	t = calloc(1, sizeof(*t));
	if (t == NULL)
		return NULL;
	memcpy(t->id, id, idlen);
	t->idlen = idlen;
	*tail = t;
	q->ntenants++;
	return t;
}

void queue_added(struct queue *q, const char *id, size_t idlen, uint64_t seq,
		 uint64_t bytes, uint64_t samples, uint64_t created_ms)
{
	struct queue_tenant *t;

	pthread_mutex_lock(&q->lock);
	t = queue_tenant_get(q, id, idlen, 1);
	if (t != NULL) {
		if (t->entries == 0) {
			t->first_seq = seq;
			t->oldest_ms = created_ms;
		}
		if (t->send_seq == 0)
			t->send_seq = seq;
		t->last_seq = seq;
		t->entries++;
		t->bytes += bytes;
		t->samples += samples;
		q->entries++;
		q->bytes += bytes;
		q->samples += samples;
		/* One forwarder is enough for new entries, and none while the
		 * tenant backs off or its new entries are being read: its
		 * claim's timed wait or queue_taken() comes back for them. */
		if (!t->reading && t->retry_at_ms <= clock_mono_ms())
			pthread_cond_signal(&q->wake);
	}
	pthread_mutex_unlock(&q->lock);
}

static uint64_t sub_floor(uint64_t a, uint64_t b)
{
	return a > b ? a - b : 0;
}

void queue_removed(struct queue *q, const char *id, size_t idlen,
		   uint64_t entries, uint64_t bytes, uint64_t samples,
		   uint64_t next_seq, uint64_t next_created_ms)
{
	struct queue_tenant *t;

	pthread_mutex_lock(&q->lock);
	t = queue_tenant_get(q, id, idlen, 0);
	if (t != NULL) {
		t->entries = sub_floor(t->entries, entries);
		t->bytes = sub_floor(t->bytes, bytes);
		t->samples = sub_floor(t->samples, samples);
		/* next_seq is the tenant's oldest entry left (0: none). */
		if (next_seq == 0 || t->entries == 0) {
			t->entries = t->bytes = t->samples = 0;
			t->first_seq = t->last_seq + 1;
			t->oldest_ms = 0;
			if (t->send_seq < t->first_seq)
				t->send_seq = t->first_seq;
		} else {
			t->first_seq = next_seq;
			t->oldest_ms = next_created_ms;
			if (t->send_seq < next_seq)
				t->send_seq = next_seq;
		}
	}
	q->entries = sub_floor(q->entries, entries);
	q->bytes = sub_floor(q->bytes, bytes);
	q->samples = sub_floor(q->samples, samples);
	/* Removing entries makes no new work: no one to wake. */
	pthread_mutex_unlock(&q->lock);
}

/* Whether t has something to send now; sets *wait_until to the end of its
 * backoff when that is all that holds it. Call with the lock held. */
static int tenant_ready(const struct queue_tenant *t, unsigned max_inflight,
			uint64_t now, uint64_t *wait_until)
{
	int fresh = !t->reading && t->entries > 0 && t->send_seq <= t->last_seq;

	if (t->inflight >= max_inflight || (t->nretry == 0 && !fresh))
		return 0;
	if (t->retry_at_ms > now) {
		if (*wait_until == 0 || t->retry_at_ms < *wait_until)
			*wait_until = t->retry_at_ms;
		return 0;
	}
	return 1;
}

/* Moves t to the tail of the list so that tenants take turns. */
static void to_tail(struct queue *q, struct queue_tenant *t)
{
	struct queue_tenant **pp = &q->tenants, *last;

	if (t->next == NULL)
		return;
	while (*pp != t)
		pp = &(*pp)->next;
	*pp = t->next;
	for (last = t->next; last->next != NULL; last = last->next)
		;
	last->next = t;
	t->next = NULL;
}

int queue_claim(struct queue *q, unsigned max_inflight, struct queue_job *job)
{
	struct queue_tenant *t;
	struct timespec ts;
	uint64_t wait_until, now;

	pthread_mutex_lock(&q->lock);
	for (;;) {
		if (q->stopping) {
			pthread_mutex_unlock(&q->lock);
			return -1;
		}
		now = clock_mono_ms();
		wait_until = 0;
		for (t = q->tenants; t != NULL; t = t->next) {
			if (tenant_ready(t, max_inflight, now, &wait_until))
				break;
		}
		if (t != NULL)
			break;
		if (wait_until == 0 || wait_until > now + 1000)
			wait_until = now + 1000;
		ts = clock_deadline(wait_until > now ?
				    (wait_until - now) * 1000 : 0);
		pthread_cond_timedwait(&q->wake, &q->lock, &ts);
	}
	memcpy(job->id, t->id, t->idlen);
	job->id[t->idlen] = '\0';
	job->idlen = t->idlen;
	job->attempts = t->attempts;
	if (t->nretry > 0) {
		/* What failed goes again first, oldest first. */
		job->first = t->retry[0].first;
		job->last = t->retry[0].last;
		job->isolate = t->retry[0].isolate;
		job->fresh = 0;
		t->nretry--;
		memmove(&t->retry[0], &t->retry[1], t->nretry * sizeof(t->retry[0]));
	} else {
		job->first = t->send_seq;
		job->last = t->last_seq;
		job->isolate = 0;
		job->fresh = 1;
		t->reading = 1;
	}
	t->inflight++;
	to_tail(q, t);
	pthread_mutex_unlock(&q->lock);
	return 0;
}

/* Puts first..last back to be sent again, keeping the list in order.
 * Call with the lock held. */
static void retry_push(struct queue_tenant *t, uint64_t first, uint64_t last,
		       int isolate)
{
	unsigned i;

	if (t->nretry == sizeof(t->retry) / sizeof(t->retry[0])) {
		/* Cannot happen with at most QUEUE_MAX_INFLIGHT requests in
		 * flight; widen the last range rather than lose one. */
		struct queue_range *r = &t->retry[t->nretry - 1];
		r->first = first < r->first ? first : r->first;
		r->last = last > r->last ? last : r->last;
		r->isolate |= isolate;
		return;
	}
	for (i = 0; i < t->nretry && t->retry[i].first < first; i++)
		;
	memmove(&t->retry[i + 1], &t->retry[i], (t->nretry - i) * sizeof(t->retry[0]));
	t->retry[i].first = first;
	t->retry[i].last = last;
	t->retry[i].isolate = isolate;
	t->nretry++;
}

void queue_taken(struct queue *q, const struct queue_job *job,
		 uint64_t entries, uint64_t first, uint64_t last)
{
	struct queue_tenant *t;

	(void)first;
	pthread_mutex_lock(&q->lock);
	t = queue_tenant_get(q, job->id, job->idlen, 0);
	if (t != NULL) {
		if (job->fresh) {
			t->reading = 0;
			/* What the request does not hold waits for the next. */
			uint64_t next = entries ? last + 1 : job->last + 1;
			if (t->send_seq < next)
				t->send_seq = next;
		} else if (entries > 0 && last < job->last) {
			retry_push(t, last + 1, job->last, job->isolate);
		}
		if (entries == 0 && t->inflight > 0)
			t->inflight--;
	}
	/* Each change here allows one more claim at most, and that claim
	 * comes back here: one forwarder is enough (see queue_claim()). */
	pthread_cond_signal(&q->wake);
	pthread_mutex_unlock(&q->lock);
}

void queue_unclaim(struct queue *q, const struct queue_job *job)
{
	struct queue_tenant *t;

	pthread_mutex_lock(&q->lock);
	t = queue_tenant_get(q, job->id, job->idlen, 0);
	if (t != NULL) {
		if (job->fresh)
			t->reading = 0;
		else
			retry_push(t, job->first, job->last, job->isolate);
		if (t->inflight > 0)
			t->inflight--;
	}
	pthread_cond_signal(&q->wake);
	pthread_mutex_unlock(&q->lock);
}

void queue_done(struct queue *q, const struct queue_job *job,
		enum queue_outcome outcome, uint64_t first, uint64_t last,
		uint64_t retry_in_ms)
{
	struct queue_tenant *t;

	pthread_mutex_lock(&q->lock);
	t = queue_tenant_get(q, job->id, job->idlen, 0);
	if (t != NULL) {
		if (t->inflight > 0)
			t->inflight--;
		switch (outcome) {
		case QUEUE_SENT:
			t->attempts = 0;
			t->retry_at_ms = 0;
			break;
		case QUEUE_RETRY:
			retry_push(t, first, last, job->isolate);
			t->attempts++;
			t->retry_at_ms = clock_mono_ms() + retry_in_ms;
			break;
		case QUEUE_ISOLATE:
			retry_push(t, first, last, 1);
			break;
		}
	}
	pthread_cond_signal(&q->wake);
	pthread_mutex_unlock(&q->lock);
}

void queue_totals(struct queue *q, struct queue_totals *out)
{
	struct queue_tenant *t;
	uint64_t now = clock_mono_ms();

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&q->lock);
	out->entries = q->entries;
	out->bytes = q->bytes;
	out->samples = q->samples;
	for (t = q->tenants; t != NULL; t = t->next) {
		if (t->entries > 0 && t->oldest_ms != 0 &&
		    (out->oldest_ms == 0 || t->oldest_ms < out->oldest_ms))
			out->oldest_ms = t->oldest_ms;
		if (t->retry_at_ms > now)
			out->tenants_waiting++;
	}
	pthread_mutex_unlock(&q->lock);
}

void queue_stop(struct queue *q)
{
	pthread_mutex_lock(&q->lock);
	q->stopping = 1;
	pthread_cond_broadcast(&q->wake);
	pthread_mutex_unlock(&q->lock);
}

uint64_t queue_tenant_bytes(struct queue *q, const char *id, size_t idlen)
{
	struct queue_tenant *t;
	uint64_t bytes = 0;

	pthread_mutex_lock(&q->lock);
	if ((t = queue_tenant_get(q, id, idlen, 0)) != NULL)
		bytes = t->bytes;
	pthread_mutex_unlock(&q->lock);
	return bytes;
}

void queue_each(struct queue *q, void (*fn)(const struct queue_tenant *t,
					    void *arg), void *arg)
{
	pthread_mutex_lock(&q->lock);
	for (struct queue_tenant *t = q->tenants; t != NULL; t = t->next)
		fn(t, arg);
	pthread_mutex_unlock(&q->lock);
}

size_t queue_heads(struct queue *q, struct queue_head *heads, size_t max)
{
	size_t n = 0;

	pthread_mutex_lock(&q->lock);
	for (struct queue_tenant *t = q->tenants; t != NULL && n < max; t = t->next) {
		if (t->entries == 0)
			continue;
		memcpy(heads[n].id, t->id, t->idlen + 1);
		heads[n].idlen = t->idlen;
		heads[n].seq = t->first_seq;
		heads[n].created_ms = t->oldest_ms;
		heads[n].bytes = t->bytes;
		n++;
	}
	pthread_mutex_unlock(&q->lock);
	return n;
}
