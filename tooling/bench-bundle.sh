#!/usr/bin/env bash
# Bundles what a GPU machine without Node needs to run `bench` (see bench/RESULTS.md):
#   .devbench/node.xz, .devbench/dawn.node.xz  this machine's node binary (stripped) and Dawn's addon (xz)
#   .devbench/webgpu/                          the `webgpu` package's loader (no binaries)
#   .devbench/cli.js.xz                        the built CLI (npm run build:cli), xz
#   .devbench/run.py                           unpacks with Python's lzma and runs the CLI
# and the Vulkan loader .deb in .gl/ (the device machine has none). Both folders are git-ignored;
# name them in the device call's `carry` (xz -9e and the stripped node: the call's working tree,
# tracked files included, must stay under 64 MiB: with a second CLI for an A/B, carry the
# mamba_ssm source as .devbench/mamba.tar.xz — `tar cJf .devbench/mamba.tar.xz -C .devbench/mamba .`
# — and untar it on the device before the official runs). On the device:
#   . tooling/device-env.sh          (the loader from .gl/ and VK_DRIVER_FILES)
#   python3 .devbench/run.py bench --shape mamba-130m --out $OUT/bench.json
set -euo pipefail
cd "$(dirname "$0")/.."
npm run build:cli --silent
mkdir -p .devbench/webgpu .gl
if [ ! -f .devbench/node.xz ]; then
  cp "$(readlink -f "$(command -v node)")" /tmp/devbench-node && strip /tmp/devbench-node
  xz -T2 -9e -c /tmp/devbench-node > .devbench/node.xz && rm /tmp/devbench-node
fi
[ -f .devbench/dawn.node.xz ] || xz -T2 -6 -c node_modules/webgpu/dist/linux-x64/dawn.node > .devbench/dawn.node.xz
cp node_modules/webgpu/index.js node_modules/webgpu/package.json .devbench/webgpu/
rm -f .devbench/cli.js && xz -9e -c dist/cli/cli.js > .devbench/cli.js.xz
cp tooling/bench-run.py .devbench/run.py
if ! ls .gl/libvulkan1_*amd64.deb >/dev/null 2>&1; then
  mkdir -p /tmp/amd64/partial
  o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
  apt-get $o update -qq
  (cd .gl && apt-get $o download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
fi
du -sh .devbench .gl
