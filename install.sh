#!/usr/bin/env bash
# One command for a fresh checkout: install everything, create the keys and the ledger,
# check the policy packs and show the walkthrough's decisions, and play the walkthrough
# end to end: a local service and stand-in GitHub, every step over HTTP, then the
# session exported as a git bundle and verified offline.
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/bootstrap
.venv/bin/aegisctl keys init
.venv/bin/aegisflow ledger init
if [ ! -f keys/api-keys.json ]; then
  # The walkthrough's demo key (loopback only); aegisctl keys api-key makes real ones.
  .venv/bin/aegisctl keys api-key --principal claude-code --role agent --key starter-key-001
fi
echo
.venv/bin/aegisctl policy check policies/*.yaml
echo
.venv/bin/aegisctl policy simulate -p policies/pr-writer.yaml --actions policies/examples/walkthrough.jsonl
echo
.venv/bin/aegisctl demo
