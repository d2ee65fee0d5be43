#!/usr/bin/env bash
# The main job: bonesegd on a local spool. Makes phantom radiographs, imports a
# deterministic UNet++-resnet34 in SMP's layout (random weights until a trained
# demo release lands, so the masks are not anatomy), makes it a release,
# starts the daemon in the foreground on DEMO_DIR, drops the phantoms into its
# inbox, waits for their result sets, shows `bonectl status`, stops the
# daemon with SIGTERM, and benchmarks the forward pass.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${BIN_DIR:-.build/release}
DEMO=${DEMO_DIR:-/tmp/bonesegd-demo}
state="$DEMO/state"
spool="$DEMO/spool"
mkdir -p "$DEMO" "$spool/inbox"

if [ ! -d "$DEMO/phantoms/DCM" ]; then
  "$bin/bonectl" synth --out "$DEMO/phantoms" --count 4 --size 1024 --seed 7
fi
if ! "$bin/bonectl" model list --store "$state/models" | grep -q '^demo-resnet34 '; then
  "$bin/bonectl" model random-weights --encoder resnet34 --out "$DEMO/resnet34.safetensors"
  "$bin/bonectl" model import "$DEMO/resnet34.safetensors" --name demo-resnet34 --arch unetplusplus \
    --encoder resnet34 --input-size 512 --store "$state/models"
  "$bin/bonectl" release create demo --members demo-resnet34 --store "$state/models"
fi

cat > "$DEMO/bonesegd.conf" <<CONF
[spool]
dir = "$spool"
settle_seconds = 0.5

[state]
dir = "$state"

[control]
socket = "$DEMO/control.sock"
group = ""

[log]
target = "stderr"
CONF
"$bin/bonectl" release activate demo --config "$DEMO/bonesegd.conf"

"$bin/bonesegd" --config "$DEMO/bonesegd.conf" &
daemon=$!
trap 'kill -TERM $daemon 2>/dev/null || true; wait $daemon 2>/dev/null || true' EXIT

# Drop the phantoms the safe way: write under a dot name, then rename.
for image in "$DEMO"/phantoms/DCM/*/*.png; do
  folder="$spool/inbox/$(basename "$(dirname "$image")")"
  mkdir -p "$folder"
  cp "$image" "$folder/.$(basename "$image")"
  mv "$folder/.$(basename "$image")" "$folder/$(basename "$image")"
done
expected=$(ls "$DEMO"/phantoms/DCM/*/*.png | wc -l)
for _ in $(seq 600); do
  done_count=$(find "$spool/outbox" -name '*.json' 2>/dev/null | wc -l)
  [ "$done_count" -ge "$expected" ] && break
  sleep 0.5
done
echo "outbox:"
(cd "$spool/outbox" && find . -type f | sort)
"$bin/bonectl" status --config "$DEMO/bonesegd.conf"
kill -TERM $daemon
wait $daemon || true
trap - EXIT

"$bin/bonectl" bench --model demo-resnet34 --store "$state/models" --size 512 --runs 3
