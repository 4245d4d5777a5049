"""A real EVM node for the on-chain tests: ganache on 127.0.0.1, and the TestToken ERC-20.

`scripts/install-evm-node.sh` installs ganache (npm) into `.venv/evm-node`; `.ci/run`
calls it. A missing node fails the tests that need it, never skips them.

The helpers talk JSON-RPC with httpx and encode calls with eth-abi, so what the tests
compute as expected values does not go through the code under test.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_abi import encode
from eth_utils import function_signature_to_4byte_selector

ROOT = Path(__file__).resolve().parents[2]
GANACHE = Path(
    os.environ.get("CRYPTOPULSE_TEST_GANACHE", ROOT / ".venv/evm-node/node_modules/.bin/ganache")
)
ARTIFACT = json.loads((Path(__file__).parent / "TestToken.json").read_text())
CHAIN_ID = 1337
GWEI = 10**9


def _selector(signature: str) -> str:
    return "0x" + function_signature_to_4byte_selector(signature).hex()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LocalChain:
    """A running ganache node and JSON-RPC helpers (every call goes over loopback HTTP)."""

    url: str
    ws_url: str
    client: httpx.AsyncClient
    accounts: list[str] = field(default_factory=list)
    _ids: int = 0

    async def rpc(self, method: str, *params: Any) -> Any:
        self._ids += 1
        body = {"jsonrpc": "2.0", "id": self._ids, "method": method, "params": list(params)}
        response = await self.client.post(self.url, json=body)
        reply = response.json()
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error'].get('message')}")
        return reply["result"]

    async def send(
        self, sender: str, to: str | None, data: str = "0x", value: int = 0, tip_gwei: int = 1
    ) -> str:
        tx: dict[str, Any] = {
            "from": sender,
            "data": data,
            "value": hex(value),
            "gas": hex(3_000_000),
            "maxFeePerGas": hex(100 * GWEI),
            "maxPriorityFeePerGas": hex(tip_gwei * GWEI),
        }
        if to is not None:
            tx["to"] = to
        return str(await self.rpc("eth_sendTransaction", tx))

    async def mine(self, timestamp_s: int | None = None) -> dict[str, Any]:
        """Mine one block (with every pending transaction) and return it in full."""
        if timestamp_s is None:
            await self.rpc("evm_mine")
        else:
            await self.rpc("evm_mine", timestamp_s)
        block: dict[str, Any] = await self.rpc("eth_getBlockByNumber", "latest", True)
        return block

    async def deploy_token(
        self, sender: str, symbol: str, decimals: int, supply: int, timestamp_s: int | None = None
    ) -> tuple[str, dict[str, Any]]:
        """Deploy TestToken in a block of its own; returns (address, the block)."""
        args = encode(["string", "string", "uint8", "uint256"], [symbol, symbol, decimals, supply])
        tx_hash = await self.send(sender, None, ARTIFACT["bytecode"] + args.hex())
        block = await self.mine(timestamp_s)
        receipt = await self.rpc("eth_getTransactionReceipt", tx_hash)
        return str(receipt["contractAddress"]).lower(), block

    async def transfer(
        self, token: str, sender: str, to: str, amount: int, tip_gwei: int = 1
    ) -> str:
        data = (
            _selector("transfer(address,uint256)")
            + encode(["address", "uint256"], [to, amount]).hex()
        )
        return await self.send(sender, token, data, tip_gwei=tip_gwei)

    async def mint(self, token: str, owner: str, to: str, amount: int) -> str:
        data = (
            _selector("mint(address,uint256)") + encode(["address", "uint256"], [to, amount]).hex()
        )
        return await self.send(owner, token, data)

    async def total_supply(self, token: str, block: str = "latest") -> int:
        result = await self.rpc(
            "eth_call", {"to": token, "data": _selector("totalSupply()")}, block
        )
        return int(result, 16)


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


@contextlib.asynccontextmanager
async def local_chain(start_time_s: int | None = None) -> AsyncIterator[LocalChain]:
    """Start ganache on a free loopback port (miner stopped: blocks come from `mine`)."""
    if not GANACHE.exists():
        pytest.fail(f"no EVM node at {GANACHE}: run scripts/install-evm-node.sh (needs npm)")
    port = _free_port()
    args = [
        str(GANACHE),
        "--server.host=127.0.0.1",
        f"--server.port={port}",
        f"--chain.chainId={CHAIN_ID}",
        "--wallet.deterministic=true",
        "--wallet.totalAccounts=10",
        "--logging.quiet=true",
        "--miner.instamine=strict",
    ]
    if start_time_s is not None:
        args.append(f"--chain.time={start_time_s * 1000}")
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        for _ in range(200):  # up to 20 s: node start-up is slow on a busy 2-core machine
            if process.poll() is not None:
                err = process.stderr.read().decode() if process.stderr else ""
                pytest.fail(f"ganache exited: {err[-2000:]}")
            if _port_open(port):
                break
            await asyncio.sleep(0.1)
        else:
            pytest.fail("ganache did not open its port within 20 s")
        async with httpx.AsyncClient(timeout=10) as client:
            chain = LocalChain(f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}", client)
            chain.accounts = [a.lower() for a in await chain.rpc("eth_accounts")]
            await chain.rpc("miner_stop")
            yield chain
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
