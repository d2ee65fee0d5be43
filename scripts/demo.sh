#!/usr/bin/env bash
# The main job: bonesegd on a local spool with the bundled demo release
# (demo/: three seeds of a compact UNet++ trained on phantoms by
# scripts/train-demo-release.sh). Makes phantom radiographs the release has not
# seen, installs the release into DEMO_DIR's state, starts the daemon in the
# foreground, drops the phantoms into its inbox, waits for their result sets,
# scores them against the phantoms' labels, shows `bonectl status`, stops the
# daemon with SIGTERM, and benchmarks a member's forward pass.
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
if [ ! -f "$state/releases/demo/release.json" ]; then
  mkdir -p "$state/models" "$state/releases"
  cp -r demo/models/* "$state/models/"
  cp -r demo/releases/demo "$state/releases/"
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
# The daemon's per-image CSVs as one submission, scored against the labels.
{ echo "image_name,class,rle"; for csv in $(find "$spool/outbox" -name '*.csv' | sort); do tail -n +2 "$csv"; done; } > "$DEMO/submission.csv"
"$bin/bonectl" eval --pred "$DEMO/submission.csv" --gt "$DEMO/phantoms" | tail -n 3
"$bin/bonectl" status --config "$DEMO/bonesegd.conf"
kill -TERM $daemon
wait $daemon || true
trap - EXIT

"$bin/bonectl" bench --model demo-s0 --store "$state/models" --size 256 --runs 3
