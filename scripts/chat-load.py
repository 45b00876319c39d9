#!/usr/bin/env python3
"""Load test for gyre's chat over WebSocket (see docs/chat.md).

CLIENTS WebSocket clients join ROOMS rooms (load-0, load-1, ...; client i is
in room i % ROOMS) as nick c<i>. The first SENDERS clients also send RATE
messages per second each, the text carrying the send time:
"t=<time_ns> s=<sender> n=<seq>". Every client reads everything, and for each
delivered message measures the delivery latency (now - t; the server runs on
the same machine, so the wall clocks agree) and checks that the ids of its
room only increase (an id that does not increase is an ordering violation; an
id that skips ahead, outside a history marked "trimmed", is a lost message).

The clients are spread over PROCESSES worker processes (default: the CPUs this
process may run on), each with its own asyncio loop; they report their raw
numbers to the parent through a multiprocessing Queue. Connections are opened
CONNECT_CONCURRENCY at a time (in total). Sending starts when every worker has
connected its clients; counting starts WARMUP seconds later and lasts SECONDS.

Output: a human summary and, as the last line, one line of JSON.
Exit status: 0 ok; 1 when more than 1% of the connections failed, or on
ordering violations or lost messages; 2 when the run did not finish within
the hard timeout (WARMUP + SECONDS + 60 s) or a worker died.

    python3 scripts/chat-load.py --url ws://127.0.0.1:8080 --clients 200 --seconds 10
"""

import argparse
import asyncio
import json
import math
import multiprocessing as mp
import os
import queue
import resource
import sys
import time
from array import array

try:  # websockets >= 14 moved the asyncio API this script uses here
    from websockets.legacy.client import connect as ws_connect
except ImportError:  # pragma: no cover
    from websockets import connect as ws_connect

PRESENCE_PREFIX = '{"type":"presence"'


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError) as e:
            print(f"chat-load: cannot raise RLIMIT_NOFILE to {hard}: {e}", file=sys.stderr)
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def default_processes():
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover
        return max(1, os.cpu_count() or 1)


