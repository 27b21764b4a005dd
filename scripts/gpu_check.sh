#!/usr/bin/env bash
# Every GPU check in one call, on a machine with a CUDA device and a Python that has PyTorch, torchvision, pandas,
# matplotlib, typer, tqdm, pyyaml and pytest (no DVC needed; nothing is installed):
#   bash scripts/gpu_check.sh [OUT] [SECONDS]
# In order of importance, each step with its own limit and all of them inside SECONDS (default 540, so that a
# machine's start and a second try fit in 15 minutes of device time): a one-step smoke check (the script stops if
# it fails), tests/test_cuda.py (the GPU paths against the CPU's), ResNet-20/18 on CIFAR shapes (1 and 4
# replicates, fp32 and bf16), the JPEG input pipeline (CPU workers and the GPU decoder) against what ResNet-50
# consumed on an H200, every stage of the smoke pipeline with a ResNet-20 on both devices (its CPU half is slow),
# Appendix C's ImageNet-shaped ResNet-50 (fp32/bf16, NCHW/NHWC), batched evaluation, ResNet-20 compiled.
# Logs go to OUT (default: $OUT, else gpu-check/), at most 6 files.
# The numbers go into docs/benchmarks.md with the GPU's name, the software versions and the date.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-${OUT:-gpu-check}}
deadline=$((SECONDS + ${2:-540}))
mkdir -p "$out"
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
python=${PYTHON:-python3}

step() {  # step LOG SECONDS COMMAND...: run within its limit and the deadline, keep the output in LOG
  local log=$1 limit=$2 left=$((deadline - SECONDS))
  shift 2
  ((left < limit)) && limit=$left
  ((limit < 10)) && { echo "== skipped (deadline): $*" | tee -a "$out/$log"; return 1; }
  echo "== $* (limit ${limit}s)" | tee -a "$out/$log"
  timeout "$limit" "$@" 2>&1 | tr '\r' '\n' | grep -v '^\s*$' | grep -v 's/s\]' >>"$out/$log"
  local status=${PIPESTATUS[0]}
  echo "== exit $status after $((SECONDS)) s" | tee -a "$out/$log"
  return "$status"
}

{ nvidia-smi; "$python" -c 'import torch, torchvision; print("torch", torch.__version__, "torchvision",
  torchvision.__version__, torch.cuda.get_device_name(), "cuDNN", torch.backends.cudnn.version())'; } \
  >"$out/device.txt" 2>&1
step test_cuda.log 60 "$python" -m pytest -q -p no:cacheprovider -x tests/test_cuda.py \
  -k test_training_on_the_gpu_matches_the_cpu || { tail -30 "$out/test_cuda.log"; exit 1; }
step test_cuda.log 150 "$python" -m pytest -q -p no:cacheprovider --durations=8 tests/test_cuda.py \
  --deselect "tests/test_cuda.py::test_every_stage_runs_on_the_gpu_and_agrees_with_the_cpu[resnet20]"
step bench_resnet.log 90 "$python" bench/bench_resnet.py --device cuda --models resnet20,resnet18 --steps 50 \
  --no-compile
step bench_imagenet.log 90 "$python" bench/bench_loader.py --images 4096 --workers 8,16 --consumes 4488
step test_cuda.log 200 "$python" -m pytest -q -p no:cacheprovider --durations=8 \
  "tests/test_cuda.py::test_every_stage_runs_on_the_gpu_and_agrees_with_the_cpu[resnet20]"
step bench_imagenet.log 100 "$python" bench/bench_resnet.py --device cuda --models imagenet_resnet50 --side 224 \
  --classes 1000 --batch 256 --images 4096 --replicates 1 --no-compile --channels-last --steps 20
step bench_batched.log 40 "$python" bench/bench_landscape.py --device cuda --points 256 --examples 10000
step bench_resnet.log 120 "$python" bench/bench_resnet.py --device cuda --models resnet20 --steps 100
tail -n 4 "$out"/*.log
