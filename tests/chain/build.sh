#!/usr/bin/env bash
# Rebuild TestToken.json from TestToken.sol with solc-js 0.8.28 from the npm registry
# (optimizer on, EVM version "paris" so every node the tests may use runs it).
# The artifact is committed; run this only after changing the contract.
set -euo pipefail
cd "$(dirname "$0")"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
npm install --prefix "$work" --no-audit --no-fund --silent solc@0.8.28
python3 - > "$work/input.json" <<'PY'
import json, pathlib
print(json.dumps({
    "language": "Solidity",
    "sources": {"TestToken.sol": {"content": pathlib.Path("TestToken.sol").read_text()}},
    "settings": {
        "optimizer": {"enabled": True, "runs": 200},
        "evmVersion": "paris",
        "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object"]}},
    },
}))
PY
# solcjs prints a notice line before the JSON document; keep the document only.
"$work/node_modules/.bin/solcjs" --standard-json < "$work/input.json" \
    | sed -n '/^{/,$p' > "$work/output.json"
python3 - "$work/output.json" <<'PY'
import json, pathlib, sys
out = json.loads(pathlib.Path(sys.argv[1]).read_text())
errors = [e for e in out.get("errors", []) if e["severity"] == "error"]
if errors:
    sys.exit("\n".join(e["formattedMessage"] for e in errors))
contract = out["contracts"]["TestToken.sol"]["TestToken"]
artifact = {
    "contract": "TestToken",
    "compiler": "solc-js 0.8.28 (npm solc@0.8.28), optimizer 200 runs, evmVersion paris",
    "command": "tests/chain/build.sh",
    "abi": contract["abi"],
    "bytecode": "0x" + contract["evm"]["bytecode"]["object"],
}
pathlib.Path("TestToken.json").write_text(json.dumps(artifact, indent=1) + "\n")
PY