def proc_cpu_seconds(pid):
    """utime + stime of process `pid`, in seconds (None if unreadable)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------- worker side


class Stats:
    """One worker's raw numbers (counted inside the measured window unless
    the name says otherwise)."""

    def __init__(self, rooms):
        self.sent = 0
        self.acks = 0
        self.acked_by_room = [0] * rooms
        self.deliveries = 0
        self.deliveries_by_room = [0] * rooms
        self.latency_us = array("q")  # delivery latency of messages with t=
        self.ack_latency_us = array("q")
        self.errors = {}  # code -> count
        self.errors_total = 0  # the whole run, warm-up included
        self.presence = 0
        self.catchups = 0  # history frames after the first (the client lagged)
        self.catchup_messages = 0
        # Whole run: these are correctness checks, not rates.
        self.presence_total = 0
        self.catchups_total = 0
        self.trimmed = 0
        self.order_violations = 0
        self.gaps = 0
        self.missing = 0
        self.disconnects = {}  # "code reason" -> count, closes we did not ask for
        self.connected = 0
        self.failed = {}  # exception -> count
        self.cpu_window = 0.0
        self.send_late = 0  # sends more than 100 ms behind schedule
        self.loop_lag_max_us = 0  # the longest the event loop was busy (window)


class Client:
    __slots__ = ("idx", "room", "nick", "ws", "last", "reader", "sender", "closing")

    def __init__(self, idx, room):
        self.idx = idx
        self.room = room
        self.nick = f"c{idx}"
        self.ws = None
        self.last = None
        self.reader = None
        self.sender = None
        self.closing = False


class Worker:
    def __init__(self, cfg, wid, indices, start_evt, start_at, abort):
        self.cfg = cfg
        self.wid = wid
        self.indices = indices
        self.start_evt = start_evt
        self.start_at = start_at
        self.abort = abort
        self.stats = Stats(cfg["rooms"])
        self.t_from = None  # wall-clock window, seconds
        self.t_to = None

    def in_window(self, now_s):
        return self.t_from is not None and self.t_from <= now_s < self.t_to

    def message(self, c, m, now_ns, in_window, st):
        mid = m["id"]
        last = c.last
        if last is not None:
            if mid <= last:
                st.order_violations += 1
                return
            if mid != last + 1:
                st.gaps += 1
                st.missing += mid - last - 1
        c.last = mid
        if in_window:
            st.deliveries += 1
            st.deliveries_by_room[c.room] += 1
            text = m.get("text", "")
            if text.startswith("t="):
                sp = text.find(" ")
                try:
                    t = int(text[2:sp] if sp > 0 else text[2:])
                except ValueError:
                    return
                st.latency_us.append((now_ns - t) // 1000)

    def history(self, c, d, first, now_ns, in_window, st):
        msgs = d.get("messages") or []
        if first:
            if msgs:
                c.last = msgs[-1]["id"]
            return
        st.catchups_total += 1
        if in_window:
            st.catchups += 1
        if d.get("trimmed"):
            st.trimmed += 1
            if msgs:  # the server says it lost these: not a gap of ours
                c.last = msgs[0]["id"] - 1
        for m in msgs:
            self.message(c, m, now_ns, in_window, st)
            if in_window:
                st.catchup_messages += 1

    async def read(self, c):
        st = self.stats
        ws = c.ws
        try:
            async for raw in ws:
                now_ns = time.time_ns()
                in_window = self.in_window(now_ns / 1e9)
                if isinstance(raw, bytes):
                    raw = raw.decode("utf-8", "replace")
                if raw.startswith(PRESENCE_PREFIX):
                    st.presence_total += 1
                    if in_window:
                        st.presence += 1
                    continue
                d = json.loads(raw)
                kind = d.get("type")
                if kind == "message":
                    self.message(c, d, now_ns, in_window, st)
                elif kind == "ack":
                    if in_window:
                        st.acks += 1
                        st.acked_by_room[c.room] += 1
                        ref = d.get("ref") or ""
                        _, _, t = ref.partition(":")
                        if t.isdigit():
                            st.ack_latency_us.append((now_ns - int(t)) // 1000)
                elif kind == "history":
                    self.history(c, d, False, now_ns, in_window, st)
                elif kind == "error":
                    st.errors_total += 1
                    if in_window:
                        code = d.get("code", "?")
                        st.errors[code] = st.errors.get(code, 0) + 1
                elif kind == "presence":
                    st.presence_total += 1
                    if in_window:
                        st.presence += 1
        except asyncio.CancelledError:
            raise
        except Exception as e:  # ConnectionClosed and friends
            if not c.closing:
                key = f"{type(e).__name__}: {e}"[:120]
                st.disconnects[key] = st.disconnects.get(key, 0) + 1
            return
        if not c.closing:
            key = f"closed by server: {ws.close_code} {ws.close_reason}"[:120]
            st.disconnects[key] = st.disconnects.get(key, 0) + 1

    async def open(self, c, sem):
        cfg = self.cfg
        uri = f"{cfg['url']}/api/rooms/load-{c.room}/ws?nick={c.nick}"
        st = self.stats
        async with sem:
            try:
                ws = await ws_connect(
                    uri,
                    max_size=2**24,
                    ping_interval=None,
                    close_timeout=1,
                    open_timeout=cfg["connect_timeout"],
                    compression=None,
                )
            except Exception as e:
                key = type(e).__name__
                st.failed[key] = st.failed.get(key, 0) + 1
                return
            try:
                raw = await asyncio.wait_for(ws.recv(), cfg["connect_timeout"])
                d = json.loads(raw)
                if d.get("type") != "history":
                    raise RuntimeError(f"first frame is {d.get('type')!r}, not history")
            except Exception as e:
                key = f"first frame: {type(e).__name__}"
                st.failed[key] = st.failed.get(key, 0) + 1
                ws.transport.abort()
                return
        c.ws = ws
        self.history(c, d, True, 0, False, st)
        st.connected += 1
        c.reader = asyncio.ensure_future(self.read(c))

    async def send(self, c, begin, end):
        """Sends cfg.rate messages a second from `begin` to `end` (wall clock)."""
        st = self.stats
        interval = 1.0 / self.cfg["rate"]
        # Stagger the senders over one interval so that they do not send in step.
        due = begin + interval * ((c.idx * 0.618033988749895) % 1.0)
        seq = 0
        ws = c.ws
        while True:
            now = time.time()
            if due >= end:
                return
            if due > now:
                await asyncio.sleep(due - now)
            now_ns = time.time_ns()
            if now_ns / 1e9 - due > 0.1:
                st.send_late += 1
            seq += 1
            text = f"t={now_ns} s={c.idx} n={seq}"
            msg = json.dumps({"type": "say", "text": text, "ref": f"{seq}:{now_ns}"})
            try:
                await ws.send(msg)
            except Exception:
                return  # the reader counts the disconnect
            if self.in_window(now_ns / 1e9):
                st.sent += 1
            due += interval

    async def watch_loop(self):
        """Measures how late a 10 ms timer fires: the client's own stalls."""
        st = self.stats
        loop = asyncio.get_running_loop()
        while True:
            t = loop.time()
            await asyncio.sleep(0.01)
            lag = int((loop.time() - t - 0.01) * 1e6)
            if self.in_window(time.time()) and lag > st.loop_lag_max_us:
                st.loop_lag_max_us = lag

    async def wait_start(self, deadline):
        loop = asyncio.get_running_loop()
        while not self.start_evt.is_set():
            if time.time() > deadline:
                return False
            await loop.run_in_executor(None, self.start_evt.wait, 0.5)
        return not self.abort.value

    async def run(self, out):
        cfg = self.cfg
        st = self.stats
        clients = [Client(i, i % cfg["rooms"]) for i in self.indices]
        sem = asyncio.Semaphore(max(1, cfg["connect_concurrency"] // cfg["processes"]))
        t0 = time.time()
        await asyncio.gather(*(self.open(c, sem) for c in clients))
        out.put(("ready", self.wid, st.connected, dict(st.failed), time.time() - t0))
        live = [c for c in clients if c.ws is not None]
        try:
            if await self.wait_start(cfg["deadline"]):
                begin = self.start_at.value
                self.t_from = begin + cfg["warmup"]
                self.t_to = self.t_from + cfg["seconds"]
                for c in live:
                    if c.idx < cfg["senders"]:
                        c.sender = asyncio.ensure_future(self.send(c, begin, self.t_to))
                watcher = asyncio.ensure_future(self.watch_loop())
                await asyncio.sleep(max(0.0, self.t_from - time.time()))
                cpu0 = time.process_time()
                await asyncio.sleep(max(0.0, self.t_to - time.time()))
                st.cpu_window = time.process_time() - cpu0
                watcher.cancel()
        finally:
            for c in live:
                c.closing = True
                if c.sender:
                    c.sender.cancel()
            if live:
                closes = [asyncio.ensure_future(c.ws.close()) for c in live]
                await asyncio.wait(closes, timeout=5)
                for c in live:
                    if c.ws.transport is not None:
                        c.ws.transport.abort()
                for c in live:
                    if c.reader:
                        c.reader.cancel()
                await asyncio.gather(*(c.reader for c in live if c.reader), return_exceptions=True)
                for f in closes:
                    if not f.done():
                        f.cancel()
                await asyncio.gather(*closes, return_exceptions=True)
        out.put(("result", self.wid, stats_to_dict(st)))


def stats_to_dict(st):
    d = dict(st.__dict__)
    d["latency_us"] = st.latency_us.tobytes()
    d["ack_latency_us"] = st.ack_latency_us.tobytes()
    return d


def worker_main(cfg, wid, indices, out, start_evt, start_at, abort):
    raise_nofile()
    w = Worker(cfg, wid, indices, start_evt, start_at, abort)
    try:
        asyncio.run(asyncio.wait_for(w.run(out), max(1.0, cfg["deadline"] - time.time())))
    except asyncio.TimeoutError:
        out.put(("fail", wid, "worker passed the hard timeout"))
    except BaseException as e:
        out.put(("fail", wid, f"{type(e).__name__}: {e}"))


# ---------------------------------------------------------------- parent side


def percentile(sorted_values, p):
    if not sorted_values:
        return None
    # Nearest rank: the smallest value with at least p% of the values <= it.
    k = math.ceil(p / 100.0 * len(sorted_values)) - 1
    return sorted_values[min(len(sorted_values) - 1, max(0, k))]


def ms(v):
    return None if v is None else round(v / 1000.0, 2)


def merge(results, rooms):
    tot = {
        "sent": 0, "acks": 0, "deliveries": 0, "presence": 0, "catchups": 0,
        "catchup_messages": 0, "trimmed": 0, "order_violations": 0, "gaps": 0,
        "missing": 0, "errors_total": 0, "send_late": 0, "presence_total": 0,
        "catchups_total": 0,
    }
    acked_by_room = [0] * rooms
    deliveries_by_room = [0] * rooms
    errors, disconnects = {}, {}
    lat, ack_lat = array("q"), array("q")
    cpu = []
    tot["loop_lag_max_us"] = 0
    for r in results:
        tot["loop_lag_max_us"] = max(tot["loop_lag_max_us"], r["loop_lag_max_us"])
        for k in tot:
            if k != "loop_lag_max_us":
                tot[k] += r[k]
        for i in range(rooms):
            acked_by_room[i] += r["acked_by_room"][i]
            deliveries_by_room[i] += r["deliveries_by_room"][i]
        for src, dst in ((r["errors"], errors), (r["disconnects"], disconnects)):
            for k, v in src.items():
                dst[k] = dst.get(k, 0) + v
        lat.frombytes(r["latency_us"])
        ack_lat.frombytes(r["ack_latency_us"])
        cpu.append(r["cpu_window"])
    return tot, acked_by_room, deliveries_by_room, errors, disconnects, sorted(lat), sorted(ack_lat), cpu


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", default="ws://127.0.0.1:8080", help="ws://HOST:PORT")
    ap.add_argument("--clients", type=int, default=2000)
    ap.add_argument("--rooms", type=int, default=4)
    ap.add_argument("--senders", type=int, default=40, help="clients that also send")
    ap.add_argument("--rate", type=float, default=2.0, help="messages/s per sender")
    ap.add_argument("--seconds", type=float, default=20.0, help="measured seconds")
    ap.add_argument("--warmup", type=float, default=3.0, help="seconds sent but not counted")
    ap.add_argument("--processes", type=int, default=default_processes())
    ap.add_argument("--connect-concurrency", type=int, default=200,
                    help="connections being opened at once, over all processes")
    ap.add_argument("--connect-timeout", type=float, default=20.0, help="per connection, s")
    ap.add_argument("--server-pid", type=int, help="measure this process's CPU time in the window")
    args = ap.parse_args()
    if args.clients < 1 or args.rooms < 1 or args.rate <= 0 or args.seconds <= 0 or args.warmup < 0:
        ap.error("need --clients >= 1, --rooms >= 1, --rate > 0, --seconds > 0, --warmup >= 0")
    args.senders = max(0, min(args.senders, args.clients))
    args.processes = max(1, min(args.processes, args.clients))
    args.url = args.url.rstrip("/")

    nofile = raise_nofile()
    per_proc = -(-args.clients // args.processes)
    if per_proc + 32 > nofile:
        print(f"chat-load: {per_proc} connections per process do not fit RLIMIT_NOFILE {nofile}; "
              f"use more --processes", file=sys.stderr)
        return 2

    t_begin = time.time()
    deadline = t_begin + args.warmup + args.seconds + 60
    cfg = {
        "url": args.url, "rooms": args.rooms, "senders": args.senders, "rate": args.rate,
        "seconds": args.seconds, "warmup": args.warmup, "processes": args.processes,
        "connect_concurrency": args.connect_concurrency,
        "connect_timeout": args.connect_timeout, "deadline": deadline,
    }
    ctx = mp.get_context("fork")
    out = ctx.Queue()
    start_evt = ctx.Event()
    start_at = ctx.Value("d", 0.0)
    abort = ctx.Value("b", 0)
    procs = []
    for w in range(args.processes):
        indices = list(range(w, args.clients, args.processes))
        p = ctx.Process(target=worker_main, args=(cfg, w, indices, out, start_evt, start_at, abort),
                        daemon=True)
        p.start()
        procs.append(p)

    def stop(code, msg):
        print(f"chat-load: {msg}", file=sys.stderr)
        abort.value = 1
        start_evt.set()
        # Read what the workers still send so that they can exit, for up to 10 s.
        end = min(time.time() + 10.0, max(deadline, time.time() + 1.0))
        while time.time() < end and any(p.is_alive() for p in procs):
            try:
                out.get(timeout=0.2)
            except queue.Empty:
                pass
        for p in procs:
            if p.is_alive():
                p.terminate()
        return code

    def get(timeout):
        """The next worker message, or None when `timeout` passed or a worker died."""
        end = time.time() + timeout
        while True:
            left = end - time.time()
            if left <= 0:
                return None
            try:
                return out.get(timeout=min(left, 1.0))
            except queue.Empty:
                if any(p.exitcode not in (None, 0) for p in procs):
                    try:
                        return out.get(timeout=0.5)
                    except queue.Empty:
                        return ("fail", -1, "a worker process died")

    # 1. Connect.
    connected, failed, connect_secs = 0, {}, 0.0
    ready = 0
    while ready < args.processes:
        m = get(deadline - time.time())
        if m is None:
            return stop(2, f"timeout: only {ready} of {args.processes} workers connected "
                           f"within the hard timeout")
        if m[0] == "fail":
            return stop(2, f"worker {m[1]} failed: {m[2]}")
        if m[0] == "ready":
            ready += 1
            connected += m[2]
            for k, v in m[3].items():
                failed[k] = failed.get(k, 0) + v
            connect_secs = max(connect_secs, m[4])
    n_failed = args.clients - connected
    print(f"chat-load: {connected}/{args.clients} clients connected in {connect_secs:.1f} s "
          f"({n_failed} failed{': ' + json.dumps(failed) if failed else ''}), "
          f"{args.rooms} rooms, {args.processes} processes", flush=True)
    if n_failed > args.clients / 100:
        return stop(1, f"{n_failed} of {args.clients} connections failed (> 1%): "
                       f"{json.dumps(failed)}")

    # 2. Send: warm-up, then the measured window.
    begin = time.time() + 0.3
    start_at.value = begin
    start_evt.set()
    t_from, t_to = begin + args.warmup, begin + args.warmup + args.seconds
    server_cpu = None
    if args.server_pid:
        time.sleep(max(0.0, t_from - time.time()))
        c0 = proc_cpu_seconds(args.server_pid)
        time.sleep(max(0.0, t_to - time.time()))
        c1 = proc_cpu_seconds(args.server_pid)
        if c0 is not None and c1 is not None:
            server_cpu = c1 - c0

    # 3. Collect.
    results = []
    while len(results) < args.processes:
        m = get(deadline - time.time())
        if m is None:
            return stop(2, f"timeout: only {len(results)} of {args.processes} workers reported "
                           f"within the hard timeout ({args.warmup + args.seconds + 60:.0f} s)")
        if m[0] == "fail":
            return stop(2, f"worker {m[1]} failed: {m[2]}")
        if m[0] == "result":
            results.append(m[2])
    for p in procs:
        p.join(timeout=5)

    tot, acked_by_room, deliv_by_room, errors, disconnects, lat, ack_lat, cpu = merge(results, args.rooms)
    secs = args.seconds
    room_size = [len(range(r, args.clients, args.rooms)) for r in range(args.rooms)]
    # Every acked message should reach every connected client of its room.
    expected = sum(acked_by_room[r] * room_size[r] for r in range(args.rooms)) * connected / args.clients
    summary = {
        "clients": args.clients,
        "connected": connected,
        "connect_failed": n_failed,
        "connect_seconds": round(connect_secs, 2),
        "rooms": args.rooms,
        "senders": args.senders,
        "rate_per_sender": args.rate,
        "processes": args.processes,
        "seconds": secs,
        "warmup": args.warmup,
        "sent": tot["sent"],
        "acked": tot["acks"],
        "messages_in_per_s": round(tot["acks"] / secs, 1),
        "deliveries": tot["deliveries"],
        "deliveries_out_per_s": round(tot["deliveries"] / secs, 1),
        "delivery_ratio": round(tot["deliveries"] / expected, 4) if expected else None,
        "latency_ms": {
            "n": len(lat),
            "p50": ms(percentile(lat, 50)),
            "p90": ms(percentile(lat, 90)),
            "p99": ms(percentile(lat, 99)),
            "max": ms(lat[-1] if lat else None),
        },
        "ack_latency_ms": {
            "p50": ms(percentile(ack_lat, 50)),
            "p99": ms(percentile(ack_lat, 99)),
            "max": ms(ack_lat[-1] if ack_lat else None),
        },
        "errors": errors,
        "errors_whole_run": tot["errors_total"],
        "order_violations": tot["order_violations"],
        "gaps": tot["gaps"],
        "missing_ids": tot["missing"],
        "catchup_histories": tot["catchups"],
        "catchup_messages": tot["catchup_messages"],
        "catchup_histories_whole_run": tot["catchups_total"],
        "trimmed_histories": tot["trimmed"],
        "presence_frames": tot["presence"],
        "presence_frames_whole_run": tot["presence_total"],
        "disconnects": disconnects,
        "sends_late": tot["send_late"],
        "client_cpu_util": round(sum(cpu) / secs, 3),
        "client_loop_lag_max_ms": ms(tot["loop_lag_max_us"]),
    }
    if server_cpu is not None:
        summary["server_cpu_seconds"] = round(server_cpu, 3)
        summary["server_cpu_s_per_1000_deliveries"] = (
            round(server_cpu / tot["deliveries"] * 1000, 5) if tot["deliveries"] else None)

    L = summary["latency_ms"]
    A = summary["ack_latency_ms"]
    print(f"clients connected:   {connected} of {args.clients} in {args.rooms} rooms "
          f"({', '.join(map(str, room_size))}); {args.senders} senders x {args.rate:g}/s")
    print(f"measured:            {secs:g} s after {args.warmup:g} s warm-up")
    print(f"messages in:         {summary['messages_in_per_s']:,.1f}/s "
          f"({tot['acks']} acked of {tot['sent']} sent)")
    print(f"deliveries out:      {summary['deliveries_out_per_s']:,.1f}/s "
          f"({tot['deliveries']}; {summary['delivery_ratio']} of acked x room size)")
    print(f"delivery latency ms: p50 {L['p50']}  p90 {L['p90']}  p99 {L['p99']}  max {L['max']}"
          f"  (n={L['n']})")
    print(f"ack latency ms:      p50 {A['p50']}  p99 {A['p99']}  max {A['max']}")
    print(f"errors:              {json.dumps(errors) if errors else 'none'}"
          f" (whole run: {tot['errors_total']})")
    print(f"ordering:            {tot['order_violations']} violations, {tot['gaps']} gaps "
          f"({tot['missing']} ids missing), {tot['catchups']} catch-up histories "
          f"({tot['catchup_messages']} messages; whole run {tot['catchups_total']}, "
          f"{tot['trimmed']} trimmed)")
    print(f"disconnects:         {json.dumps(disconnects) if disconnects else 'none'}")
    print(f"presence frames:     {tot['presence']} in the window, {tot['presence_total']} in all")
    print(f"client CPU:          {summary['client_cpu_util']:.2f} CPUs busy over {args.processes} "
          f"processes; event loop stalled up to {summary['client_loop_lag_max_ms']} ms; "
          f"{tot['send_late']} sends > 100 ms late")
    if server_cpu is not None:
        print(f"server CPU:          {server_cpu:.2f} s in the window "
              f"({summary['server_cpu_s_per_1000_deliveries']} s per 1000 deliveries)")
    busy = summary["client_cpu_util"] / (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)
    if tot["loop_lag_max_us"] > 100_000 or tot["send_late"] or busy > 0.8:
        print(f"warning:             the client fell behind (event loop stalled up to "
              f"{summary['client_loop_lag_max_ms']} ms, {tot['send_late']} late sends, "
              f"{busy:.0%} of its CPUs busy; a busy or shared CPU): the latencies measure the "
              f"client as much as the server", file=sys.stderr)
        summary["client_bound"] = True
    else:
        summary["client_bound"] = False
    print(json.dumps(summary, separators=(",", ":")), flush=True)

    bad = []
    if tot["order_violations"]:
        bad.append(f"{tot['order_violations']} ordering violations")
    if tot["missing"]:
        bad.append(f"{tot['missing']} lost messages")
    if bad:
        print(f"chat-load: FAIL: {', '.join(bad)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
