#!/usr/bin/env bash
# Forward-pass speed of bonectl against PyTorch eager (and optionally ONNX
# Runtime) on UNet++ (ENCODER, default resnet34), in one run, alternating so
# machine drift hits both alike. Prints each side's median forward seconds and the ratio.
#   tools/compare_speed.sh SIZE [PAIRS] [--onnx]
#   ENCODER=tu-hrnet_w18 tools/compare_speed.sh 1024 2
# Needs tools/.venv (see tools/requirements.txt) or PYTHON=…, and a release build.
set -euo pipefail
cd "$(dirname "$0")/.."
size=${1:-512}
pairs=${2:-3}
engine_flag=${3:-}
encoder=${ENCODER:-resnet34}
python=${PYTHON:-tools/.venv/bin/python}
bonectl=.build/release/bonectl
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$bonectl" model random-weights --encoder "$encoder" --out "$work/w.safetensors" >/dev/null
"$bonectl" model import "$work/w.safetensors" --name m --arch unetplusplus --encoder "$encoder" --store "$work/models" >/dev/null
ours=()
theirs=()
for _ in $(seq "$pairs"); do
  ours+=("$("$bonectl" bench --model m --store "$work/models" --size "$size" --runs 1 --json | sed 's/.*"median_seconds":\([0-9.]*\).*/\1/')")
  theirs+=("$("$python" tools/bench_pytorch.py --encoder "$encoder" --size "$size" --threads 2 --runs 1 $engine_flag 2>/dev/null | sed 's/.*"median_seconds": \([0-9.]*\).*/\1/')")
done
python3 - "$size" "${ours[*]}" "${theirs[*]}" "${engine_flag:-pytorch-eager}" "$encoder" <<'PY'
import statistics, sys
size, ours, theirs, engine, encoder = sys.argv[1], list(map(float, sys.argv[2].split())), list(map(float, sys.argv[3].split())), sys.argv[4], sys.argv[5]
ratios = [a / b for a, b in zip(ours, theirs)]
print(f"UNet++-{encoder} at {size}², 2 threads, {len(ours)} pairs: bonectl median {statistics.median(ours):.3f} s, "
      f"{engine.lstrip('-')} median {statistics.median(theirs):.3f} s, bonectl/other median ratio {statistics.median(ratios):.2f} "
      f"(pairs: {', '.join(f'{r:.2f}' for r in ratios)})")
PY
