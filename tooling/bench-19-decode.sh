#!/usr/bin/env bash
# Issue 19's decode kernels on the GPU machine in ONE device call (≤ 10 min): the decode
# matrix-vector kernel (shaders/norm_matvec.wgsl) swept over threads×rows×unroll shapes at the
# mamba-2.8b shape (f16 and q4_k, each shape with its per-kernel breakdown), then the default
# shapes at every size and format the issues name, each with its per-kernel breakdown.
# Writes $OUT/sweep-*.json and $OUT/decode-*.json (the bench's own JSON) and $OUT/decode19.log.
#
# Before the call, here:  bash tooling/bench-bundle.sh
# The device call: carry [".devbench", ".gl"], command `bash tooling/bench-19-decode.sh [sweep|sizes|all]`.
set -u
cd "$(dirname "$0")/.."
. tooling/device-env.sh
OUT=${OUT:-bench/out/decode19}
mkdir -p "$OUT"
what=${1:-all}
log="$OUT/decode19.log"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | tee -a "$log" || true
timeout 60 python3 .devbench/run.py gpu --unsafe > "$OUT/gpu-unsafe.json" 2>&1; grep -A3 -E "subgroupSums|subgroupMatrixConfigs|subgroupM..Size" "$OUT/gpu-unsafe.json" | head -40 | tee -a "$log"
bench() { # name, args…
  local name=$1; shift
  echo "== $name: $*" | tee -a "$log"
  timeout 200 python3 .devbench/run.py bench --prefill 16 --chunk 16 --no-ceilings --repeats 3 --out "$OUT/$name.json" "$@" 2>&1 \
    | grep -Ev '^\s*[\[{}"]|^\s*\]' | tee -a "$log"
}
if [ "$what" = sweep ] || [ "$what" = all ]; then
  bench sweep-2.8b-f16 --shape mamba-2.8b --weights f16 --decode 128 \
    --matvec 32x2x4,32x1x4,32x4x2,32x4x4,64x1x4,64x2x4,128x1x4,256x1x4
  bench sweep-2.8b-q4k --shape mamba-2.8b --weights q4_k --decode 128 \
    --matvec 32x2x1,32x1x1,32x4x1,64x1x1,16x2x1
fi
if [ "$what" = sizes ] || [ "$what" = all ]; then
  bench decode-2.8b --shape mamba-2.8b --weights f16,q8_0,q4_k --decode 256
  bench decode-2.7b --shape mamba2-2.7b --weights f16,q4_k --decode 256
  bench decode-7b --shape falcon-mamba-7b --weights q4_k --decode 128
  bench decode-130m --shape mamba-130m --weights f32,f16 --decode 256
  bench decode-m2-130m --shape mamba2-130m --weights f32,f16 --decode 256
fi
