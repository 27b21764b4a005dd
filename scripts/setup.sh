#!/usr/bin/env bash
# Install lthlib and its dependencies into the current Python environment, give the repo a
# git identity if it has none (dvc exp run commits), and fetch the default dataset.
#   bash scripts/setup.sh           # everything
#   bash scripts/setup.sh --no-data # skip the dataset (the tests make their own files)
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install --quiet --disable-pip-version-check "torch==2.14.1" "torchvision==0.29.1"
python -m pip install --quiet --disable-pip-version-check -e .
git config user.email >/dev/null || git config user.email "lthlib@localhost"
git config user.name >/dev/null || git config user.name "lthlib"
if [ "${1:-}" != "--no-data" ]; then
  bash scripts/fetch_fashion_mnist.sh data/raw
fi
