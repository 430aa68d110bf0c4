#!/usr/bin/env bash
# Mutation testing of the Ray-free core (cosmic-ray), one module or folder at a time or all of them:
#   bash scripts/mutation.sh cascade/circuit.py     # one module, ~1-3 min
#   bash scripts/mutation.sh models/remote          # a folder
#   bash scripts/mutation.sh -j 2                   # everything, two modules at a time
# Slow (see docs/mutation.md), so not part of scripts/test.sh or CI.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || bash scripts/setup.sh
[ -x .venv/bin/cosmic-ray ] || .venv/bin/python -m pip install -q -e ".[mutation]"
export RAY_AUTH_MODE="${RAY_AUTH_MODE:-disabled}" HF_HUB_OFFLINE=1
exec .venv/bin/python scripts/mutation.py "$@"
