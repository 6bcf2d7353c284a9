#!/usr/bin/env bash
# Issue 19's anchor: the official mamba_ssm beside the studio on the same shapes, on the same GPU,
# in one device call, each table with its ratios (bench/RESULTS.md keeps them as a dated table).
#   decode   tooling/bench-17.py: the studio's f16 decode and mamba_ssm's fp32 and bf16 (CUDA
#            graphs; 512 / (t(576 new tokens) − t(64)), so prompt and capture cancel)
#   prefill  tooling/bench-prefill.py: the studio's int8 prefill and mamba_ssm's
#            model(ids, num_last_tokens=1) in bf16 and fp32, at 2,048 and 8,192 tokens
# How each side is measured is in those scripts' headers. Before the call, here:
#   bash tooling/bench-bundle.sh
#   mkdir -p .devbench/mamba && git --git-dir=/work/.mirror/state-spaces+mamba/repo archive v2.3.2 mamba_ssm | tar -x -C .devbench/mamba
# The device call: carry [".devbench", ".gl"], command `bash bench/official.sh [decode|prefill]`
# (both when not named; ~9 minutes); DECODE_ARGS / PREFILL_ARGS add arguments to either script
# (e.g. PREFILL_ARGS="--shapes mamba2-2.7b --studio-args '--ssd-tile wide'").
set -u
cd "$(dirname "$0")/.."
. tooling/device-env.sh
OUT="${OUT:-bench/out/official}"
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
what="${1:-both}"
if [ "$what" != prefill ]; then
  eval python3 tooling/bench-17.py --out "$OUT/decode" --formats f16 --shapes mamba-130m,mamba2-130m,mamba-2.8b,mamba2-2.7b --budget 240 "${DECODE_ARGS:-}"
fi
if [ "$what" != decode ]; then
  eval python3 tooling/bench-prefill.py --out "$OUT/prefill" --matmul int8 --official-dtypes bf16,fp32 --budget 300 "${PREFILL_ARGS:-}"
fi
