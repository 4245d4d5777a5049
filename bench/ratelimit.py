"""Rate limits on Redis: `limits` (three round trips a request) vs one script call.

`--hits` sequential requests of one caller against a plan that admits them all (the common
case), each path with its own pool on the same Redis (`security/ratelimit.py`:
`LimitsWindows`, the old path, and `RedisWindows`), in the same run, the order alternating
between repeats. The figure is microseconds per request, as the API worker awaits it
(client code, round trips and the server's work together), on uvloop as the server runs.

    python -m bench ratelimit [--hits 2000] [--repeats 5] [--url redis://127.0.0.1:6379/0]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import uuid
from collections.abc import Sequence

import uvloop
from redis.asyncio import Redis

from cryptopulse.security.ratelimit import LimitsWindows, RedisWindows

URL = os.environ.get("CRYPTOPULSE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
RPM = BURST = 10**9  # every request admitted: each path does its full work


async def per_hit_us(windows: LimitsWindows | RedisWindows, who: str, hits: int) -> float:
    hit_plan = windows.hit_plan
    await hit_plan(who, RPM, BURST)  # connect, load the script
    start = time.perf_counter()
    for _ in range(hits):
        allowed, _, _ = await hit_plan(who, RPM, BURST)
        assert allowed
    return (time.perf_counter() - start) / hits * 1e6


async def run(url: str, hits: int, repeats: int) -> dict[str, list[float]]:
    who = f"bench-{uuid.uuid4().hex[:10]}"
    paths: dict[str, LimitsWindows | RedisWindows] = {
        "limits: hit, hit, get_window_stats": LimitsWindows(url),
        "script: one EVALSHA": RedisWindows(url, prefix=f"cpbench:rl:{who}:"),
    }
    results: dict[str, list[float]] = {name: [] for name in paths}
    names = list(paths)
    for repeat in range(repeats):
        for name in names if repeat % 2 == 0 else names[::-1]:
            results[name].append(await per_hit_us(paths[name], who, hits))
    redis = Redis.from_url(url)  # both paths' counters: only this run's caller
    keys = [k async for k in redis.scan_iter(match=f"*{who}*")]
    if keys:
        await redis.delete(*keys)
    await redis.aclose()
    for windows in paths.values():
        if isinstance(windows, RedisWindows):
            await windows.aclose()
    return results


def main(argv: Sequence[str] | None = None) -> int:
    summary = __doc__.split("\n")[0]
    ap = argparse.ArgumentParser(prog="python -m bench ratelimit", description=summary)
    ap.add_argument("--hits", type=int, default=2_000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--url", default=URL)
    args = ap.parse_args(argv)
    results = uvloop.run(run(args.url, args.hits, args.repeats))
    print(f"{args.hits} sequential rate-limited requests on {args.url}, {args.repeats} repeats")
    print("| path | µs per request (median) | best | worst |")
    print("| --- | ---: | ---: | ---: |")
    for name, values in results.items():
        row = (statistics.median(values), min(values), max(values))
        print(f"| {name} | " + " | ".join(f"{v:.1f}" for v in row) + " |")
    old, new = (statistics.median(v) for v in results.values())
    print(f"\nlimits / script: {old / new:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
