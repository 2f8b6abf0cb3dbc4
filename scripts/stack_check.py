#!/usr/bin/env python3
"""The promises a trading stack keeps through failures, checked after the fact.

    stack_check.py --redis-cli "docker exec CID redis-cli" --db execution.db \
        --sim http://127.0.0.1:PORT --watch watch.json [--bare-secs 5] [--wait 90]

Checks, printing one line each and exiting 1 when any fails:
  intents final   execution's group on qt:intents has nothing pending or undelivered, and no order
                  of execution's database is still SENDING (polled for up to --wait seconds:
                  final means final eventually, not at one instant)
  no duplicate    no client order id twice on the exchange (orders and algo orders of every
                  symbol execution traded), no signal opened twice (two filled entry orders
                  with one signal id)
  limits          at most --max-positions symbols held at once (from soak-watch's samples), no
                  entry above --max-leverage, no filled entry above --max-notional by 2 %
  protected       every stretch in which a position had neither its stop on the exchange nor a
                  market close working was shorter than --bare-secs (soak-watch's `bare`)
`--db` is a copy of execution's SQLite database made with `.backup` (the caller re-makes it
through --db-refresh, a shell command run before each look at it).
"""

import argparse
import hashlib
import hmac
import json
import shlex
import sqlite3
import subprocess
import sys
import time
import urllib.request


def redis(cli, *args):
    out = subprocess.run(shlex.split(cli) + list(args), capture_output=True, text=True, check=True)
    return out.stdout.splitlines()


def group(cli, stream, name):
    """(pending, undelivered) of one group: its pending entries from XINFO GROUPS (redis-cli
    prints name, value, ...), and the entries after its last-delivered-id, counted with XRANGE
    (XINFO's `lag` is a counter that a failover can leave off by the writes it lost)."""
    lines = redis(cli, "XINFO", "GROUPS", stream)
    cur, pending, last, prev = None, None, None, None
    for line in lines:
        if prev == "name":
            cur = line
        elif cur == name and prev == "pending":
            pending = line
        elif cur == name and prev == "last-delivered-id":
            last = line
        prev = line
    if last is None:
        return pending, None
    after = json.loads("\n".join(redis(cli, "--json", "XRANGE", stream, f"({last}", "+", "COUNT", "1000")))
    return pending, str(len(after))


def query(db, sql):
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def signed_get(sim, path, query_s, key, secret):
    q = f"{query_s}&timestamp={int(time.time() * 1000)}&recvWindow=10000"
    sig = hmac.new(secret.encode(), q.encode(), hashlib.sha256).hexdigest()
    req = urllib.request.Request(f"{sim}{path}?{q}&signature={sig}", headers={"X-MBX-APIKEY": key})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--redis-cli", required=True)
    ap.add_argument("--db", required=True)
    ap.add_argument("--db-refresh", default="")
    ap.add_argument("--sim", required=True)
    ap.add_argument("--watch", required=True)
    ap.add_argument("--key", default="paper-key")
    ap.add_argument("--secret", default="paper-secret")
    ap.add_argument("--bare-secs", type=float, default=5.0)
    ap.add_argument("--wait", type=float, default=90.0)
    ap.add_argument("--max-positions", type=int, default=8)
    ap.add_argument("--max-leverage", type=float, default=10)
    ap.add_argument("--max-notional", type=float, default=2500)
    a = ap.parse_args()
    failures = []

    def refresh():
        if a.db_refresh:
            subprocess.run(a.db_refresh, shell=True, check=True)

    deadline = time.time() + a.wait
    while True:
        refresh()
        pending, undelivered = group(a.redis_cli, "qt:intents", "execution")
        sending = query(a.db, "SELECT count(*) FROM exec_orders WHERE state = 'SENDING'")[0][0]
        if (pending, undelivered, sending) == ("0", "0", 0) or time.time() > deadline:
            break
        time.sleep(2)
    print(f"intents: execution's group has {pending} pending, {undelivered} not delivered; "
          f"orders still SENDING: {sending}")
    if (pending, undelivered) != ("0", "0"):
        failures.append(f"intents not all handled ({pending} pending, {undelivered} not delivered)")
    if sending:
        failures.append(f"{sending} orders still SENDING")
    filled = query(a.db, "SELECT count(*) FROM exec_orders WHERE leg = 'entry' AND state = 'FILLED'")[0][0]
    total = query(a.db, "SELECT count(*) FROM exec_orders")[0][0]
    print(f"execution's orders: {total} recorded, {filled} filled entries")
    if filled == 0:
        failures.append("nothing traded: the run proved nothing")

    dups, seen = 0, 0
    for (symbol,) in query(a.db, "SELECT DISTINCT symbol FROM exec_orders"):
        orders = signed_get(a.sim, "/fapi/v1/allOrders", f"symbol={symbol}&limit=1000", a.key, a.secret)
        algos = signed_get(a.sim, "/fapi/v1/allAlgoOrders", f"symbol={symbol}&limit=1000", a.key, a.secret)
        for rows, field in ((orders, "clientOrderId"), (algos, "clientAlgoId")):
            ids = [r[field] for r in rows]
            dups += len(ids) - len(set(ids))
            seen += len(ids)
            if len(rows) >= 1000:
                failures.append(f"{symbol} has 1000 orders or more: the duplicate check saw only the last 1000")
    twice = query(a.db, """SELECT count(*) FROM (SELECT json_extract(signal, '$.signal_id') AS sid
        FROM exec_orders WHERE leg = 'entry' AND state = 'FILLED' AND sid IS NOT NULL
        GROUP BY sid HAVING count(*) > 1)""")[0][0]
    print(f"exchange: {seen} orders, {dups} client ids twice; signals opened twice: {twice}")
    if dups:
        failures.append(f"{dups} client order ids twice on the exchange")
    if twice:
        failures.append(f"{twice} signals opened twice")

    watch = json.load(open(a.watch))
    over_lev = query(a.db, f"SELECT count(*) FROM exec_orders WHERE leg = 'entry' AND leverage > {a.max_leverage}")[0][0]
    over_notional = query(a.db, f"""SELECT count(*) FROM exec_orders WHERE leg = 'entry'
        AND CAST(filled_qty AS REAL) * CAST(avg_price AS REAL) > {a.max_notional} * 1.02""")[0][0]
    print(f"limits: at most {watch['max_positions']} symbols held at once (max {a.max_positions}); "
          f"entries above {a.max_leverage:g}x: {over_lev}; above {a.max_notional:g} +2 %: {over_notional}")
    if watch["max_positions"] > a.max_positions:
        failures.append(f"{watch['max_positions']} symbols held at once")
    if over_lev:
        failures.append(f"{over_lev} entries above max leverage")
    if over_notional:
        failures.append(f"{over_notional} entries above max notional")

    bare = watch["bare"]
    late = [b for b in bare if b["secs"] >= a.bare_secs]
    longest = max((b["secs"] for b in bare), default=0.0)
    print(f"protection: {watch['samples']} book samples ({watch['unreachable']} unanswered), "
          f"{len(bare)} unprotected stretches, longest {longest:.1f} s, {len(late)} of {a.bare_secs:g} s or more")
    for b in late:
        print(f"    {b['symbol']} from {time.strftime('%H:%M:%S', time.gmtime(b['from_ms'] / 1000))} for {b['secs']:.1f} s")
    if late:
        failures.append(f"{len(late)} positions unprotected for {a.bare_secs:g} s or more")

    if failures:
        print("FAILED:")
        for f in failures:
            print(f"    {f}")
        sys.exit(1)
    print("every check passed")


if __name__ == "__main__":
    main()
