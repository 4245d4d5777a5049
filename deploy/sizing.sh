#!/usr/bin/env bash
# Sizing run (docs/operations.md, "Sizing"): one scale-out API replica on PostgreSQL and
# Redis, the simulator ingest shard feeding it, wrk against a memory-served and a
# store-served endpoint, for each worker count in WORKERS ("1 2" by default), in one run.
# Needs wrk, the PostgreSQL server (PG_ADMIN) and Redis (REDIS). Run from the project root.
set -euo pipefail
PG_ADMIN=${PG_ADMIN:-postgresql://postgres@127.0.0.1:5432/test}
REDIS=${REDIS:-redis://127.0.0.1:6379}
PORT=${PORT:-8401}
DB=cp_sizing
psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS $DB" -qc "CREATE DATABASE $DB"
export CRYPTOPULSE_DATABASE_URL="postgresql+asyncpg://${PG_ADMIN#postgresql://}"
export CRYPTOPULSE_DATABASE_URL="${CRYPTOPULSE_DATABASE_URL%/*}/$DB"
export CRYPTOPULSE_BUS_URL="$REDIS/0" CRYPTOPULSE_REDIS_PREFIX=cpsizing:
export CRYPTOPULSE_RATE_LIMIT_STORAGE_URL="${RATE_LIMITS:-$REDIS/1}"
export CRYPTOPULSE_ANALYTICS_ENABLED=false CRYPTOPULSE_BOOTSTRAP_KEY=false
export CRYPTOPULSE_ANONYMOUS_PLAN=public CRYPTOPULSE_LOG_LEVEL=warning
export CRYPTOPULSE_PLANS='{"public":{"rpm":100000000,"burst":100000000,"monthly_quota":2000000000}}'
.venv/bin/cryptopulse ingest --source sim --port 9301 >/tmp/sizing-ingest.log 2>&1 &
INGEST=$!
trap 'kill -TERM $INGEST 2>/dev/null || true' EXIT
sleep 8
for workers in ${WORKERS:-1 2}; do
    .venv/bin/cryptopulse serve --port "$PORT" --workers "$workers" >/tmp/sizing-api.log 2>&1 &
    API=$!
    sleep 8
    echo "== workers=$workers load=$(cut -d' ' -f1 /proc/loadavg)"
    for path in "/v1/tickers/sim:BTC-USD" "/v1/candles/sim:BTC-USD?interval=1m&limit=100"; do
        echo "-- $path"
        wrk -t2 -c64 -d10s --latency "http://127.0.0.1:$PORT$path" \
            | grep -E "Requests/sec|  50%|  99%|Non-2xx"
    done
    kill -TERM "$API"
    wait "$API" || true
done
