#!/usr/bin/env bash
# One training step of UNet++-resnet34 (train-mode forward, BCE + Dice,
# backward, AdamW): bonectl against PyTorch in one run, alternating so machine
# drift hits both alike. Each side reports its median step over RUNS steps after
# one warm-up step; the ratio is taken pair by pair.
#   tools/compare_train_speed.sh [PAIRS] [RUNS] [SIZE] [BATCH]
# Needs a release build (swift build -c release) and tools/.venv or PYTHON=….
set -euo pipefail
cd "$(dirname "$0")/.."
pairs=${1:-3}
runs=${2:-3}
size=${3:-256}
batch=${4:-4}
python=${PYTHON:-tools/.venv/bin/python}
bonectl=.build/release/bonectl
ours=()
theirs=()
for _ in $(seq "$pairs"); do
  ours+=("$("$bonectl" bench --train-step --encoder resnet34 --size "$size" --batch "$batch" --runs "$runs" --warmup 1 --json \
    | sed 's/.*"median_seconds":\([0-9.]*\).*/\1/')")
  theirs+=("$("$python" tools/bench_pytorch_train.py --encoder resnet34 --size "$size" --batch "$batch" --threads 2 \
    --runs "$runs" --warmup 1 2>/dev/null | sed 's/.*"median_seconds": \([0-9.]*\).*/\1/')")
  echo "pair: bonectl ${ours[-1]} s, pytorch ${theirs[-1]} s" >&2
done
python3 - "$size" "$batch" "${ours[*]}" "${theirs[*]}" <<'PY'
import statistics, sys
size, batch = sys.argv[1], sys.argv[2]
ours, theirs = list(map(float, sys.argv[3].split())), list(map(float, sys.argv[4].split()))
ratios = [a / b for a, b in zip(ours, theirs)]
print(f"UNet++-resnet34 training step at {size}², batch {batch}, 2 threads, {len(ours)} pairs: "
      f"bonectl median {statistics.median(ours):.3f} s, PyTorch median {statistics.median(theirs):.3f} s, "
      f"bonectl/PyTorch median ratio {statistics.median(ratios):.2f} (pairs: {', '.join(f'{r:.2f}' for r in ratios)})")
PY
