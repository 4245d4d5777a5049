"""deploy/ validated by parsing (Docker and a cluster are not available in CI): compose and
Kubernetes manifests are well-formed, consistent with each other and with the settings;
the Dockerfile is multi-stage, non-root, with a healthcheck; nginx accepts its config."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from cryptopulse.settings import Settings
from scaleout.cluster import nginx_binary, render_nginx

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
SETTING_NAMES = {f"CRYPTOPULSE_{name.upper()}" for name in Settings.model_fields}


def k8s() -> list[dict[str, Any]]:
    docs = []
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
        docs += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    return docs


def by_kind(kind: str) -> list[dict[str, Any]]:
    return [doc for doc in k8s() if doc["kind"] == kind]


def test_dockerfile_is_multi_stage_non_root_with_a_healthcheck() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    assert len(re.findall(r"^FROM ", text, re.M)) >= 2
    assert "COPY --from=build" in text
    user = re.findall(r"^USER (\S+)", text, re.M)
    assert user and not user[-1].startswith(("root", "0"))
    assert re.search(r"^HEALTHCHECK ", text, re.M)
    assert 'ENTRYPOINT ["cryptopulse"]' in text


def test_compose_runs_the_scale_out_topology() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    assert {"postgres", "redis", "nginx", "migrate", "deliver"} <= set(services)
    api = [s for s in services.values() if s.get("command", [None])[0] == "serve"]
    ingest = [s for s in services.values() if s.get("command", [None])[0] == "ingest"]
    assert len(api) == 2 and all("--workers" in s["command"] for s in api)
    shards = sorted(s["command"][s["command"].index("--shard") + 1] for s in ingest)
    assert shards == ["0/2", "1/2"]
    for service in (*api, *ingest):
        env = service["environment"]
        assert env["CRYPTOPULSE_BUS_URL"].startswith("redis://")
        assert env["CRYPTOPULSE_DATABASE_URL"].startswith("postgresql+asyncpg://")
        assert {k for k in env if k.startswith("CRYPTOPULSE_")} <= SETTING_NAMES
        assert service["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    nginx_conf = (DEPLOY / "nginx.conf").read_text()
    upstreams = re.findall(r"server (api-\d):8000", nginx_conf)
    assert sorted(upstreams) == sorted(k for k, s in services.items() if s in api)
    assert "./nginx.conf:/etc/nginx/nginx.conf:ro" in services["nginx"]["volumes"]


def test_kubernetes_probes_hpa_pdb_and_config() -> None:
    deployments = {d["metadata"]["name"]: d for d in by_kind("Deployment")}
    assert {"cryptopulse-api", "cryptopulse-ingest-0", "cryptopulse-ingest-1"} <= set(deployments)
    for name, deployment in deployments.items():
        spec = deployment["spec"]["template"]["spec"]
        (container,) = spec["containers"]
        if name != "cryptopulse-deliver":  # the delivery worker has no HTTP port
            assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
            assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        refs = {next(iter(r.values()))["name"] for r in container["envFrom"]}
        assert refs == {"cryptopulse"}
        assert spec["securityContext"]["runAsNonRoot"] is True
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    for name in ("cryptopulse-ingest-0", "cryptopulse-ingest-1"):
        ingest = deployments[name]["spec"]
        assert ingest["replicas"] == 1 and ingest["strategy"]["type"] == "Recreate"
    (hpa,) = by_kind("HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == "cryptopulse-api"
    assert hpa["spec"]["minReplicas"] >= 2
    (pdb,) = by_kind("PodDisruptionBudget")
    api_labels = deployments["cryptopulse-api"]["spec"]["template"]["metadata"]["labels"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= api_labels.items()
    (config,) = by_kind("ConfigMap")
    (secret,) = by_kind("Secret")
    assert set(config["data"]) <= SETTING_NAMES
    assert set(secret["stringData"]) <= SETTING_NAMES
    assert "CRYPTOPULSE_JWT_SECRET" not in config["data"]


def test_gunicorn_config_uses_our_uvicorn_worker() -> None:
    spec = importlib.util.spec_from_file_location("gunicorn_conf", DEPLOY / "gunicorn.conf.py")
    assert spec is not None and spec.loader is not None
    conf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conf)
    assert conf.worker_class == "cryptopulse.processes.gunicorn.Worker"
    assert conf.wsgi_app == "cryptopulse.processes.gunicorn:create_api_app()"
    assert conf.workers >= 1 and callable(conf.on_starting)


def test_gunicorn_worker_applies_the_stream_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """The WebSocket settings `cryptopulse serve` gives uvicorn reach Gunicorn's workers."""
    from gunicorn.config import Config  # type: ignore[import-untyped]
    from gunicorn.glogging import Logger  # type: ignore[import-untyped]

    from cryptopulse.processes.gunicorn import Worker

    monkeypatch.setenv("CRYPTOPULSE_WS_COMPRESSION", "false")
    monkeypatch.setenv("CRYPTOPULSE_WS_MAX_FRAME_BYTES", "4096")
    cfg = Config()
    worker = Worker(1, os.getpid(), [], None, 30, cfg, Logger(cfg))
    assert worker.config.ws_per_message_deflate is False
    assert worker.config.ws_max_size == 4096
    assert worker.config.loop == "uvloop" and worker.config.ws_ping_interval is None


def test_nginx_accepts_the_config(tmp_path: Path) -> None:
    conf = render_nginx(18080, [18001, 18002], tmp_path)
    result = subprocess.run(  # noqa: S603
        [nginx_binary(), "-t", "-p", str(tmp_path), "-c", str(conf), "-e", str(tmp_path / "e")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    text = conf.read_text()
    assert "proxy_set_header Upgrade $http_upgrade" in text
