#!/usr/bin/env bash
# Create .venv and install Cascade with its test tools. Safe to re-run: pip skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# torch first and pinned, so nothing else picks its version. On Linux, PyPI's torch is the CUDA build (GBs):
# for a CPU-only laptop, install torch==2.13.0 from PyTorch's CPU wheel index before running this.
.venv/bin/python -m pip install -q "torch==2.13.0"
.venv/bin/python -m pip install -q -e ".[dev]"
