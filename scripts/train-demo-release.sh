#!/usr/bin/env bash
# Trains the demo release committed in demo/: three seeds of a compact UNet++
# (SMP UnetPlusPlus("resnet18", encoder_depth=3, decoder_channels=(32, 16, 8)),
# 0.9 M parameters, stored as Float16: 1.8 MB a member) from scratch on bonectl synth phantoms at 256², with
# bonectl retrain itself. `make demo` and the daemon's tests serve it.
#   scripts/train-demo-release.sh          # EPOCHS=10 per seed
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${BIN_DIR:-.build/release}
work=${WORK_DIR:-/tmp/bonesegd-demo-release}
epochs=${EPOCHS:-10}
rm -rf "$work"
mkdir -p "$work"
"$bin/bonectl" synth --out "$work/phantoms" --count 160 --size 512 --seed 2026
"$bin/bonectl" retrain --data "$work/phantoms" --state-dir "$work/state" --socket "$work/none.sock" --name demo \
  --seeds 3 --epochs "$epochs" --size 256 --batch-size 4 --encoder resnet18 --encoder-depth 3 \
  --decoder-channels 32,16,8 --half-precision-weights --from-scratch --learning-rate 0.008 --no-activate
rm -rf demo/models demo/releases
mkdir -p demo/models demo/releases
cp -r "$work"/state/models/demo-s* demo/models/
cp -r "$work/state/releases/demo" demo/releases/
du -sh demo
