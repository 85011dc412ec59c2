#!/usr/bin/env python3
"""hostile.py - hostile clients for tests/integration/t_hostile.sh.

    hostile.py PORT --aborted N --slow N --stalled N [options]

Against 127.0.0.1:PORT, from the loopback source addresses given (each kind
spreads its connections over its own addresses, round robin):

  aborted  connect, send "POST /api/v1/write HTTP/1.1\\r\\nHost: x\\r\\n" and
           close, the partial header and the FIN in one segment (TCP_CORK);
  slow     connect, send a request line, then one header byte a second; a
           connection the relay closes is opened again while the attack
           lasts (at most --reopen times per slot);
  stalled  connect, send a write request's headers (Content-Length
           --body-size, --token), the body fast up to --stall-at bytes,
           then one byte every 20 s;
  gone     connect (from 127.0.0.1), send a whole valid write request of
           --gone-series series (--token), wait --gone-wait-ms and close
           without reading the answer: a sender whose timeout ran out
           while the relay committed its request. All of them at once.

Everything stops after --duration seconds. Prints one summary line:
  aborted=N slow_opened=N slow_closed_by_peer=N stalled_opened=N
  stalled_answered=N stalled_closed_by_peer=N gone=N gone_samples=N
Exit status 0, 2 on a usage error.
"""
import argparse
import asyncio
import resource
import socket
import struct
import sys
import threading
import time

PARTIAL = b"POST /api/v1/write HTTP/1.1\r\nHost: x\r\n"


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def send_aborted(port, sources, n, deadline):
    done = 0
    for i in range(n):
        if time.monotonic() > deadline:
            break
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.settimeout(2)
            s.bind((sources[i % len(sources)], 0))
            s.connect(("127.0.0.1", port))
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)
            s.send(PARTIAL)
            done += 1
        except OSError:
            pass
        finally:
            s.close()  # FIN joins the corked data
    return done


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if not n:
            out.append(b)
            return bytes(out)
        out.append(b | 0x80)


def field(num, payload):
    return varint(num << 3 | 2) + varint(len(payload)) + payload


def write_body(series, prefix):
    """A WriteRequest of `series` one-sample series, snappy-framed with
    literals only (a valid block; no snappy module needed)."""
    ts = int(time.time() * 1000)
    raw = bytearray()
    for i in range(series):
        labels = (field(1, field(1, b"__name__") + field(2, b"gone_metric")) +
                  field(1, field(1, b"i") + field(2, b"%s-%d" % (prefix, i))))
        sample = field(2, b"\x09" + struct.pack("<d", 1.0) + b"\x10" + varint(ts))
        raw += field(1, labels + sample)
    out = bytearray(varint(len(raw)))
    for i in range(0, len(raw), 65536):
        chunk = raw[i:i + 65536]
        out.append(61 << 2)
        out += struct.pack("<H", len(chunk) - 1)
        out += chunk
    return bytes(out)


def send_gone(port, args, i, done):
    body = write_body(args.gone_series, b"g%d" % i)
    head = ("POST /api/v1/write HTTP/1.1\r\nHost: x\r\n"
            "Content-Type: application/x-protobuf\r\n"
            "Content-Encoding: snappy\r\n"
            "X-Prometheus-Remote-Write-Version: 0.1.0\r\n"
            "%sContent-Length: %d\r\n\r\n" %
            ("Authorization: Bearer %s\r\n" % args.token if args.token else "",
             len(body)))
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(head.encode() + body)
        time.sleep(args.gone_wait_ms / 1000.0)
        s.close()
        done.append(args.gone_series)
    except OSError:
        pass


