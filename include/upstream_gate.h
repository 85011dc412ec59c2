/*
 * upstream_gate.h - one gate per upstream: while it fails as a whole, one
 * request at a time probes it, and on the first success all resume.
 *
 * Why: a failing upstream used to make each tenant back off on its own up to
 * max_backoff, so after an outage the relay waited up to that long (7-19 s
 * with the old 30 s) before its next try, while every tenant's retries
 * together still knocked at the upstream. A gate separates the two
 * questions: "is the upstream there?" (the gate, shared by every tenant and
 * thread that sends there) and "is this tenant's request right?" (each
 * tenant's own backoff, queue.h).
 *
 * An upstream is the origin (scheme://host:port) of the URL a tenant's
 * requests go to, [upstream] url expanded with the tenant's configured ids:
 * tenants whose URLs differ only in the path share one gate; a URL with
 * {account_id} in its host or port gives each upstream its own, so that
 * one tenant's dead upstream never holds another's data back.
 *
 * States of a gate, and what moves it:
 *
 *            answer 5xx / 429 / 408 / no answer (connection refused,
 *            timeout): "down" is logged with the reason
 *     UP  -------------------------------------------------------->  DOWN
 *     every request     <------------------------------------------  one probe in
 *     goes at once       a 2xx (or a refusal: the upstream read     flight at a time;
 *                        the body) to any request: "back up after   the rest wait
 *                        N s" is logged, every waiter goes
 *
 * While DOWN a probe is one ordinary request (some tenant's next entries),
 * let through when no other probe is in flight and the probe delay has
 * passed: retry_delay_ms with the number of failed probes, i.e. min_backoff
 * doubled per failure up to max_backoff (5 s by default, as Prometheus caps
 * its own), jittered to between half and all of it, or the upstream's
 * Retry-After held within those bounds. So the relay is back at most
 * max_backoff (plus one request's time) after the upstream is, and sends
 * one request per probe delay meanwhile, whatever the number of tenants.
 *
 * Answers that concern one tenant's URL or credentials (3xx, 401, 403, 404,
 * ..., retry.h's RETRY_MISCONFIGURED) leave the gate as it is: that tenant
 * backs off on its own and the others go on. A probe that gets one only
 * frees the probe's place for the next waiter.
 *
 * Requests already in flight when a gate goes down finish as they will: a
 * failure among them changes nothing, a success brings the gate up.
 *
 * Threads: one mutex guards every gate; a waiting thread sleeps on one
 * condition variable (monotonic clock) that every change broadcasts. The
 * forwarders do not wait there: upstream_gate_pass tells them to come
 * back later, and they serve other tenants (other upstreams) meanwhile.
 * upstream_gate_try and upstream_gate_answer are the state machine alone,
 * on a clock the caller gives (the unit tests drive it); enter/leave add
 * the lock, the clock, the wait, /metrics and the log lines.
 *
 * /metrics: relay_upstream_up (0 while some upstream is down),
 * relay_upstream_probes_total, relay_upstream_outages_total.
 */
#ifndef RELAY_UPSTREAM_GATE_H
#define RELAY_UPSTREAM_GATE_H

#include <pthread.h>
#include <stdint.h>

#define UPSTREAM_ORIGIN_MAX 256
/* Upstreams tracked at once (a slot is reused once its upstream is up and
 * idle); past that, the others share the last slot's gate. */
#define UPSTREAM_GATE_SLOTS 64

struct upstream_gate {
	char origin[UPSTREAM_ORIGIN_MAX]; /* "" : a free slot */
	int down;               /* probing */
	int probe_out;          /* the probe is in flight */
	unsigned failures;      /* failed probes since it went down, +1 */
	unsigned users;         /* passes held or being waited for */
	uint64_t probe_at_ms;   /* monotonic: no probe before */
	uint64_t down_since_ms; /* monotonic */
	uint64_t probes;        /* probes let through since it went down */
	uint64_t used_ms;       /* monotonic: last asked for a pass */
};

