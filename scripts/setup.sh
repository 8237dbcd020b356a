#!/usr/bin/env bash
# Installs what eyeward's demo and tests need and this machine lacks: Debian packages (with
# sudo when not root) and the browser-test npm packages (into tests/browser). Safe to re-run:
# it installs only what is missing. Usage: scripts/setup.sh [demo|test|bench]
set -euo pipefail
cd "$(dirname "$0")/.."
purpose=${1:-test}

# Debian packages, by what needs them.
# GStreamer: the agent's capture and camera simulator (x264 from -ugly, the clock overlay
# from -x, rtspsrc from -good); ffmpeg's ffprobe checks the simulator from the outside.
packages=(pkg-config libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev libgstrtspserver-1.0-dev
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
  gstreamer1.0-plugins-ugly gstreamer1.0-libav gstreamer1.0-rtsp gstreamer1.0-x gstreamer1.0-tools)
if [ "$purpose" != demo ]; then
  # Real headless browser for the end-to-end tests; a Japanese font so screenshots are legible.
  packages+=(chromium fonts-ipafont-gothic ffmpeg)
  # Network namespaces and a lossy link between the agent and the relay (random drops with
  # nftables: this kernel has no netem).
  packages+=(iproute2 nftables)
  # The tests' Python peers (from PyPI, in a venv of their own).
  packages+=(python3 python3-venv)
fi
if [ "$purpose" = bench ]; then
  # The live-video benchmark's peer: Janus Gateway's streaming plugin.
  packages+=(janus)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

for tool in cargo node npm; do
  command -v "$tool" >/dev/null || { echo "setup: $tool is required but not installed" >&2; exit 1; }
done

if [ "$purpose" != demo ]; then
  # playwright-core drives Debian's chromium; it never downloads a browser of its own.
  if [ ! -d tests/browser/node_modules/playwright-core ] \
     || [ tests/browser/package-lock.json -nt tests/browser/node_modules/.package-lock.json ]; then
    echo "setup: installing the browser-test npm packages" >&2
    npm ci --prefix tests/browser --no-audit --no-fund --loglevel=error >&2
  fi
  # The tests' Python peers, in a venv of their own: a real SMTP server (aiosmtpd) and a
  # third-party ONVIF client (onvif-zeep).
  if ! tests/.venv/bin/python -c 'import aiosmtpd, onvif' 2>/dev/null; then
    echo "setup: installing the tests' Python peers (aiosmtpd, onvif-zeep)" >&2
    python3 -m venv tests/.venv >&2
    tests/.venv/bin/pip install --quiet --disable-pip-version-check 'aiosmtpd==1.4.6' 'onvif-zeep==0.2.12' >&2
  fi
fi
