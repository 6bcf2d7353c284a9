#!/usr/bin/env bash
# The eighth session's prefill changes were built without a device (bench/RESULTS.md, "Built
# without a device"); this measures them on the GPU machine in three device calls of ≤ 10 minutes.
#
# Before the calls, here:
#   bash tooling/bench-bundle.sh                                   # .devbench/cli.js.xz: this tree
#   git worktree add /tmp/old e5dc4be && ln -s "$PWD/node_modules" /tmp/old/node_modules \
#     && (cd /tmp/old && npm run build:cli) && xz -9e -c /tmp/old/dist/cli/cli.js > .devbench/cli-old.js.xz \
#     && git worktree remove --force /tmp/old                      # the build before the session
#   move .devbench/mamba aside (the carry limit; these calls do not run mamba_ssm)
# Each call: carry [".devbench", ".gl"], command `OUT=$OUT bash tooling/bench-eighth.sh 1` (then 2, 3).
#   1  correctness of the split int8 products on the tensor cores (bench --int8-gemm: each kernel
#      whole and split 3 ways against the CPU), then the old and new builds alternated on
#      mamba2-130m and mamba2-2.7b, int8 prefill at 2,048 and 8,192 tokens, greedy decode, and
#      (new build) decode with the app's sampling (tooling/bench-ab.sh).
#   2  the same A/B on mamba-130m and mamba-2.8b, then the new build's per-kernel breakdown (the
#      SSD's five kernels: ssd.chunk_cumsum, …) at mamba2-2.7b.
#   3  the breakdown at mamba2-130m, then the sweeps: --int8-split-groups on the 130m shapes and
#      mamba-2.8b (short prompts; 1 = not split), --ssd-chunk on the Mamba-2 shapes, --scan-lanes
#      on mamba-2.8b and mamba-130m.
#   4  (ninth session) the model's int8 prefill on each tensor-core kernel (bench --tc-kernel
#      wide,wide-deep,double) at mamba2-2.7b and mamba-2.8b, 2,048 tokens: whether main_db's or
#      wide-deep's two stages of loads in flight beat the default main_wide (bench --int8-gemm in
#      call 1 times them standalone first).
# The official mamba_ssm's numbers for the ratios come from tooling/bench-prefill.sh (another call).
set -u
cd "$(dirname "$0")/.."
. tooling/device-env.sh
OUT="${OUT:-bench/out/eighth}"
mkdir -p "$OUT"
bench() { python3 .devbench/run.py bench "$@"; }
case "${1:-1}" in
  1)
    timeout 150 python3 .devbench/run.py bench --int8-gemm --repeats 10 --out "$OUT/int8.json" 2>&1 | grep -E 'correctness|tensor cores|TOPS' | tail -20
    OUT="$OUT/ab" timeout 420 bash tooling/bench-ab.sh "mamba2-130m mamba2-2.7b" 1 "--weights f16 --prefill 2048,8192 --decode 128 --repeats 3 --warmup 1 --prefill-matmul int8"
    ;;
  2)
    OUT="$OUT/ab" timeout 420 bash tooling/bench-ab.sh "mamba-130m mamba-2.8b" 1 "--weights f16 --prefill 2048,8192 --decode 128 --repeats 3 --warmup 1 --prefill-matmul int8"
    timeout 120 bash -c "$(declare -f bench); bench --shape mamba2-2.7b --weights f16 --prefill 512,2048 --decode 8 --repeats 2 --no-ceilings --prefill-matmul int8 --out $OUT/breakdown-mamba2-2.7b.json" 2>&1 | grep -E 'prefill|error' | tail -4
    ;;
  3)
    timeout 100 bash -c "$(declare -f bench); bench --shape mamba2-130m --weights f16 --prefill 512,2048 --decode 8 --repeats 2 --no-ceilings --prefill-matmul int8 --out $OUT/breakdown-mamba2-130m.json" 2>&1 | grep -E 'prefill|error' | tail -4
    for shape in mamba-130m mamba2-130m mamba-2.8b; do
      timeout 100 bash -c "$(declare -f bench); bench --shape $shape --weights f16 --prefill 512,2048 --decode 8 --repeats 3 --no-ceilings --no-breakdown --prefill-matmul int8 --int8-split-groups 1,128,256 --out $OUT/int8-split-$shape.json" 2>&1 | grep -E 'prefill|error' | tail -4
    done
    for shape in mamba2-2.7b mamba2-130m; do
      timeout 100 bash -c "$(declare -f bench); bench --shape $shape --weights f16 --prefill 2048 --decode 8 --repeats 3 --no-ceilings --no-breakdown --prefill-matmul int8 --ssd-chunk 256,128,64 --out $OUT/ssd-chunk-$shape.json" 2>&1 | grep -E 'prefill|error' | tail -4
    done
    for shape in mamba-2.8b mamba-130m; do
      timeout 80 bash -c "$(declare -f bench); bench --shape $shape --weights f16 --prefill 2048 --decode 8 --repeats 3 --no-ceilings --no-breakdown --prefill-matmul int8 --scan-lanes 16,8,4 --out $OUT/scan-lanes-$shape.json" 2>&1 | grep -E 'prefill|error' | tail -4
    done
    ;;
  4)
    for shape in mamba2-2.7b mamba-2.8b; do
      timeout 240 bash -c "$(declare -f bench); bench --shape $shape --weights f16 --prefill 2048 --decode 8 --repeats 3 --no-ceilings --prefill-matmul int8 --tc-kernel wide,wide-deep,double --out $OUT/tc-kernel-$shape.json" 2>&1 | grep -E 'prefill|error' | tail -6
    done
    ;;
  5)
    # (tenth session, the first with a device since the eighth) calls 1's correctness and 4 in one
    # call, then the --ssd-chunk sweep at mamba2-2.7b; the official numbers and the other shapes
    # come from tooling/bench-prefill.py in the next call.
    timeout 130 python3 .devbench/run.py bench --int8-gemm --repeats 10 --out "$OUT/int8.json" 2>&1 | tee "$OUT/int8.log" | grep -E 'correctness|tensor cores|TOPS|error' | tail -30
    for shape in mamba2-2.7b mamba-2.8b; do
      timeout 170 bash -c "$(declare -f bench); bench --shape $shape --weights f16 --prefill 2048 --decode 8 --repeats 3 --no-ceilings --prefill-matmul int8 --tc-kernel wide,wide-deep,double --out $OUT/tc-kernel-$shape.json" 2>&1 | grep -E 'prefill|error' | tail -6
    done
    timeout 90 bash -c "$(declare -f bench); bench --shape mamba2-2.7b --weights f16 --prefill 2048 --decode 8 --repeats 3 --no-ceilings --no-breakdown --prefill-matmul int8 --ssd-chunk 256,128,64 --out $OUT/ssd-chunk-mamba2-2.7b.json" 2>&1 | grep -E 'prefill|error' | tail -4
    ;;
  *)
    echo "usage: bash tooling/bench-eighth.sh 1|2|3|4|5" >&2
    exit 2
    ;;
esac
