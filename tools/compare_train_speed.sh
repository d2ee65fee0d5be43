#!/usr/bin/env bash
# One training step of UNet++-resnet34 (train-mode forward, BCE + Dice,
# backward, AdamW): bonectl against PyTorch in one run, alternating so machine
# drift hits both alike. Each side reports its median step (wall and CPU
# seconds) over RUNS steps after one warm-up step; ratios are taken pair by pair.
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
results=$(mktemp)
trap 'rm -f "$results"' EXIT
for _ in $(seq "$pairs"); do
  "$bonectl" bench --train-step --encoder resnet34 --size "$size" --batch "$batch" --runs "$runs" --warmup 1 --json >>"$results"
  "$python" tools/bench_pytorch_train.py --encoder resnet34 --size "$size" --batch "$batch" --threads 2 \
    --runs "$runs" --warmup 1 2>/dev/null >>"$results"
done
python3 - "$size" "$batch" "$results" <<'PY'
import json, statistics, sys
size, batch, path = sys.argv[1], sys.argv[2], sys.argv[3]
rows = [json.loads(line) for line in open(path) if line.strip()]
ours, theirs = rows[0::2], rows[1::2]
for a, b in zip(ours, theirs):
    print(f"pair: bonectl {a['median_seconds']:.3f} s (CPU {statistics.median(a['cpu_seconds']):.2f} s), "
          f"PyTorch {b['median_seconds']:.3f} s (CPU {statistics.median(b['cpu_seconds']):.2f} s), "
          f"ratio {a['median_seconds'] / b['median_seconds']:.2f}")
ratios = [a["median_seconds"] / b["median_seconds"] for a, b in zip(ours, theirs)]
print(f"UNet++-resnet34 training step at {size}², batch {batch}, 2 threads, {len(ratios)} pairs: "
      f"bonectl median {statistics.median(a['median_seconds'] for a in ours):.3f} s, "
      f"PyTorch median {statistics.median(b['median_seconds'] for b in theirs):.3f} s, "
      f"bonectl/PyTorch median ratio {statistics.median(ratios):.2f} (pairs: {', '.join(f'{r:.2f}' for r in ratios)})")
PY
