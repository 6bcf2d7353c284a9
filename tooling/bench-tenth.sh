#!/usr/bin/env bash
# The tenth session's device calls (2026-12-05), one mode a call; each lands in $OUT/all.tgz (the
# device returns at most 8 files).
#   1  after put4's rotated stores were found to cost 43 % of the tensor-core kernels' speed
#      (bench-eighth.sh 5): the int8 products again, the int8 prefill at mamba2-2.7b and mamba-2.8b
#      (2,048 and 8,192 tokens, per-kernel breakdown) beside the official bf16 prefill, then decode
#      beside the official decode at mamba2-130m, mamba-130m and mamba-2.8b (f16).
#   2  the model's prefill on main_wide against wide-deep (which beat it alone on in_proj), the
#      official bf16 prefill at mamba2-2.7b again beside the studio's, mamba-2.8b decode.
#   3  the square tensor-core kernel (main_sq) and the K = 4 conv (main_k4), both opt-in then,
#      against the defaults; int8 split-K at mamba-2.8b (x_proj: 32 tiles walking 80 stages).
#      main_sq was ~15 % slower and is gone since (d4326fe has it; --tc-kernel square now
#      refuses); main_k4 became the default.
#   4  the defaults after main_k4 and the rotating quantize's kept passes as named values (no
#      array), per kernel, at the three int8-prefill shapes that matter.
# Before a call: bash tooling/bench-bundle.sh, and for 1 and 2 the mamba_ssm source in
# .devbench/mamba (tooling/bench-prefill.sh's header). Carry [".devbench", ".gl"].
set -u
cd "$(dirname "$0")/.."
. tooling/device-env.sh
W=/tmp/tenth
mkdir -p $W/p $W/d
case "${1:-1}" in
  1)
    timeout 100 python3 .devbench/run.py bench --int8-gemm --repeats 10 --out $W/int8.json 2>&1 | grep -E 'TOPS|FAIL|error'
    python3 tooling/bench-prefill.py --out $W/p --shapes mamba2-2.7b,mamba-2.8b --matmul int8 --official-dtypes bf16 --budget 200 \
      --breakdown mamba2-2.7b,mamba-2.8b 2>&1 | grep -E '^\| |prefill [0-9]|error'
    python3 tooling/bench-17.py --out $W/d --shapes mamba2-130m,mamba-130m,mamba-2.8b --formats f16 --budget "${DECODE_BUDGET:-200}" 2>&1 | grep -E '^\| |error'
    ;;
  2)
    for shape in mamba2-2.7b mamba-2.8b; do
      timeout 120 python3 .devbench/run.py bench --shape $shape --weights f16 --prefill 2048,8192 --decode 8 --repeats 3 --no-ceilings --no-breakdown \
        --prefill-matmul int8 --tc-kernel wide,wide-deep --out $W/tc-kernel-$shape.json 2>&1 | grep -E '^prefill|tc kernel|error'
    done
    python3 tooling/bench-prefill.py --out $W/p --shapes mamba2-2.7b --matmul int8 --official-dtypes bf16 --budget 150 --breakdown none 2>&1 | grep -E '^\| |error'
    python3 tooling/bench-17.py --out $W/d --shapes mamba-2.8b --formats f16 --budget 200 2>&1 | grep -E '^\| |error'
    ;;
  3)
    timeout 70 python3 .devbench/run.py bench --int8-gemm --repeats 10 --out $W/int8.json 2>&1 | grep -E 'TOPS|FAIL|error'
    timeout 150 python3 .devbench/run.py bench --shape mamba2-2.7b --weights f16 --prefill 2048,8192 --decode 8 --repeats 3 --no-ceilings \
      --prefill-matmul int8 --tc-kernel wide,square --conv loop,k4 --out $W/sq-conv-mamba2-2.7b.json 2>&1 | grep -E '^prefill|error'
    timeout 150 python3 .devbench/run.py bench --shape mamba-2.8b --weights f16 --prefill 2048,8192 --decode 8 --repeats 3 --no-ceilings \
      --prefill-matmul int8 --tc-kernel wide,square --int8-split-groups 1,256 --out $W/sq-split-mamba-2.8b.json 2>&1 | grep -E '^prefill|error'
    ;;
  4)
    for shape in mamba2-2.7b mamba-2.8b mamba2-130m; do
      timeout 60 python3 .devbench/run.py bench --shape $shape --weights f16 --prefill 2048,8192 --decode 8 --repeats 3 --no-ceilings \
        --prefill-matmul int8 --out $W/final-$shape.json 2>&1 | grep -E '^prefill|error'
    done
    ;;
  *)
    echo "usage: bash tooling/bench-tenth.sh 1|2|3|4" >&2
    exit 2
    ;;
esac
tar czf "${OUT:-bench/out}/all.tgz" -C $W .
