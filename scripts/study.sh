#!/usr/bin/env bash
# Set up and run a study (default: the CIFAR-10 study of params/cifar10.yaml), then its report.
# Offline data: export MEMNB_DATA=<folder holding cifar10/> first (see README).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/memnb-sweep "${1:-params/cifar10.yaml}" "${@:2}"
