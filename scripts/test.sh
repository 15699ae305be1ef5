#!/usr/bin/env bash
# Set up and run every test: the notebooks' inline tests (nbdev_test) and pytest in tests/.
# Tests use real CIFAR-10/100 images: $MEMNB_DATA, or unpacked from ../shared/data when unset.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. scripts/data.sh
. .venv/bin/activate
nbdev_export
git diff --quiet -- memnb 2>/dev/null || echo "warning: memnb/ differs from the committed export"
nbdev_test --n_workers 1 --timing
python -m pytest tests -q -p no:cacheprovider
