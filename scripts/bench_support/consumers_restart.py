#!/usr/bin/env python3
"""Restart time and memory of a micro-gw Express Gateway gateway with N consumers in its store
(issue 13, "restart time with 100,000 consumers"). Standard library only.

Uses the gateway scripts/bench builds for its micro-gw-eg target (target/bench/mgw/egproj, from
scripts/bench_support/eg/gateway.config.yml; run `scripts/bench --only micro-gw-eg --scenarios
egkeyauth --quick` once to build it). With --fill it starts the gateway on an empty store and
creates N users, each with a key-auth credential (keyId k<i>, keySecret s<i>), through the admin
API, then stops it. Then it starts the gateway --restarts times on that store and reports, per
start: time until the key of the last consumer is accepted on /egkey/* (the answer is 502, as the
backend port is closed), time to the first answer of any kind, and VmRSS / RssAnon / VmHWM 3 s
after. Example:

    scripts/bench_support/consumers_restart.py --fill 100000 --store /tmp/c100k/consumers.db
"""

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
PROJECT = ROOT / "target" / "bench" / "mgw" / "egproj"
TOKEN = "bench-only-admin-token"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def status(port, path, headers):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("GET", path, headers=headers)
        resp = conn.getresponse()
        resp.read()
        return resp.status
    finally:
        conn.close()


def start(args, ready_auth):
    """Starts the gateway; returns (process, s to the first answer, s to ready, http, admin port)."""
    hp, ap = free_port(), free_port()
    env = dict(os.environ, MGW_ADMIN_TOKEN=TOKEN, BENCH_EG_HTTP_PORT=str(hp), BENCH_EG_ADMIN_PORT=str(ap),
               BENCH_BACKEND_PORT="9")
    cmd = [str(args.project / "target" / args.project.name), "--config", str(args.project / "conf" / "micro-gw.toml"),
           f"--express_gateway.http_port={hp}", f"--express_gateway.admin_port={ap}", f"--store.path={args.store}",
           "--listener.worker_threads=1", "--log.access_log=false"]
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    first = None
    headers = {"Authorization": ready_auth} if ready_auth else {}
    want = 502 if ready_auth else 401
    while True:
        if proc.poll() is not None:
            sys.exit(f"the gateway exited with {proc.returncode}")
        if time.monotonic() - t0 > 300:
            proc.kill()
            sys.exit("not ready after 300 s")
        try:
            st = status(hp, "/egkey/x", headers)
            first = first if first is not None else time.monotonic() - t0
            if st == want:
                return proc, first, time.monotonic() - t0, hp, ap
        except OSError:
            pass
        time.sleep(0.002)


def fill(args):
    proc, _f, _r, _hp, ap = start(args, None)
    conn = http.client.HTTPConnection("127.0.0.1", ap, timeout=30)
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    t0 = time.monotonic()
    try:
        for i in range(args.fill):
            for path, body in (("/users", {"username": f"u{i}", "firstname": "F", "lastname": "L"}),
                               ("/credentials", {"consumerId": f"u{i}", "type": "key-auth",
                                                 "credential": {"keyId": f"k{i}", "keySecret": f"s{i}"}})):
                conn.request("POST", path, body=json.dumps(body), headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                if resp.status not in (200, 201):
                    sys.exit(f"POST {path} #{i}: {resp.status} {data[:200]!r}")
            if i and i % 10000 == 0:
                print(f"  {i} consumers, {time.monotonic() - t0:.0f} s", flush=True)
    finally:
        conn.close()
        proc.terminate()
        proc.wait()
    print(f"filled {args.fill} consumers (user + key-auth credential) in {time.monotonic() - t0:.1f} s", flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--store", type=Path, required=True, help="the store file (--store.path)")
    p.add_argument("--fill", type=int, default=0, help="first create N consumers on a new store")
    p.add_argument("--consumers", type=int, default=None, help="consumers already in the store (default --fill)")
    p.add_argument("--restarts", type=int, default=5)
    p.add_argument("--project", type=Path, default=PROJECT)
    args = p.parse_args()
    if args.fill:
        if args.store.exists():
            sys.exit(f"{args.store} exists: --fill wants a new store")
        args.store.parent.mkdir(parents=True, exist_ok=True)
        fill(args)
    n = args.consumers if args.consumers is not None else args.fill
    if n < 1:
        sys.exit("--consumers or --fill: how many consumers the store holds")
    last = f"apiKey k{n - 1}:s{n - 1}"
    ready = []
    for k in range(args.restarts):
        proc, first, t, _hp, _ap = start(args, last)
        time.sleep(3)
        st = {line.split(":")[0]: int(line.split()[1]) // 1024 for line in open(f"/proc/{proc.pid}/status")
              if line.startswith(("VmRSS", "VmHWM", "RssAnon"))}
        proc.terminate()
        proc.wait()
        ready.append(t)
        print(f"start {k + 1}: first answer {first * 1000:.0f} ms, key of consumer {n} accepted {t * 1000:.0f} ms; "
              f"VmRSS {st['VmRSS']} MB (anon {st['RssAnon']} MB), VmHWM {st['VmHWM']} MB", flush=True)
    print(f"median {statistics.median(ready) * 1000:.0f} ms over {len(ready)} starts; store file "
          f"{args.store.stat().st_size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
