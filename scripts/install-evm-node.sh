#!/usr/bin/env bash
# Install the local EVM node the on-chain tests start on 127.0.0.1: ganache from the npm
# registry, into .venv/evm-node (ignored by git, removed by `make clean`). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=7.9.2
PREFIX=.venv/evm-node
BIN="$PREFIX/node_modules/.bin/ganache"
if [ -x "$BIN" ] && grep -q "\"version\": \"$VERSION\"" "$PREFIX/node_modules/ganache/package.json"; then
    exit 0
fi
command -v npm >/dev/null || { echo "install-evm-node: npm (Node.js 18+) is needed" >&2; exit 1; }
mkdir -p "$PREFIX"
npm install --prefix "$PREFIX" --no-audit --no-fund --silent "ganache@$VERSION"
echo "install-evm-node: ganache $VERSION in $PREFIX"
