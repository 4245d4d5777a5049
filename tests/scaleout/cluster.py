"""A real multi-process deployment on 127.0.0.1 for tests: PostgreSQL (a fresh database),
a private Redis, two ingest shards, two API replicas of two workers each, and nginx in
front, configured from deploy/nginx.conf."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg

from scaleout.services import RedisServer, free_port, wait_port

ROOT = Path(__file__).resolve().parents[2]
NGINX_CONF = ROOT / "deploy" / "nginx.conf"
ADMIN_PG = os.environ.get(
    "CRYPTOPULSE_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
).replace("postgresql+asyncpg://", "postgresql://")


def nginx_binary() -> str:
    found = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    assert found, "nginx is not installed (.ci/run installs nginx-light)"
    return found


def render_nginx(port: int, upstreams: list[int], workdir: Path) -> Path:
    """deploy/nginx.conf with our ports, one worker (round robin alternates exactly), and
    temp paths under `workdir`."""
    text = NGINX_CONF.read_text()
    servers = "".join(
        f"        server 127.0.0.1:{p} max_fails=1 fail_timeout=2s;\n" for p in upstreams
    )
    text = re.sub(
        r"(upstream cryptopulse_api \{\n)(?:.*\n)*?(?=        keepalive)",
        r"\1" + servers.replace("\\", "\\\\"),
        text,
    )
    text = text.replace("listen 8080;", f"listen 127.0.0.1:{port};")
    text = text.replace("worker_processes auto;", "worker_processes 1;\nuser root;")
    temps = "".join(
        f"    {name}_temp_path {workdir / name};\n"
        for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    text = text.replace("http {\n", "http {\n" + temps, 1)
    conf = workdir / "nginx.conf"
    conf.write_text(text)
    return conf


@dataclass
class Cluster:
    workdir: Path
    capture: Path
    env_extra: dict[str, str] = field(default_factory=dict)
    redis: RedisServer = field(init=False)
    database: str = field(init=False)
    api_ports: list[int] = field(init=False)
    nginx_port: int = field(init=False)
    ingest_ports: list[int] = field(init=False)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.redis = RedisServer(self.workdir / "redis")
        self.database = f"cp_cluster_{uuid.uuid4().hex[:10]}"
        self.api_ports = [free_port(), free_port()]
        self.ingest_ports = [free_port(), free_port()]
        self.nginx_port = free_port()

    @property
    def database_url(self) -> str:
        base = ADMIN_PG.rsplit("/", 1)[0]
        return f"{base.replace('postgresql://', 'postgresql+asyncpg://')}/{self.database}"

    @property
    def pg_dsn(self) -> str:
        return f"{ADMIN_PG.rsplit('/', 1)[0]}/{self.database}"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CRYPTOPULSE_")}
        env.update(
            CRYPTOPULSE_DATABASE_URL=self.database_url,
            CRYPTOPULSE_BUS_URL=self.redis.url,
            CRYPTOPULSE_RATE_LIMIT_STORAGE_URL=self.redis.url,
            CRYPTOPULSE_ANONYMOUS_PLAN="public",
            CRYPTOPULSE_BOOTSTRAP_KEY="false",
            CRYPTOPULSE_ANALYTICS_ENABLED="false",
            CRYPTOPULSE_JWT_SECRET="cluster-test-" + "x" * 40,
            CRYPTOPULSE_LOG_LEVEL="warning",
            CRYPTOPULSE_PLANS=json.dumps(
                {
                    "public": {
                        "rpm": 20,
                        "burst": 1000,
                        "ws_connections": 100,
                        "subscriptions": 100,
                        "ws_messages_per_s": 100,
                    }
                }
            ),
        )
        env.update(self.env_extra)
        return env

    def _spawn(self, name: str, *args: str) -> None:
        log = (self.workdir / f"{name}.log").open("wb")
        cli = [str(Path(sys.executable).parent / "cryptopulse"), *args]
        # Own session: the whole process group (a parent and its workers) can be signalled.
        self.procs[name] = subprocess.Popen(  # noqa: S603
            cli, env=self.env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def start(self) -> None:
        with psycopg.connect(ADMIN_PG, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.database}"')  # type: ignore[arg-type]
        self.redis.start()
        self._spawn(
            "ingest-0",
            "ingest",
            "--shard",
            "0/2",
            "--source",
            f"replay:{self.capture}",
            "--port",
            str(self.ingest_ports[0]),
        )
        self._spawn(
            "ingest-1",
            "ingest",
            "--shard",
            "1/2",
            "--source",
            "sim",
            "--port",
            str(self.ingest_ports[1]),
        )
        for index, port in enumerate(self.api_ports):
            self._spawn(f"api-{index}", "serve", "--workers", "2", "--port", str(port))
        conf = render_nginx(self.nginx_port, self.api_ports, self.workdir)
        for sub in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (self.workdir / sub).mkdir(exist_ok=True)
        self.procs["nginx"] = subprocess.Popen(  # noqa: S603
            [
                nginx_binary(),
                "-e",
                str(self.workdir / "nginx-error.log"),
                "-p",
                str(self.workdir),
                "-c",
                str(conf),
                "-g",
                f"daemon off; pid {self.workdir / 'nginx.pid'};",
            ],
            start_new_session=True,
        )
        for port in (*self.api_ports, *self.ingest_ports, self.nginx_port):
            wait_port(port, timeout=40)
        self.wait_ready()

    def wait_ready(self, timeout: float = 40) -> None:
        deadline = time.monotonic() + timeout
        ports = [*self.api_ports, *self.ingest_ports]
        while time.monotonic() < deadline:
            try:
                if all(httpx.get(f"http://127.0.0.1:{p}/readyz").status_code == 200 for p in ports):
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError("cluster not ready:\n" + self.logs())

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        proc = self.procs[name]
        os.killpg(proc.pid, sig)
        proc.wait(30)

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        self.redis.stop()
        with psycopg.connect(ADMIN_PG, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')  # type: ignore[arg-type]

    def logs(self) -> str:
        return "\n".join(
            f"--- {path.name}\n{path.read_text(errors='replace')[-3000:]}"
            for path in sorted(self.workdir.glob("*.log"))
        )
