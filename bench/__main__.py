"""`python -m bench`: the indicator benchmark; `python -m bench predictions`: the
prediction (micro-batching) benchmark; `python -m bench alerts`: alert-rule evaluation;
`python -m bench ingest`: ingestion; `python -m bench serialization`: candles on the wire;
`python -m bench rest`: REST routes under wrk; `python -m bench fanout`: WebSocket fan-out;
`python -m bench servers`: uvicorn (h11, httptools) vs granian, 1/2/5 workers;
`python -m bench mixed`: ingest + stream clients + REST at once vs each alone;
`python -m bench soak`: the mixed load for minutes, the server's RSS sampled;
`python -m bench ratelimit`: rate limits on Redis, `limits` vs one script call;
`python -m bench store`: batched trade writes vs SQLAlchemy Core and the bare driver."""

import sys

if __name__ == "__main__":
    if sys.argv[1:2] == ["store"]:
        from bench.store import main as store

        raise SystemExit(store(sys.argv[2:]))
    if sys.argv[1:2] == ["ratelimit"]:
        from bench.ratelimit import main as ratelimit

        raise SystemExit(ratelimit(sys.argv[2:]))
    if sys.argv[1:2] == ["servers"]:
        from bench.servers import main as servers

        raise SystemExit(servers(sys.argv[2:]))
    if sys.argv[1:2] == ["mixed"]:
        from bench.mixed import main as mixed

        raise SystemExit(mixed(sys.argv[2:]))
    if sys.argv[1:2] == ["soak"]:
        from bench.soak import main as soak

        raise SystemExit(soak(sys.argv[2:]))
    if sys.argv[1:2] == ["alerts"]:
        from bench.alerts import main as alerts

        raise SystemExit(alerts(sys.argv[2:]))
    if sys.argv[1:2] == ["fanout"]:
        from bench.fanout import main as fanout

        raise SystemExit(fanout(sys.argv[2:]))
    if sys.argv[1:2] == ["rest"]:
        from bench.rest import main as rest

        raise SystemExit(rest(sys.argv[2:]))
    if sys.argv[1:2] == ["serialization"]:
        from bench.serialization import main as serialization

        raise SystemExit(serialization(sys.argv[2:]))
    if sys.argv[1:2] == ["ingest"]:
        from bench.ingest import main as ingest

        raise SystemExit(ingest(sys.argv[2:]))
    if sys.argv[1:2] == ["predictions"]:
        from bench.predictions import main as predictions

        raise SystemExit(predictions(sys.argv[2:]))
    from bench.indicators import main

    raise SystemExit(main())
