#!/usr/bin/env python3
"""fleetsend.py - Remote Write senders that retry as Prometheus does, for
tests/integration/t_fleet.sh, and the check of what reached upstream.

    fleetsend.py send URL --tenant ID:TOKEN [--tenant ...]
                 [--tenant-basic ID:TOKEN ...] --acked FILE
                 --stop-file FILE [--senders 8] [--series 20] [--samples 5]
                 [--start-ts MS] [--step-ms 10] [--pause-ms 20]
                 [--max-requests N] [--give-up-s 60]
    fleetsend.py verify ACKED_FILE   < VictoriaMetrics /api/v1/export lines

send: sender i (0 <= i < --senders) writes for tenant number i % tenants
(the --tenant ones first, then the --tenant-basic ones), with
"Authorization: Bearer TOKEN" (--tenant) or Basic auth with user ID and
password TOKEN (--tenant-basic), over one keep-alive connection of its
own, one request at a time. Its request r holds --series series
    fleet_metric{job="fleet",sender="s<i>",series="<j>"}
with --samples samples each, at --start-ts + (r * samples + k) * --step-ms,
so that every (series, timestamp) of a run is distinct. A request is built
once and sent as the same bytes until it is answered: a 2xx acknowledges
it; a 5xx, a 429, a timeout (10 s) or a connection error is retried after
a backoff (30 ms doubled up to 1 s, as Prometheus' min_backoff and a
shorter max_backoff); any other 4xx drops it (Prometheus does the same).
A sender stops when --stop-file exists (after its current request is
answered), after --max-requests, or when one request has been retried for
--give-up-s (recorded as unacked).

--acked gets one line per request that ended, written as it ends:
    ack|drop|unacked TENANT SENDER REQ SAMPLES ATTEMPTS STATUS
after a first line "# series=S samples=K start=MS step=MS". At the end one
summary line per tenant goes to stdout:
    tenant=T senders=N acked_requests=R acked_samples=S dropped=D
    unacked=U retries=X status_5xx=A status_429=B conn_errors=C

verify: reads the acked file and the export of fleet_metric from stdin
and prints one line per tenant:
    tenant=T acked=N missing=M extra=E dup_rows=D wrong_tenant=W
missing: acknowledged samples VictoriaMetrics does not hold; extra:
samples it holds that were not acknowledged; dup_rows: rows stored more
than once; wrong_tenant: rows whose tenant label is not their sender's.
Exit status 0, 2 on a usage error.

Bodies are built here: protobuf by hand, snappy as literal blocks only
(valid snappy, not compressed), so nothing outside the standard library is
needed.
"""
import argparse
import base64
import http.client
import json
import os
import struct
import sys
import threading
import time
import urllib.parse


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field_len(num, payload):
    return varint(num << 3 | 2) + varint(len(payload)) + payload


def label(name, value):
    return field_len(1, name.encode()) + field_len(2, value.encode())


def sample(value, ts):
    return b"\x09" + struct.pack("<d", value) + b"\x10" + varint(ts)


def write_request(sender, req, o):
    """The WriteRequest of request req of sender number sender."""
    out = bytearray()
    base = o.start_ts + req * o.samples * o.step_ms
    for j in range(o.series):
        ts = field_len(1, label("__name__", "fleet_metric"))
        ts += field_len(1, label("job", "fleet"))
        ts += field_len(1, label("sender", "s%d" % sender))
        ts += field_len(1, label("series", str(j)))
        for k in range(o.samples):
            ts += field_len(2, sample(float(req), base + k * o.step_ms))
        out += field_len(1, ts)
    return bytes(out)


def snappy_literal(data):
    """data as a snappy block of literals only."""
    out = bytearray(varint(len(data)))
    for off in range(0, len(data), 65536):
        chunk = data[off:off + 65536]
        n = len(chunk) - 1
        if n < 60:
            out.append(n << 2)
        elif n < 256:
            out += bytes([60 << 2, n])
        else:
            out += bytes([61 << 2]) + struct.pack("<H", n)
        out += chunk
    return bytes(out)


class Tally:
    def __init__(self):
        self.lock = threading.Lock()
        self.t = {}

    def add(self, tenant, key, n=1):
        with self.lock:
            d = self.t.setdefault(tenant, {})
            d[key] = d.get(key, 0) + n


def post(conn_box, url, body, auth):
    """One attempt: the status, or 0 for a connection error or timeout."""
    if conn_box[0] is None:
        conn_box[0] = http.client.HTTPConnection(url.hostname, url.port,
                                                 timeout=10)
    try:
        conn_box[0].request("POST", url.path, body, {
            "Content-Type": "application/x-protobuf",
            "Content-Encoding": "snappy",
            "X-Prometheus-Remote-Write-Version": "0.1.0",
            "Authorization": auth,
        })
        resp = conn_box[0].getresponse()
        resp.read()
        if resp.getheader("Connection", "").lower() == "close":
            conn_box[0].close()
            conn_box[0] = None
        return resp.status
    except (OSError, http.client.HTTPException):
        conn_box[0].close()
        conn_box[0] = None
        return 0


