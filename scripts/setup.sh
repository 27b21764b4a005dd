#!/usr/bin/env bash
# Make the project's virtualenv .venv (so no system Python is touched: PEP 668 refuses pip
# there), install lthlib and its dependencies into it, give the repo a git identity if it has
# none (dvc exp run commits), and fetch the default dataset.
#   bash scripts/setup.sh            # everything
#   bash scripts/setup.sh --no-data  # skip the dataset (the tests make their own files)
# Then `. .venv/bin/activate`: the DVC stages run `python` from PATH.
# PYTHON=/path/to/python3 picks the interpreter the virtualenv is made from (>= 3.10).
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-$(command -v python3 || command -v python || true)}
[ -n "$python" ] || { echo "error: no python3 on PATH; install Python >= 3.10 or set PYTHON=" >&2; exit 1; }
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
  || { echo "error: $python is older than Python 3.10; set PYTHON=/path/to/python3.10+" >&2; exit 1; }

if [ ! -x .venv/bin/python ]; then
  if ! "$python" -m venv .venv 2>/dev/null; then
    rm -rf .venv
    # Debian/Ubuntu ship venv's pip bootstrap as a separate package.
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      echo "installing Debian's python3-venv (needed to make .venv)..."
      apt-get install -y -qq python3-venv >/dev/null 2>&1 \
        || { apt-get update -qq >/dev/null && apt-get install -y -qq python3-venv >/dev/null; }
      "$python" -m venv .venv
    else
      echo "error: '$python -m venv' failed; on Debian/Ubuntu run 'sudo apt-get install python3-venv'" >&2
      echo "       (or set PYTHON= to another Python >= 3.10), then run this script again" >&2
      exit 1
    fi
  fi
fi
pip=(.venv/bin/python -m pip install --quiet --disable-pip-version-check)
"${pip[@]}" "torch==2.14.1" "torchvision==0.29.1"
"${pip[@]}" -e .
git config user.email >/dev/null || git config user.email "lthlib@localhost"
git config user.name >/dev/null || git config user.name "lthlib"
if [ "${1:-}" != "--no-data" ]; then
  bash scripts/fetch_fashion_mnist.sh data/raw
fi
echo "lthlib is installed in .venv: run '. .venv/bin/activate' before dvc or pytest"
