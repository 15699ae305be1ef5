#!/usr/bin/env bash
# Set up and run a study (default: the CIFAR-10 study of params/cifar10.yaml), then its report.
# Offline data: $MEMNB_DATA, or unpacked from ../shared/data when unset (scripts/data.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. scripts/data.sh
exec .venv/bin/memnb-sweep "${1:-params/cifar10.yaml}" "${@:2}"