/* What a request was let through as. */
enum upstream_pass {
	UPSTREAM_OPEN,   /* the gate is up */
	UPSTREAM_PROBE,  /* the one probe of a gate that is down */
	UPSTREAM_WAIT,   /* (upstream_gate_try only) not yet */
	UPSTREAM_NONE    /* no pass (stopping) */
};

/* What an answer did to a gate. */
enum upstream_change {
	UPSTREAM_SAME,
	UPSTREAM_WENT_DOWN,
	UPSTREAM_CAME_UP
};

struct upstream_gates {
	pthread_mutex_t lock;
	pthread_cond_t wake;    /* any change of any gate */
	uint64_t min_ms, max_ms;
	uint64_t swept_ms;      /* monotonic: the last look for stale gates */
	int stopping;
	struct upstream_gate gate[UPSTREAM_GATE_SLOTS];
};

/* A request's hold on its gate, from enter to leave. */
struct upstream_ticket {
	int slot;               /* -1: none */
	enum upstream_pass pass;
};

/*
 * Decides for one request at now_ms: UPSTREAM_OPEN, UPSTREAM_PROBE (marks
 * the probe in flight), or UPSTREAM_WAIT with *wait_ms how long at most
 * before asking again (the probe delay left; a fixed while when a probe is
 * out, whose answer wakes the waiters anyway).
 */
enum upstream_pass upstream_gate_try(struct upstream_gate *g, uint64_t now_ms,
				     uint64_t *wait_ms);

/*
 * Takes the answer to a request let through as pass: status is the HTTP
 * status, 0 for no answer, -1 when no request was sent after all.
 * retry_after (NULL or "" if none) and now_s (wall clock, for an HTTP
 * date) set the next probe's delay with min_ms, max_ms and rnd (any random
 * value), as retry_delay_ms does. Returns what changed.
 */
enum upstream_change upstream_gate_answer(struct upstream_gate *g,
					  enum upstream_pass pass, long status,
					  const char *retry_after,
					  uint64_t now_ms, int64_t now_s,
					  uint64_t min_ms, uint64_t max_ms,
					  uint32_t rnd);

/* The origin of url ("http://h:1/x?y" -> "http://h:1") into out; the whole
 * url, cut at out's size, when it has no path. */
void upstream_origin(const char *url, char *out, size_t outlen);

/* Returns 0, or -1 when the condition variable cannot be made. */
int upstream_gates_init(struct upstream_gates *gs, uint64_t min_ms,
			uint64_t max_ms);
void upstream_gates_destroy(struct upstream_gates *gs);

/*
 * Waits until a request to the upstream of url may go, and fills t (to be
 * given to upstream_gate_leave). Returns 0, or -1 once upstream_gates_stop
 * was called (t holds nothing then).
 */
int upstream_gate_enter(struct upstream_gates *gs, const char *url,
			struct upstream_ticket *t);

/*
 * upstream_gate_enter without the wait, for a caller that has other work
 * to give its thread meanwhile (the forwarders: a lane whose upstream is
 * down is put back in the queue, and the thread sends another tenant's
 * data). Returns 0 with t filled (let through: leave it with
 * upstream_gate_leave); 1 when the request must wait, with *wait_ms how
 * long at most before asking again (the probe delay left, or a while when
 * a probe is out; upstream_gate_leave says when waiters may go sooner);
 * -1 once upstream_gates_stop was called. t holds nothing unless 0.
 */
int upstream_gate_pass(struct upstream_gates *gs, const char *url,
		       struct upstream_ticket *t, uint64_t *wait_ms);

/*
 * The answer to the request of t (status as for upstream_gate_answer;
 * reason: the upstream's words or the network error, for the log). Wakes
 * the waiters when something changed; empties t. Returns 1 when waiters
 * may go now (the gate changed, or a probe's place is free), else 0.
 */
int upstream_gate_leave(struct upstream_gates *gs, struct upstream_ticket *t,
			long status, const char *reason,
			const char *retry_after, uint32_t rnd);

/* Makes every upstream_gate_enter return -1, now and later. */
void upstream_gates_stop(struct upstream_gates *gs);

#endif
