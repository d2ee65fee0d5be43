#!/usr/bin/env bash
# Installs the Debian packages bonesegd builds and tests against, only when missing
# (systemd and man-db give the tests systemd-analyze, sysusers, tmpfiles and man).
set -euo pipefail
packages=(libopenblas-dev libpng-dev libjpeg62-turbo-dev libdeflate-dev libsystemd-dev libsqlite3-dev pkg-config libssl-dev systemd man-db)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi
