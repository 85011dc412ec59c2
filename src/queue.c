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

void queue_on_ack_wait(struct queue *q, void (*fn)(void *arg), void *arg)
{
	pthread_mutex_lock(&q->lock);
	q->ack_wait = fn;
	q->ack_wait_arg = arg;
	pthread_mutex_unlock(&q->lock);
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
		for (unsigned l = 0; l < QUEUE_LANES; l++)
			if (t->lane[l].send_seq == 0)
				t->lane[l].send_seq = seq;
		t->last_seq = seq;
		t->entries++;
		t->bytes += bytes;
		t->samples += samples;
		q->entries++;
		q->bytes += bytes;
		q->samples += samples;
		/* One forwarder is enough: its claim or queue_taken() comes
		 * back for the other lanes. */
		pthread_cond_signal(&q->wake);
	}
	pthread_mutex_unlock(&q->lock);
}

void queue_legacy(struct queue *q, const char *id, size_t idlen, uint64_t seq)
{
	struct queue_tenant *t;

	pthread_mutex_lock(&q->lock);
	if ((t = queue_tenant_get(q, id, idlen, 0)) != NULL &&
	    seq > t->legacy_last)
		t->legacy_last = seq;
	pthread_mutex_unlock(&q->lock);
}

void queue_lane_through(struct queue *q, const char *id, size_t idlen,
			unsigned lane, uint64_t seq)
{
	struct queue_tenant *t;

	pthread_mutex_lock(&q->lock);
	if (lane < QUEUE_LANES && (t = queue_tenant_get(q, id, idlen, 0)) != NULL &&
	    t->lane[lane].send_seq <= seq)
		t->lane[lane].send_seq = seq + 1;
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
		/* next_seq is the tenant's oldest entry left (0: none): the
		 * store's word over the counts, so that a count that went
		 * wrong cannot hide what is left from the lanes. */
		if (next_seq == 0) {
			t->entries = t->bytes = t->samples = 0;
			t->first_seq = t->last_seq + 1;
			t->oldest_ms = 0;
		} else {
			if (t->entries == 0)
				t->entries = 1;
			t->first_seq = next_seq;
			t->oldest_ms = next_created_ms;
		}
		for (unsigned l = 0; l < QUEUE_LANES; l++)
			if (t->lane[l].send_seq < t->first_seq)
				t->lane[l].send_seq = t->first_seq;
		/* The last entry of version 1 gone: the other lanes may go. */
		if (t->legacy_last != 0 && t->first_seq > t->legacy_last) {
			t->legacy_last = 0;
			pthread_cond_broadcast(&q->wake);
		}
	}
	q->entries = sub_floor(q->entries, entries);
	q->bytes = sub_floor(q->bytes, bytes);
	q->samples = sub_floor(q->samples, samples);
	pthread_mutex_unlock(&q->lock);
}

/* Whether lane l of t has something to send now; sets *wait_until to the
 * end of its backoff when that is all that holds it. Call with the lock
 * held. */
static int lane_ready(const struct queue_tenant *t, unsigned l, uint64_t now,
		      uint64_t *wait_until)
{
	const struct queue_lane *ln = &t->lane[l];
	int fresh = t->entries > 0 && ln->send_seq <= t->last_seq;
	uint64_t at;

	if (ln->inflight || ln->unacked > 0 || (!ln->has_retry && !fresh))
		return 0;
	/* Entries of version 1 go first, by lane 0 alone. */
	if (l != 0 && t->legacy_last != 0)
		return 0;
	at = t->retry_at_ms > t->gate_at_ms ? t->retry_at_ms : t->gate_at_ms;
	if (at > now) {
		if (*wait_until == 0 || at < *wait_until)
			*wait_until = at;
		return 0;
	}
	return 1;
}

/* Where lane l of t stands in the tenant's sequence: what it sends again
 * first, else its next entry. */
static uint64_t lane_place(const struct queue_tenant *t, unsigned l)
{
	const struct queue_lane *ln = &t->lane[l];

	return ln->has_retry ? ln->retry.first : ln->send_seq;
}

/*
 * The lane of t to claim now, or -1: of the lanes ready, the one furthest
 * behind in the tenant's sequence (ties: in turn from next_lane). Every
 * entry holds a part of most lanes, and a lane with more series per entry
 * needs more requests to get through the same entries: taken in turn, the
 * lighter lanes would finish a backlog first and leave its end to the
 * heaviest alone, one request in flight. Furthest behind first, the lanes
 * keep step through the backlog and finish it together, with
 * max_inflight requests in flight to the end. After a failed attempt
 * (t->attempts) the lanes go in turn: a lane that keeps failing, always
 * the furthest behind, must not keep the others from their turns. Call
 * with the lock held.
 */
