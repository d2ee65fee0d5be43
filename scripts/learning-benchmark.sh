#!/usr/bin/env bash
# The learning benchmark: from scratch on 400 phantoms at 256², one member,
# a 60-minute wall-clock budget (BUDGET to change it). Prints the validation
# curve (per-epoch Dice of the member at 256² on the patient-grouped
# validation split) and the final competition Dice at the phantoms' own size
# (512²). Release build.
#   scripts/learning-benchmark.sh            # 60 minutes
#   BUDGET=10m scripts/learning-benchmark.sh # a shorter look
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${BIN_DIR:-.build/release}
work=${WORK_DIR:-/tmp/bonesegd-learning}
budget=${BUDGET:-60m}
model=(${MODEL:---encoder resnet18 --encoder-depth 3 --decoder-channels 32,16,8})
mkdir -p "$work"
if [ ! -d "$work/phantoms/DCM" ]; then
  "$bin/bonectl" synth --out "$work/phantoms" --count 400 --size 512 --seed 400
fi
rm -rf "$work/state"
# Epoch lines (loss, validation Dice at 256², elapsed time) go to stderr and
# are the curve; the last lines give the candidate's Dice at full size.
"$bin/bonectl" retrain --data "$work/phantoms" --state-dir "$work/state" \
  --socket "$work/none.sock" --seeds 1 --budget "$budget" --size 256 --batch-size 4 --from-scratch --learning-rate 0.008 \
  "${model[@]}" 2>&1 | tee "$work/learning.log" | grep -v '^left out'
