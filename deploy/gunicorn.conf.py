"""Gunicorn with Uvicorn workers for the API (scale-out: set CRYPTOPULSE_BUS_URL=redis://...).

    gunicorn -c deploy/gunicorn.conf.py

`cryptopulse serve --workers N` does the same without Gunicorn; use this file when your
platform standardizes on Gunicorn (worker restarts, `max_requests`, its signals: HUP
reloads workers gracefully, TERM drains and stops). Settings come from CRYPTOPULSE_*.
"""

from __future__ import annotations

import os

wsgi_app = "cryptopulse.processes.gunicorn:create_api_app()"
worker_class = "cryptopulse.processes.gunicorn.Worker"

bind = os.environ.get(
    "GUNICORN_BIND",
    f"{os.environ.get('CRYPTOPULSE_HOST', '0.0.0.0')}:{os.environ.get('CRYPTOPULSE_PORT', '8000')}",  # noqa: S104
)
# Measured on this project (docs/operations.md, "Sizing" and "Choosing the server and the
# workers"): one worker per core this process may run on. Workers beyond the cores cost
# throughput and ~160 MB each; cpu_count() counts the host's cores, not the cpuset.
workers = int(os.environ.get("GUNICORN_WORKERS", os.environ.get("CRYPTOPULSE_WORKERS", "0")))
workers = workers or len(os.sched_getaffinity(0))
# Streams are long-lived: a worker is "timed out" only when its event loop is stuck.
timeout = 60
graceful_timeout = 30
keepalive = 5
# Recycle workers now and then; streams get 1001 and resume elsewhere.
max_requests = 200_000
max_requests_jitter = 20_000
accesslog = None
errorlog = "-"
loglevel = os.environ.get("CRYPTOPULSE_LOG_LEVEL", "info")


def on_starting(server: object) -> None:
    """Migrate once in the master, under the advisory lock, before workers start."""
    from cryptopulse.processes.replica import is_scale_out, migrate_once
    from cryptopulse.settings import Settings

    settings = Settings()
    if is_scale_out(settings):
        migrate_once(settings)
