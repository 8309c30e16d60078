#!/usr/bin/env bash
# Set up (idempotent) and run the embedded end-to-end demo. Extra arguments go to `imagenot demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 RAY_USAGE_STATS_ENABLED=0 NO_ALBUMENTATIONS_UPDATE=1
exec .venv/bin/imagenot demo --out "${IMAGENOT_DEMO_OUT:-demo-out}" "$@"