def sender(i, o, url, tally, out, out_lock):
    tenant, auth = o.tenant[i % len(o.tenant)]
    conn_box = [None]
    nsamples = o.series * o.samples
    tally.add(tenant, "senders")
    for req in range(o.max_requests):
        body = snappy_literal(write_request(i, req, o))
        backoff, attempts, first = 0.03, 0, time.monotonic()
        while True:
            attempts += 1
            st = post(conn_box, url, body, auth)
            if 200 <= st < 300:
                verdict = "ack"
                tally.add(tenant, "acked_requests")
                tally.add(tenant, "acked_samples", nsamples)
                break
            if 400 <= st < 500 and st != 429:
                verdict = "drop"
                tally.add(tenant, "dropped")
                break
            tally.add(tenant, "retries")
            if st == 0:
                tally.add(tenant, "conn_errors")
            elif st == 429:
                tally.add(tenant, "status_429")
            else:
                tally.add(tenant, "status_5xx")
            if time.monotonic() - first > o.give_up_s:
                verdict = "unacked"
                tally.add(tenant, "unacked")
                break
            time.sleep(backoff)
            backoff = min(backoff * 2, 1.0)
        with out_lock:
            out.write("%s %s s%d %d %d %d %d\n" % (verdict, tenant, i, req,
                                                  nsamples, attempts, st))
            out.flush()
        if verdict == "unacked" or os.path.exists(o.stop_file):
            break
        time.sleep(o.pause_ms / 1000.0)
    if conn_box[0] is not None:
        conn_box[0].close()


def cmd_send(o):
    bearer = [t.split(":", 1) for t in o.tenant]
    basic = [t.split(":", 1) for t in o.tenant_basic]
    if not bearer + basic or any(len(t) != 2 for t in bearer + basic):
        print("fleetsend: --tenant ID:TOKEN needed", file=sys.stderr)
        return 2
    o.tenant = [(t, "Bearer " + tok) for t, tok in bearer]
    o.tenant += [(t, "Basic " + base64.b64encode(
        ("%s:%s" % (t, tok)).encode()).decode()) for t, tok in basic]
    if o.start_ts is None:
        o.start_ts = int(time.time() * 1000) - 3600 * 1000
    url = urllib.parse.urlsplit(o.url)
    tally = Tally()
    out_lock = threading.Lock()
    with open(o.acked, "w") as out:
        out.write("# series=%d samples=%d start=%d step=%d\n" %
                  (o.series, o.samples, o.start_ts, o.step_ms))
        out.flush()
        threads = [threading.Thread(target=sender,
                                    args=(i, o, url, tally, out, out_lock))
                   for i in range(o.senders)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    keys = ("senders", "acked_requests", "acked_samples", "dropped",
            "unacked", "retries", "status_5xx", "status_429", "conn_errors")
    for tenant, _ in dict(o.tenant).items():
        d = tally.t.get(tenant, {})
        print("tenant=%s " % tenant +
              " ".join("%s=%d" % (k, d.get(k, 0)) for k in keys))
    return 0


def cmd_verify(o):
    meta, acked, owner = {}, {}, {}
    with open(o.acked_file) as f:
        for line in f:
            w = line.split()
            if line.startswith("#"):
                meta = dict(x.split("=") for x in w[1:])
                continue
            verdict, tenant, snd, req = w[0], w[1], w[2], int(w[3])
            owner[snd] = tenant
            if verdict == "ack":
                acked.setdefault(tenant, []).append((snd, req))
    series, samples = int(meta["series"]), int(meta["samples"])
    start, step = int(meta["start"]), int(meta["step"])
    want = {}
    for tenant, reqs in acked.items():
        s = want.setdefault(tenant, set())
        for snd, req in reqs:
            base = start + req * samples * step
            for j in range(series):
                for k in range(samples):
                    s.add((snd, str(j), base + k * step))
    have, rows, wrong = {}, {}, {}
    for line in sys.stdin:
        if not line.strip():
            continue
        row = json.loads(line.replace("NaN", "null"))
        m = row["metric"]
        snd, tenant = m.get("sender", ""), owner.get(m.get("sender", ""))
        if tenant is None:
            continue
        if m.get("tenant") != tenant:
            wrong[tenant] = wrong.get(tenant, 0) + len(row["timestamps"])
        h = have.setdefault(tenant, set())
        for ts in row["timestamps"]:
            h.add((snd, m.get("series"), ts))
        rows[tenant] = rows.get(tenant, 0) + len(row["timestamps"])
    for tenant in sorted(set(owner.values())):
        w, h = want.get(tenant, set()), have.get(tenant, set())
        print("tenant=%s acked=%d missing=%d extra=%d dup_rows=%d "
              "wrong_tenant=%d" % (tenant, len(w), len(w - h), len(h - w),
                                   rows.get(tenant, 0) - len(h),
                                   wrong.get(tenant, 0)))
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("send")
    s.add_argument("url")
    s.add_argument("--tenant", action="append", default=[])
    s.add_argument("--tenant-basic", action="append", default=[])
    s.add_argument("--acked", required=True)
    s.add_argument("--stop-file", required=True)
    s.add_argument("--senders", type=int, default=8)
    s.add_argument("--series", type=int, default=20)
    s.add_argument("--samples", type=int, default=5)
    s.add_argument("--start-ts", type=int)
    s.add_argument("--step-ms", type=int, default=10)
    s.add_argument("--pause-ms", type=int, default=20)
    s.add_argument("--max-requests", type=int, default=100000)
    s.add_argument("--give-up-s", type=float, default=60)
    v = sub.add_parser("verify")
    v.add_argument("acked_file")
    o = p.parse_args()
    return cmd_send(o) if o.cmd == "send" else cmd_verify(o)


if __name__ == "__main__":
    sys.exit(main())
