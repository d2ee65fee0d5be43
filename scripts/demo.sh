#!/usr/bin/env bash
# The main job until the daemon and a trained demo release land: make a
# phantom radiograph, import a deterministic UNet++-resnet34 (SMP key names;
# random weights, so the masks are not anatomy), segment the radiograph to
# the CSV, overlay and sidecar, and benchmark the forward pass.
set -euo pipefail
cd "$(dirname "$0")/.."
BONECTL=${BONECTL:-.build/release/bonectl}
DEMO=${DEMO_DIR:-/tmp/bonesegd-demo}
mkdir -p "$DEMO"

if [ ! -d "$DEMO/phantoms/DCM" ]; then
  "$BONECTL" synth --out "$DEMO/phantoms" --count 2 --size 1024 --seed 7
fi
image=$(find "$DEMO/phantoms/DCM" -name '*.png' | sort | head -n 1)

if ! "$BONECTL" model list --store "$DEMO/models" | grep -q '^demo-resnet34 '; then
  "$BONECTL" model random-weights --encoder resnet34 --out "$DEMO/resnet34.safetensors"
  "$BONECTL" model import "$DEMO/resnet34.safetensors" --name demo-resnet34 --arch unetplusplus \
    --encoder resnet34 --input-size 512 --store "$DEMO/models"
fi

"$BONECTL" segment "$image" --model demo-resnet34 --store "$DEMO/models" --out "$DEMO/results" --logits "$DEMO/logits.npy"
echo "results: $(ls "$DEMO/results" | tr '\n' ' ')"
"$BONECTL" bench --model demo-resnet34 --store "$DEMO/models" --size 512 --runs 3
