#!/usr/bin/env bash
# One-time set-up for a fresh machine: npm dependencies, the build, only where no WebGPU adapter is found on Linux
# with apt the CPU Vulkan driver (lavapipe), and wherever apt is Debian's Fashion-MNIST package (the default study's
# data).
# Idempotent: every step checks before it acts and says what it did.
#
#   --slurm        also Debian's Slurm and munge (slurmctld, slurmd, slurm-client, munge), for scripts/slurm-local.sh
#                  and test/study/slurm.test.ts; a cluster's users do not need them
#   --swiftshader  also Debian's chromium-common, for the SwiftShader Vulkan driver it ships (a second CPU driver,
#                  subgroups of 4 lanes, no shader-f16), on which scripts/test-swiftshader.sh runs the tests
set -euo pipefail
cd "$(dirname "$0")/.."

SLURM=0
SWIFTSHADER=0
for arg in "$@"; do
  case "$arg" in
    --slurm) SLURM=1 ;;
    --swiftshader) SWIFTSHADER=1 ;;
    *) printf 'setup: unknown argument %s (usage: npm run setup [-- --slurm] [--swiftshader])\n' "$arg" >&2; exit 2 ;;
  esac
done

say() { printf 'setup: %s\n' "$*"; }

# Debian packages, quietly, as root or through sudo, after refreshing the package lists.
apt_install() {
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

if [ -f package-lock.json ]; then npm ci --no-audit --no-fund; else npm install --no-audit --no-fund; fi
say "npm dependencies installed"
npm run build --silent
say "built dist/run.js"

have_adapter() { node dist/run.js info --quiet >/dev/null 2>&1; }

if have_adapter; then
  say "a WebGPU adapter is available: no Vulkan driver to install"
else
  if [ "$(uname -s)" != Linux ] || ! command -v apt-get >/dev/null; then
    say "no WebGPU adapter found and no apt: install a Vulkan driver (GPU, or Mesa >= 24 lavapipe) by hand"
    exit 1
  fi
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  . /etc/os-release
  if [ "${VERSION_CODENAME:-}" = bookworm ]; then
    # Debian 12's Mesa 22 is refused by Dawn; bookworm-backports carries Mesa 25.
    list=/etc/apt/sources.list.d/bookworm-backports.list
    if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
      echo 'deb http://deb.debian.org/debian bookworm-backports main' | $SUDO tee "$list" >/dev/null
      say "added bookworm-backports to apt sources"
    fi
    $SUDO apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -t bookworm-backports libvulkan1 mesa-vulkan-drivers >/dev/null
  else
    $SUDO apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libvulkan1 mesa-vulkan-drivers >/dev/null
  fi
  say "installed libvulkan1 and mesa-vulkan-drivers ($(dpkg-query -W -f='${Version}' mesa-vulkan-drivers))"
  if ! have_adapter; then
    node dist/run.js info || true
    say "still no WebGPU adapter after installing the CPU Vulkan driver"
    exit 1
  fi
fi

# The real data set used by the default study and the data tests.
if command -v apt-get >/dev/null && ! dpkg -s dataset-fashion-mnist >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist >/dev/null \
    || { $SUDO apt-get update -qq && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist >/dev/null; }
  say "installed dataset-fashion-mnist"
elif dpkg -s dataset-fashion-mnist >/dev/null 2>&1; then
  say "dataset-fashion-mnist already installed"
fi

if [ "$SLURM" = 1 ]; then
  SLURM_PACKAGES="slurmctld slurmd slurm-client munge"
  if dpkg -s $SLURM_PACKAGES >/dev/null 2>&1; then
    say "Slurm already installed ($(dpkg-query -W -f='${Version}' slurmctld))"
  elif ! command -v apt-get >/dev/null; then
    say "--slurm: no apt; install Slurm (slurmctld, slurmd, client commands) and munge by hand"
    exit 1
  else
    apt_install $SLURM_PACKAGES
    say "installed $SLURM_PACKAGES ($(dpkg-query -W -f='${Version}' slurmctld))"
  fi
fi

if [ "$SWIFTSHADER" = 1 ]; then
  # Debian's chromium-common (the browser's shared files) ships SwiftShader's Vulkan driver and its manifest.
  ICD=/usr/lib/chromium/vk_swiftshader_icd.json
  if [ -f "$ICD" ]; then
    say "SwiftShader's Vulkan driver already installed ($ICD)"
  elif ! command -v apt-get >/dev/null; then
    say "--swiftshader: no apt; install SwiftShader's Vulkan driver by hand and set SWIFTSHADER_ICD to its manifest"
    exit 1
  else
    apt_install --no-install-recommends chromium-common
    say "installed chromium-common ($(dpkg-query -W -f='${Version}' chromium-common)) for SwiftShader's Vulkan driver ($ICD)"
  fi
fi
node dist/run.js info