static int tenant_ready(const struct queue_tenant *t, unsigned max_inflight,
			uint64_t now, uint64_t *wait_until)
{
	int best = -1;

	if (t->inflight >= max_inflight)
		return -1;
	for (unsigned i = 0; i < QUEUE_LANES; i++) {
		unsigned l = (t->next_lane + i) % QUEUE_LANES;
		if (!lane_ready(t, l, now, wait_until))
			continue;
		if (t->attempts > 0)
			return (int)l;
		if (best < 0 || lane_place(t, l) < lane_place(t, (unsigned)best))
			best = (int)l;
	}
	return best;
}

/* Whether a lane of t that has more to send waits only for the commit of
 * its last delivery while t could take one more claim. Call with the lock
 * held. */
static int tenant_waits_ack(const struct queue_tenant *t, unsigned max_inflight)
{
	if (t->inflight >= max_inflight)
		return 0;
	for (unsigned l = 0; l < QUEUE_LANES; l++) {
		const struct queue_lane *ln = &t->lane[l];
		if (ln->unacked > 0 && !ln->inflight &&
		    (l == 0 || t->legacy_last == 0) &&
		    (ln->has_retry ||
		     (t->entries > 0 && ln->send_seq <= t->last_seq)))
			return 1;
	}
	return 0;
}

/* Whether a tenant other than t has something buffered. Call with the
 * lock held. */
static int others_waiting(const struct queue *q, const struct queue_tenant *t)
{
	for (const struct queue_tenant *o = q->tenants; o != NULL; o = o->next)
		if (o != t && o->entries > 0)
			return 1;
	return 0;
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
	struct queue_lane *ln;
	struct timespec ts;
	uint64_t wait_until, now;
	int l = -1, ack_wait;

	if (max_inflight == 0)
		max_inflight = 1;
	pthread_mutex_lock(&q->lock);
	for (;;) {
		if (q->stopping) {
			pthread_mutex_unlock(&q->lock);
			return -1;
		}
		now = clock_mono_ms();
		wait_until = 0;
		ack_wait = 0;
		for (t = q->tenants; t != NULL; t = t->next) {
			if ((l = tenant_ready(t, max_inflight, now, &wait_until)) >= 0)
				break;
			ack_wait = ack_wait || tenant_waits_ack(t, max_inflight);
		}
		/* Also when a tenant ahead in turn waits so and another
		 * goes: that tenant must not wait for the commit's company. */
		if (ack_wait && q->ack_wait != NULL)
			q->ack_wait(q->ack_wait_arg);
		if (t != NULL)
			break;
		if (wait_until == 0 || wait_until > now + 1000)
			wait_until = now + 1000;
		ts = clock_deadline(wait_until > now ?
				    (wait_until - now) * 1000 : 0);
		pthread_cond_timedwait(&q->wake, &q->lock, &ts);
	}
	ln = &t->lane[l];
	memcpy(job->id, t->id, t->idlen);
	job->id[t->idlen] = '\0';
	job->idlen = t->idlen;
	job->lane = (unsigned)l;
	job->attempts = t->attempts;
	if (ln->has_retry) {
		/* What failed goes again first. */
		job->first = ln->retry.first;
		job->last = ln->retry.last;
		job->isolate = ln->retry.isolate;
		job->fresh = 0;
		ln->has_retry = 0;
	} else {
		job->first = ln->send_seq;
		job->last = t->last_seq;
		job->isolate = 0;
		job->fresh = 1;
	}
	ln->inflight = 1;
	t->inflight++;
	t->next_lane = ((unsigned)l + 1) % QUEUE_LANES;
	to_tail(q, t);
	pthread_mutex_unlock(&q->lock);
	return 0;
}

/* Puts first..last of lane ln back to be sent again: a lane has one
 * request at a time, so what is there already is next to it, and the
 * two become one range. Call with the lock held. */
static void retry_push(struct queue_lane *ln, uint64_t first, uint64_t last,
		       int isolate)
{
	if (!ln->has_retry) {
		ln->retry.first = first;
		ln->retry.last = last;
		ln->retry.isolate = isolate;
		ln->has_retry = 1;
		return;
	}
	if (first < ln->retry.first)
		ln->retry.first = first;
	if (last > ln->retry.last)
		ln->retry.last = last;
	ln->retry.isolate |= isolate;
}

/* The lane's request is over. Call with the lock held. */
static void lane_release(struct queue_tenant *t, struct queue_lane *ln)
{
	if (ln->inflight) {
		ln->inflight = 0;
		if (t->inflight > 0)
			t->inflight--;
	}
}

