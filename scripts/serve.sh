#!/usr/bin/env bash
# Set up (if needed) and serve serve_config.yaml on http://127.0.0.1:8000 (Ray dashboard on :8265).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Ray settings measured for the HTTP path (each explained in the file); the environment can still override them.
while IFS='=' read -r name value; do
  [[ -z "$name" || "$name" == \#* ]] && continue
  [[ -v "$name" ]] || export "$name=$value"
done < scripts/serve.env
exec .venv/bin/serve run "${1:-serve_config.yaml}"
