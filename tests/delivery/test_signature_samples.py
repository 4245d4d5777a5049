"""The signature-verification samples of docs/alerts.md (Python with `standardwebhooks`,
Python by hand, JavaScript on Node.js) accept our signatures, including two during a
rotation, and refuse a tampered body, a wrong secret and a stale timestamp."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from cryptopulse.delivery.signing import generate_secret, webhook_headers

DOC = Path(__file__).resolve().parents[2] / "docs" / "alerts.md"
FENCE = re.compile(r"^```(?P<lang>\w+)\n(?P<code>.*?)^```", re.S | re.M)
BODY = b'{"id":"evt_1","type":"alert.fired","time":1,"data":{"price":101.5}}'


def blocks(lang: str) -> list[str]:
    return [m["code"] for m in FENCE.finditer(DOC.read_text()) if m["lang"] == lang]


def cases() -> list[tuple[str, str, bytes, dict[str, str], bool]]:
    secret, other = generate_secret(), generate_secret()
    now = int(time.time())
    good = webhook_headers([secret], "evt_1", now, BODY)
    rotating = webhook_headers([other, secret], "evt_1", now, BODY)
    stale = webhook_headers([secret], "evt_1", now - 3600, BODY)
    return [
        ("valid", secret, BODY, good, True),
        ("rotation", secret, BODY, rotating, True),
        ("tampered", secret, BODY.replace(b"101.5", b"999"), good, False),
        ("wrong secret", other, BODY, good, False),
        ("stale", secret, BODY, stale, False),
    ]


def test_python_samples() -> None:
    reference, by_hand = blocks("python")
    seen: list[Any] = []
    space: dict[str, Any] = {"already_seen": lambda _id: False, "process": seen.append}
    exec(by_hand, space)
    for name, secret, body, headers, ok in cases():
        assert space["verify"](secret, body, headers) is ok, name
        local = dict(space)
        exec(reference.replace('"whsec_..."', repr(secret)), local)
        if ok:
            local["handle"](body, headers)
        else:
            with pytest.raises(PermissionError):
                local["handle"](body, headers)
    assert len(seen) == 2


def test_javascript_sample(tmp_path: Path) -> None:
    node = shutil.which("node")
    assert node is not None, "node is needed (the EVM tests install it too)"
    [sample] = blocks("js")
    data = [
        {"name": n, "secret": s, "body": b.decode(), "headers": h, "ok": ok}
        for n, s, b, h, ok in cases()
    ]
    (tmp_path / "verify.mjs").write_text(sample)
    (tmp_path / "run.mjs").write_text(
        'import { verify } from "./verify.mjs";\n'
        f"const cases = {json.dumps(data)};\n"
        "for (const c of cases)\n"
        "  console.log(c.name, verify(c.secret, c.body, c.headers) === c.ok);\n"
    )
    done = subprocess.run(
        [node, "run.mjs"], cwd=tmp_path, capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 0, done.stderr
    results = dict(line.rsplit(" ", 1) for line in done.stdout.strip().splitlines())
    assert results == {c["name"]: "true" for c in data}