void queue_taken(struct queue *q, const struct queue_job *job,
		 uint64_t entries, uint64_t first, uint64_t last)
{
	struct queue_tenant *t;
	struct queue_lane *ln;

	(void)first;
	pthread_mutex_lock(&q->lock);
	t = queue_tenant_get(q, job->id, job->idlen, 0);
	if (t != NULL && job->lane < QUEUE_LANES) {
		ln = &t->lane[job->lane];
		if (job->fresh) {
			/* What the request does not hold waits for the next. */
			uint64_t next = entries ? last + 1 : job->last + 1;
			if (ln->send_seq < next)
				ln->send_seq = next;
		} else if (entries > 0 && last < job->last) {
			retry_push(ln, last + 1, job->last, job->isolate);
		}
		if (entries == 0)
			lane_release(t, ln);
	}
	/* Each change here allows one more claim at most, and that claim
	 * comes back here: one forwarder is enough (see queue_claim()). */
	pthread_cond_signal(&q->wake);
	pthread_mutex_unlock(&q->lock);
}

void queue_unclaim(struct queue *q, const struct queue_job *job)
{
	struct queue_tenant *t;
	struct queue_lane *ln;

	pthread_mutex_lock(&q->lock);
	t = queue_tenant_get(q, job->id, job->idlen, 0);
	if (t != NULL && job->lane < QUEUE_LANES) {
		ln = &t->lane[job->lane];
		if (!job->fresh)
			retry_push(ln, job->first, job->last, job->isolate);
		lane_release(t, ln);
	}
	pthread_cond_signal(&q->wake);
	pthread_mutex_unlock(&q->lock);
}

uint64_t queue_gate_seen(struct queue *q)
{
	uint64_t n;

	pthread_mutex_lock(&q->lock);
	n = q->gate_changes;
	pthread_mutex_unlock(&q->lock);
	return n;
}

void queue_defer(struct queue *q, const struct queue_job *job,
		 uint64_t wait_ms, uint64_t seen)
{
	struct queue_tenant *t;

	pthread_mutex_lock(&q->lock);
	t = queue_tenant_get(q, job->id, job->idlen, 0);
	/* A change between the gate's answer and now would be lost. */
	if (t != NULL && q->gate_changes == seen)
		t->gate_at_ms = clock_mono_ms() + (wait_ms ? wait_ms : 1);
	pthread_mutex_unlock(&q->lock);
	queue_unclaim(q, job);
}

void queue_gate_changed(struct queue *q)
{
	pthread_mutex_lock(&q->lock);
	q->gate_changes++;
	for (struct queue_tenant *t = q->tenants; t != NULL; t = t->next)
		t->gate_at_ms = 0;
	pthread_cond_broadcast(&q->wake);
	pthread_mutex_unlock(&q->lock);
}

void queue_done(struct queue *q, const struct queue_job *job,
		enum queue_outcome outcome, uint64_t first, uint64_t last,
		uint64_t retry_in_ms)
{
	struct queue_tenant *t;
	struct queue_lane *ln;

	pthread_mutex_lock(&q->lock);
	t = queue_tenant_get(q, job->id, job->idlen, 0);
	if (t != NULL && job->lane < QUEUE_LANES) {
		ln = &t->lane[job->lane];
		lane_release(t, ln);
		switch (outcome) {
		case QUEUE_SENT:
			t->attempts = 0;
			t->retry_at_ms = 0;
			ln->unacked++;
			/* Its commit is not to wait for company when the lane
			 * goes one entry at a time (a refusal being isolated),
			 * or when other tenants may take the forwarders
			 * meanwhile: then a claim may not come to ask for it. */
			if (q->ack_wait != NULL &&
			    (ln->has_retry || job->isolate || others_waiting(q, t)))
				q->ack_wait(q->ack_wait_arg);
			break;
		case QUEUE_RETRY:
			retry_push(ln, first, last, job->isolate);
			/* Lanes that were in flight together fail together:
			 * one attempt, one backoff. */
			if (t->retry_at_ms <= clock_mono_ms() &&
			    job->attempts == t->attempts) {
				t->attempts++;
				t->retry_at_ms = clock_mono_ms() + retry_in_ms;
			}
			break;
		case QUEUE_ISOLATE:
			retry_push(ln, first, last, 1);
			break;
		}
	}
	pthread_cond_signal(&q->wake);
	pthread_mutex_unlock(&q->lock);
}

void queue_lane_acked(struct queue *q, const char *id, size_t idlen,
		      unsigned lane)
{
	struct queue_tenant *t;

	pthread_mutex_lock(&q->lock);
	t = queue_tenant_get(q, id, idlen, 0);
	if (t != NULL && lane < QUEUE_LANES) {
		t->lane[lane].unacked--;
		pthread_cond_signal(&q->wake);
	}
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
		/* Its own backoff, or its upstream's gate (down and probed
		 * by another request). */
		if (t->retry_at_ms > now || (t->entries > 0 && t->gate_at_ms > now))
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