def send_all_gone(port, args):
    done = []
    threads = [threading.Thread(target=send_gone, args=(port, args, i, done))
               for i in range(args.gone)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return len(done), sum(done)


class Counts:
    def __init__(self):
        self.slow_opened = 0
        self.slow_closed = 0
        self.stalled_opened = 0
        self.stalled_answered = 0
        self.stalled_closed = 0


async def peer_closed(reader, timeout):
    """True when the peer closed (or answered and closed) within timeout."""
    try:
        data = await asyncio.wait_for(reader.read(4096), timeout)
        if data == b"":
            return True, False
        return True, True
    except asyncio.TimeoutError:
        return False, False
    except OSError:
        return True, False


async def slow_one(port, src, deadline, reopen, c):
    for _ in range(reopen + 1):
        if time.monotonic() > deadline:
            return
        try:
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", port, local_addr=(src, 0))
        except OSError:
            await asyncio.sleep(0.5)
            continue
        c.slow_opened += 1
        closed = False
        try:
            writer.write(b"POST /api/v1/write HTTP/1.1\r\n")
            await writer.drain()
            while time.monotonic() < deadline:
                gone, _ = await peer_closed(reader, 1.0)
                if gone:
                    closed = True
                    break
                writer.write(b"X")
                await writer.drain()
        except OSError:
            closed = True
        if closed:
            c.slow_closed += 1
        writer.close()
        if not closed:
            return
        await asyncio.sleep(0.3)


async def stalled_one(port, src, deadline, args, c):
    try:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, local_addr=(src, 0))
    except OSError:
        return
    c.stalled_opened += 1
    head = ("POST /api/v1/write HTTP/1.1\r\nHost: x\r\n"
            "Content-Type: application/x-protobuf\r\n"
            "Content-Encoding: snappy\r\n"
            "Authorization: Bearer %s\r\n"
            "Content-Length: %d\r\n\r\n" % (args.token, args.body_size))
    chunk = b"\0" * (1 << 20)
    try:
        writer.write(head.encode())
        sent = 0
        while sent < args.stall_at and time.monotonic() < deadline:
            n = min(len(chunk), args.stall_at - sent)
            writer.write(chunk[:n])
            await writer.drain()
            sent += n
        while time.monotonic() < deadline:
            gone, answered = await peer_closed(reader, 20.0)
            if gone:
                if answered:
                    c.stalled_answered += 1
                c.stalled_closed += 1
                break
            writer.write(b"\0")
            await writer.drain()
    except OSError:
        c.stalled_closed += 1
    writer.close()


async def attack(args, c):
    deadline = time.monotonic() + args.duration
    tasks = []
    for i in range(args.stalled):
        src = args.stalled_from[i % len(args.stalled_from)]
        tasks.append(asyncio.ensure_future(stalled_one(args.port, src, deadline, args, c)))
    for i in range(args.slow):
        src = args.slow_from[i % len(args.slow_from)]
        tasks.append(asyncio.ensure_future(
            slow_one(args.port, src, deadline, args.reopen, c)))
        if i % 100 == 99:
            await asyncio.sleep(0)
    loop = asyncio.get_event_loop()
    aborted = await loop.run_in_executor(
        None, send_aborted, args.port, args.aborted_from, args.aborted, deadline)
    await asyncio.gather(*tasks, return_exceptions=True)
    return aborted


def main():
    p = argparse.ArgumentParser()
    p.add_argument("port", type=int)
    p.add_argument("--aborted", type=int, default=0)
    p.add_argument("--slow", type=int, default=0)
    p.add_argument("--stalled", type=int, default=0)
    p.add_argument("--aborted-from", default="127.0.0.2")
    p.add_argument("--slow-from", default="127.0.0.3")
    p.add_argument("--stalled-from", default="127.0.0.4")
    p.add_argument("--token", default="")
    p.add_argument("--body-size", type=int, default=30 << 20)
    p.add_argument("--stall-at", type=int, default=29 << 20)
    p.add_argument("--reopen", type=int, default=30)
    p.add_argument("--gone", type=int, default=0)
    p.add_argument("--gone-series", type=int, default=2000)
    p.add_argument("--gone-wait-ms", type=float, default=2)
    p.add_argument("--duration", type=float, default=20)
    args = p.parse_args()
    for k in ("aborted_from", "slow_from", "stalled_from"):
        setattr(args, k, getattr(args, k).split(","))
    if args.stall_at > args.body_size:
        p.error("--stall-at must not pass --body-size")
    raise_nofile()
    c = Counts()
    gone, gone_samples = send_all_gone(args.port, args) if args.gone else (0, 0)
    aborted = asyncio.run(attack(args, c))
    print("aborted=%d slow_opened=%d slow_closed_by_peer=%d stalled_opened=%d "
          "stalled_answered=%d stalled_closed_by_peer=%d gone=%d gone_samples=%d" %
          (aborted, c.slow_opened, c.slow_closed, c.stalled_opened,
           c.stalled_answered, c.stalled_closed, gone, gone_samples))
    return 0


if __name__ == "__main__":
    sys.exit(main())
