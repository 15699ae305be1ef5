#!/usr/bin/env bash
# Set up and run every test: the notebooks' inline tests (nbdev_test) and pytest in tests/.
# Tests use real CIFAR-10 images: MEMNB_DATA must name a folder holding cifar10/ (see README).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
nbdev_export
git diff --quiet -- memnb 2>/dev/null || echo "warning: memnb/ differs from the committed export"
nbdev_test --n_workers 1 --timing
python -m pytest tests -q -p no:cacheprovider
