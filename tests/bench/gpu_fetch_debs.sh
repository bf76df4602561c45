#!/usr/bin/env bash
# Run HERE (the Debian 12 dev machine, which has network), before a GPU check: downloads
# the -dev .debs the CUDA build needs into .debs/ (gitignored), so gpu_check.sh can
# `dpkg -x` them into a private prefix on the device machine, which has CUDA 13, CMake and
# ninja but none of our -dev packages and no network. Then name `.debs` in the device
# tool's `carry`.
set -euo pipefail
cd "$(git -C "$(dirname "$0")" rev-parse --show-toplevel)"
mkdir -p .debs
# Headers + CMake configs, and the shared libraries the -dev packages point at. OpenMP
# and pthreads come with the device machine's compiler.
pkgs=(
  libeigen3-dev
  libyaml-cpp-dev libyaml-cpp0.7
  libsimdjson-dev libsimdjson14
  nlohmann-json3-dev
  libcli11-dev
  libfmt-dev libfmt9
  libgtest-dev libgmock-dev
  libssl-dev libssl3
)
(cd .debs && apt-get download "${pkgs[@]}")
ls -la .debs
du -sh .debs
