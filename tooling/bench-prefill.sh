#!/usr/bin/env bash
# Issue 19's prefill on the GPU machine in ONE device call (≤ 10 min): first `bench --int8-gemm`
# (the int8 kernels against the CPU, and their speed on mamba-2.8b's projections), then
# tooling/bench-prefill.py (the studio's fp32 and int8 prefill at each shape, the official
# mamba_ssm's Mamba-2 prefill, one after the other). Writes $OUT/int8.json, $OUT/prefill.{json,md,log}
# and $OUT/studio-<shape>.json.
#
# Before the call, here (as for tooling/bench-17.sh):
#   bash tooling/bench-bundle.sh
#   mkdir -p .devbench/mamba && git --git-dir=/work/.mirror/state-spaces+mamba/repo archive v2.3.2 mamba_ssm | tar -x -C .devbench/mamba
# The device call: carry [".devbench", ".gl"], command `bash tooling/bench-prefill.sh`; extra
# arguments go to bench-prefill.py (e.g. --shapes mamba-2.8b --budget 300).
set -u
cd "$(dirname "$0")/.."
. tooling/device-env.sh
OUT="${OUT:-bench/out/prefill}"
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
python3 .devbench/run.py bench --int8-gemm --repeats 10 --out "$OUT/int8.json" 2>&1 | tail -8
python3 tooling/bench-prefill.py --out "$OUT" "$@"
