#!/usr/bin/env bash
# The measurements waiting for a device: kernels built in sessions without one (eighth to
# eleventh: bench/RESULTS.md "Built without a device"), one mode a call, each ~3–5 minutes; every
# mode lands in $OUT/all.tgz (the device returns at most 8 files); each mode's timeouts add up to
# under the 600 s a command may run.
#   1  the default int8 prefill (tenth session: main_k4 conv at mamba-2.8b, quantize_rot's kept
#      passes as named values) per kernel, beside the eleventh session's opt-ins: Mamba-1's channel
#      scan (--prefill-scan parallel,channel) and the SSD's wide tiles (--ssd-tile narrow,wide),
#      at 2,048 and 8,192 tokens, 2.7–2.8B and 130m shapes.
#   2  Dawn's toggles (--dawn-features): the int8 products, the int8 prefill and the f16 decode with
#      none, disable_robustness, and disable_robustness,disable_workgroup_init; then the SPIR-V
#      Dawn makes of the tensor-core kernels (dump_shaders), to see what robustness puts around
#      the cooperative-matrix loads (dump.txt.xz).
#   3  against the official mamba_ssm in the same call with the settings mode 1 and 2 found best:
#      STUDIO_ARGS (e.g. "--prefill-scan channel --ssd-tile wide") for the prefill,
#      DECODE_ARGS for the decode (f16 at mamba-2.8b, mamba2-130m and mamba-130m).
#   4  Mamba-1's decode with x_proj folded into in_proj (twelfth session: --decode-xproj
#      separate,folded, 3 dispatches a layer instead of 4, Falcon-Mamba 3 instead of 5) at
#      mamba-130m and mamba-2.8b (f16, per kernel), mamba-2.8b Q4_K and falcon-mamba-7b Q4_K;
#      then the app's prefill chunk: the app and the CLI build models for chunks of 256 tokens
#      (allocateModel's default) where the bench runs one chunk of 2,048, so a 2,048-token prompt
#      in the app is 8 int8 prefills of 256 (mamba2-2.7b and mamba-2.8b, --chunk 256 against 2048).
#   5  the 130m shapes' 8,192-token int8 prefill in one chunk of 8,192 (--chunk 8192) against the
#      default chunks of 2,048: an fp32 run measured one chunk 23 % faster (bench/RESULTS.md, issue
#      19 item 3), and mamba2-130m @8,192 is at 0.66× of its target.
#   6  the decisions in one call (for a session that gets one machine once): the fold beside the
#      official decode at mamba-130m and mamba-2.8b (bench-17.py, f16), the channel scan at
#      mamba-2.8b and the wide SSD tiles at mamba2-2.7b, 2,048 tokens.
#   7  the tensor-core kernels' block staging (this build against .devbench/cli-old.js.xz), its
#      prefill without Dawn's robustness, and its SPIR-V (no clamped fragment load).
#   8  int8_gemm_big.wgsl's 'quad' and 'big' kernels against 'wide', alone and in the prefill.
#   9  Mamba-1's channel scan against the lanes' scan, four repeats, three shapes.
#   10 an A/B of this build against .devbench/cli-old.js.xz by the SSD's two tiled kernels (the
#      fifteenth session's two-dimensional tiles), then mode 3 with the faster build.
# Measured on an H100 on 2026-12-05 (bench/RESULTS.md "Six calls on an H100"): 6, 4 and 3 — the
# fold, the channel scan and the wide SSD tiles lose at 2.7–2.8B and stay off; 1, 2 and 5 (at
# mamba-130m / mamba2-130m: the long chunk is now the default) are still to run on an H200.
# Fifteenth session (H100, bench/RESULTS.md "Fifteenth session"): 2, 7, 8, 9, 10 — the block
# staging and the channel scan kept (the fourteenth's channel-scan verdict came from one slow
# first call), 'quad'/'big' and the SSD's two-dimensional tiles lost.
# Seventeenth session (H100, bench/RESULTS.md "Seventeenth session"): 11 — the decode is GPU-bound
# (a step's GPU time 90–94 % of a token), the x_proj fold loses on the GPU (−5 %), and the app's
# sampling costs ~0.4 ms a token; mamba-2.8b came from a separate bench-17.py call. Give the
# official Mamba-2 2.7B cases ≥ 90 s each (Triton builds its kernels first: 45 s timed out) and
# run the studio first where the budget is short. 12 and 1 are still to run.
# Eighteenth session (H100, bench/RESULTS.md "Eighteenth session"): 13, 14 (= mamba-2.8b + 12) and
# 15, 16 — the sampler's first stage, short finish and search floor (0.420 → 0.056 ms a sampling), mamba2-2.7b's
# decode, every prefill target. 13's budget of 200 s left mamba-2.8b's studio run out: give it 260.
# Still to run on an H200: 13 (or 11) and 12.
# Nineteenth session (H100, bench/RESULTS.md "Nineteenth session"): 17 (the decode's early loads,
# kept), 18 (the 'direct' tensor-core kernel, lost; the decode depth, no change), 19 and 20 (two
# steps a submit, kept), 13 (its first part ran out on a slow host: give the official cases ≥ 120
# s and the part ≥ 300 s) and 21. Still to run on an H200: 13 and 12.
# A session's 30 device minutes hold about three calls: 1, then 3 with
# DECODE_ARGS="--decode-xproj separate,folded" (the fold beside the official decode, same call),
# then 4 or 2.
# After a call: python3 tooling/summarize-bench.py <the extracted all.tgz> gives the tables (rates,
# settings, checks, slowest kernels) for bench/RESULTS.md.
# Before a call: bash tooling/bench-bundle.sh, and for 3 the mamba_ssm source in .devbench/mamba
# (tooling/bench-prefill.sh's header). Carry [".devbench", ".gl"].
set -u
cd "$(dirname "$0")/.."
. tooling/device-env.sh
W=/tmp/next
mkdir -p $W/p $W/d
bench() { python3 .devbench/run.py bench "$@"; }
case "${1:-1}" in
  1)
    for shape in mamba-2.8b mamba-130m; do
      timeout 130 bash -c "$(declare -f bench); bench --shape $shape --weights f16 --prefill 2048,8192 --decode 8 --repeats 2 --no-ceilings \
        --prefill-matmul int8 --prefill-scan parallel,channel --out $W/scan-$shape.json" 2>&1 | grep -E '^prefill|error'
    done
    for shape in mamba2-2.7b mamba2-130m; do
      timeout 130 bash -c "$(declare -f bench); bench --shape $shape --weights f16 --prefill 2048,8192 --decode 8 --repeats 2 --no-ceilings \
        --prefill-matmul int8 --ssd-tile narrow,wide --out $W/ssd-tile-$shape.json" 2>&1 | grep -E '^prefill|error'
    done
    ;;
  2)
    for toggles in none disable_robustness disable_robustness,disable_workgroup_init; do
      flag=(); [ "$toggles" = none ] || flag=(--dawn-features "$toggles")
      timeout 45 bash -c "$(declare -f bench); bench --int8-gemm --repeats 5 ${flag[*]} --out $W/int8-$toggles.json" 2>&1 | grep -E 'TOPS|FAIL|error'
      timeout 60 bash -c "$(declare -f bench); bench --shape mamba2-2.7b --weights f16 --prefill 2048 --decode 8 --repeats 2 --no-ceilings \
        --prefill-matmul int8 ${flag[*]} --out $W/prefill-$toggles.json" 2>&1 | grep -E '^prefill|error'
      timeout 45 bash -c "$(declare -f bench); bench --shape mamba-2.8b --weights f16 --prefill 128 --decode 128 --repeats 2 --no-ceilings \
        --no-breakdown ${flag[*]} --out $W/decode-$toggles.json" 2>&1 | grep -E '^decode|error'
    done
    timeout 45 bash -c "$(declare -f bench); bench --int8-gemm --repeats 1 --dawn-features dump_shaders" > $W/dump.txt 2>&1
    xz -9 $W/dump.txt
    ;;
  3)
    python3 tooling/bench-prefill.py --out $W/p --shapes mamba2-2.7b,mamba-2.8b,mamba2-130m --matmul int8 --official-dtypes bf16 --budget 240 \
      --breakdown none --studio-args "${STUDIO_ARGS:-}" 2>&1 | grep -E '^\| |error'
    python3 tooling/bench-17.py --out $W/d --shapes mamba-2.8b,mamba2-130m,mamba-130m --formats f16 --budget 200 --studio-args "${DECODE_ARGS:-}" 2>&1 | grep -E '^\| |error'
    ;;
  4)
    for run in "mamba-130m f16 512 70" "mamba-2.8b f16 256 100" "mamba-2.8b q4_k 256 80 --no-breakdown" "falcon-mamba-7b q4_k 256 120 --no-breakdown"; do
      set -- $run
      timeout "$4" bash -c "$(declare -f bench); bench --shape $1 --weights $2 --prefill 128 --decode $3 --repeats 3 --no-ceilings ${5:-} \
        --decode-xproj separate,folded --out $W/xproj-$1-$2.json" 2>&1 | grep -E '^decode|error'
    done
    for shape in mamba2-2.7b mamba-2.8b; do
      timeout 80 bash -c "$(declare -f bench); bench --shape $shape --weights f16 --prefill 2048 --chunk 256 --decode 8 --repeats 2 --no-ceilings \
        --prefill-matmul int8 --out $W/chunk256-$shape.json" 2>&1 | grep -E '^prefill|error'
    done
    ;;
  5)
    for shape in mamba2-130m mamba-130m; do
      for chunk in 2048 8192; do
        timeout 70 bash -c "$(declare -f bench); bench --shape $shape --weights f16 --prefill 8192 --chunk $chunk --decode 8 --repeats 3 --no-ceilings \
          --prefill-matmul int8 --out $W/chunk$chunk-$shape.json" 2>&1 | grep -E '^prefill|error'
      done
    done
    ;;
  6)
    # The decisions in one call, for a session that may get only one: the fold beside the official
    # decode (mamba-130m, mamba-2.8b f16), then the channel scan and the wide SSD tiles at 2,048.
    python3 tooling/bench-17.py --out $W/d --shapes mamba-130m,mamba-2.8b --formats f16 --budget 300 \
      --studio-args "--decode-xproj separate,folded" 2>&1 | grep -E '^\| |error'
    timeout 90 bash -c "$(declare -f bench); bench --shape mamba-2.8b --weights f16 --prefill 2048 --decode 8 --repeats 2 --no-ceilings \
      --prefill-matmul int8 --prefill-scan parallel,channel --out $W/scan-mamba-2.8b.json" 2>&1 | grep -E '^prefill|error'
    timeout 90 bash -c "$(declare -f bench); bench --shape mamba2-2.7b --weights f16 --prefill 2048 --decode 8 --repeats 2 --no-ceilings \
      --prefill-matmul int8 --ssd-tile narrow,wide --out $W/ssd-tile-mamba2-2.7b.json" 2>&1 | grep -E '^prefill|error'
    ;;
  7)
    # The tensor-core kernels' staging in 16-row blocks (fifteenth session): this build
    # (.devbench/cli.js.xz) against the one before (.devbench/cli-old.js.xz, bench-ab.sh's header),
    # alternated, int8 prefill of 2,048 tokens per kernel; then this build without Dawn's
    # robustness (what is left to it), and the SPIR-V of its tensor-core kernels (a clamped
    # fragment load shows as a select of its stride: `OpSelect %uint ... %uint_20 %uint_8`).
    for round in 1 2; do
      for which in new old; do
        cli=$PWD/.devbench/cli.js.xz; [ $which = old ] && cli=$PWD/.devbench/cli-old.js.xz
        for shape in mamba2-2.7b mamba-2.8b; do
          DEVBENCH_CLI=$cli timeout 60 bash -c "$(declare -f bench); bench --shape $shape --weights f16 --prefill 2048 --decode 8 --repeats 2 --no-ceilings \
            --prefill-matmul int8 --out $W/blocks-$shape-$which-$round.json" 2>&1 | grep -E '^prefill|error' | sed "s/^/$shape $which $round: /"
        done
      done
    done
    timeout 60 bash -c "$(declare -f bench); bench --shape mamba2-2.7b --weights f16 --prefill 2048 --decode 8 --repeats 2 --no-ceilings \
      --prefill-matmul int8 --dawn-features disable_robustness --out $W/blocks-mamba2-2.7b-new-norobust.json" 2>&1 | grep -E '^prefill|error'
    timeout 45 bash -c "$(declare -f bench); bench --int8-gemm --repeats 5 --dawn-features dump_shaders" > $W/dump-blocks.txt 2>&1
    grep -E 'TOPS|FAIL' $W/dump-blocks.txt
    echo "clamped fragment loads (stride selects): $(grep -c 'OpSelect %uint %[0-9]* %uint_20 %uint_8' $W/dump-blocks.txt)"
    xz -9 $W/dump-blocks.txt
    ;;
  8)
    # int8_gemm_big.wgsl (fifteenth session): 64 × 64 of Y a subgroup, one K step a stage — 'quad'
    # (128 × 128 tiles, 4 subgroups) and 'big' (256 × 128, 8) against 'wide': the products alone
    # (with their checks against the CPU), then in the int8 prefill of 2,048 tokens per kernel.
    timeout 90 bash -c "$(declare -f bench); bench --int8-gemm --repeats 10 --out $W/int8-big.json" 2>&1 | grep -E 'TOPS|FAIL|error'
    for shape in mamba2-2.7b mamba-2.8b; do
      timeout 150 bash -c "$(declare -f bench); bench --shape $shape --weights f16 --prefill 2048 --decode 8 --repeats 2 --no-ceilings \
        --prefill-matmul int8 --tc-kernel wide,quad,big --out $W/big-$shape.json" 2>&1 | grep -E '^prefill|error'
    done
    ;;
  9)
    # Mamba-1's channel scan again (fifteenth session): the fourteenth's call measured its kernels
    # at 236 against 467 µs a layer (mamba-2.8b) and its prefill "again at once" 89.9 against
    # 109.0 ms, but the first call in a session 119.6 against 103.2 ms (median of 2). More repeats,
    # both lengths, three Mamba-1 shapes.
    for run in "mamba-2.8b f16 2048,8192 150" "mamba-130m f16 2048,8192 90" "falcon-mamba-7b q4_k 2048 150"; do
      set -- $run
      timeout "$4" bash -c "$(declare -f bench); bench --shape $1 --weights $2 --prefill $3 --decode 8 --repeats 4 --no-ceilings \
        --prefill-matmul int8 --prefill-scan parallel,channel --out $W/scan-$1.json" 2>&1 | grep -E '^prefill|error'
    done
    ;;
  10)
    # An SSD kernel change A/B (the fifteenth session's two-dimensional tiles): this build against
    # .devbench/cli-old.js.xz, mamba2-2.7b int8 @2,048 per kernel; then mode 3 (the official
    # mamba_ssm in the same call) with the build whose chunk_scan + chunk_states were faster.
    # (.devbench/mamba may travel as .devbench/mamba.tar.xz, untarred first, to keep the call's
    # tree under 64 MiB with two CLIs; bench-bundle.sh's header.)
    for round in 1; do
      for which in new old; do
        cli=$PWD/.devbench/cli.js.xz; [ $which = old ] && cli=$PWD/.devbench/cli-old.js.xz
        DEVBENCH_CLI=$cli timeout 60 bash -c "$(declare -f bench); bench --shape mamba2-2.7b --weights f16 --prefill 2048 --decode 8 --repeats 3 --no-ceilings \
          --prefill-matmul int8 --out $W/ssd2d-$which-$round.json" 2>&1 | grep -E '^prefill 2048|error' | sed "s/^/$which $round: /"
      done
    done
    faster=$(python3 -c "
import json
def ssd(w):  # µs a layer of the SSD's two tiled kernels in the breakdown
    ks = json.load(open(f'$W/ssd2d-{w}-1.json'))['kernels']
    return sum(k['microseconds'] / k['count'] for k in ks if k['name'] in ('prefill(2048) ssd.chunk_scan', 'prefill(2048) ssd.chunk_states'))
print('new' if ssd('new') <= ssd('old') else 'old', ssd('new'), ssd('old'), file=__import__('sys').stderr)
print('new' if ssd('new') <= ssd('old') else 'old')")
    echo "faster: $faster"
    [ "$faster" = old ] && export DEVBENCH_CLI=$PWD/.devbench/cli-old.js.xz
    python3 tooling/bench-prefill.py --out $W/p --shapes mamba2-2.7b,mamba-2.8b,mamba2-130m --matmul int8 --official-dtypes bf16 --budget 170 \
      --breakdown none --studio-args "${STUDIO_ARGS:-}" 2>&1 | grep -E '^\| |error'
    python3 tooling/bench-17.py --out $W/d --shapes mamba-2.8b,mamba2-130m,mamba-130m --formats f16 --budget 130 --studio-args "${DECODE_ARGS:-}" 2>&1 | grep -E '^\| |error'
    ;;
  11)
    # Every decode target on an H200 (seventeenth session: the first H200 in five stops): the f16
    # decode beside the official mamba_ssm (mode 3's second half), then issue 17's Q4_K decode at
    # mamba-2.8b (studio only: the official code has no block formats); each result carries
    # decode_step_cpu_ms and decode_step_gpu_ms (is the decode held by its kernels or by the CPU
    # that encodes its steps?), and Mamba-1's x_proj fold beside the separate x_proj (never measured
    # on an H200; on the H100 +20 % and −4 % in two calls at mamba-130m; a Mamba-2 shape runs the
    # same decode twice: the run-to-run spread). ~4.5 minutes; all.tgz after each part (a call cut
    # short still brings back the parts done).
    python3 tooling/bench-17.py --out $W/d --shapes mamba-130m,mamba2-130m,mamba-2.8b --formats f16 --budget 180 --studio-timeout 90 \
      --official-timeout 60 --studio-args "${DECODE_ARGS:---decode-xproj separate,folded}" 2>&1 | grep -E '^\| |error'
    tar czf "${OUT:-bench/out}/all.tgz" -C $W .
    python3 tooling/bench-17.py --out $W/q --shapes mamba-2.8b --formats q4_k --budget 70 --studio-timeout 70 \
      --no-official --studio-args "${DECODE_ARGS:-}" 2>&1 | grep -E '^\| |error'
    ;;
  12)
    # Every prefill target on an H200: mode 3's first half (the int8 prefill beside the official
    # bf16 at 2,048 and 8,192 tokens). ~4 minutes.
    python3 tooling/bench-prefill.py --out $W/p --shapes mamba2-2.7b,mamba-2.8b,mamba2-130m --matmul int8 --official-dtypes bf16 --budget 225 \
      --breakdown none --studio-args "${STUDIO_ARGS:-}" 2>&1 | grep -E '^\| |error'
    ;;
  13)
    # Eighteenth session: the sampler's first stage (sampler_gpu_ms: a sampling's GPU time with the
    # candidates and over the whole vocabulary, the app's settings and greedy; decode_sampled_tok_s
    # beside the greedy decode) and the per-kernel breakdown from end-of-pass timestamps, at the
    # three decode-target shapes beside the official decode (no fold: it lost on the H100); then
    # mamba2-2.7b's decode, never measured by bench-17.py (its official cases need ≥ 90 s each).
    python3 tooling/bench-17.py --out $W/d --shapes mamba-130m,mamba2-130m,mamba-2.8b --formats f16 --budget 200 --studio-timeout 90 \
      --official-timeout 60 2>&1 | grep -E '^\| |error'
    tar czf "${OUT:-bench/out}/all.tgz" -C $W .
    python3 tooling/bench-17.py --out $W/m2 --shapes mamba2-2.7b --formats f16 --budget 250 --studio-timeout 80 \
      --official-timeout 120 2>&1 | grep -E '^\| |error'
    ;;
  14)
    # Eighteenth session, after 13 (whose budget ran out before mamba-2.8b's studio run): mamba-2.8b's
    # f16 and Q4_K decode with the per-kernel breakdown (end-of-pass timestamps), then mode 12.
    timeout 200 bash -c "$(declare -f bench); bench --shape mamba-2.8b --weights f16,q4_k --prefill 16 --chunk 16 --decode 256 --repeats 3 \
      --warmup 1 --no-ceilings --out $W/d/studio-mamba-2.8b.json" 2>&1 | grep -E '^decode|^a sampling|error'
    tar czf "${OUT:-bench/out}/all.tgz" -C $W .
    python3 tooling/bench-prefill.py --out $W/p --shapes mamba2-2.7b,mamba-2.8b,mamba2-130m --matmul int8 --official-dtypes bf16 --budget 225 \
      --breakdown none --studio-args "${STUDIO_ARGS:-}" 2>&1 | grep -E '^\| |error'
    ;;
  15)
    # Eighteenth session, the sampler's short finish (top-p and the pick over the ≤ 256 ids top-k
    # keeps, in workgroup memory): the 130m decode beside the official one (sampler_gpu_ms, the
    # sampled decode), then falcon-mamba-7b's Q4_K decode (issue 17's 400 tok/s target).
    python3 tooling/bench-17.py --out $W/d --shapes mamba-130m,mamba2-130m --formats f16 --budget 170 --studio-timeout 80 \
      --official-timeout 60 2>&1 | grep -E '^\| |error'
    tar czf "${OUT:-bench/out}/all.tgz" -C $W .
    python3 tooling/bench-17.py --out $W/q --shapes falcon-mamba-7b --formats q4_k --budget 100 --studio-timeout 100 \
      --no-official 2>&1 | grep -E '^\| |error'
    ;;
  16)
    # Eighteenth session's last build (the top-k search from the largest block threshold): the
    # sampler's GPU time and the sampled decode at the 130m shapes, f16, studio only (~1 minute).
    for shape in mamba-130m mamba2-130m; do
      timeout 100 bash -c "$(declare -f bench); bench --shape $shape --weights f16 --prefill 16 --chunk 16 --decode 256 --repeats 3 \
        --warmup 1 --no-ceilings --no-breakdown --out $W/d/studio-$shape.json" 2>&1 | grep -E '^decode|^a sampling|error'
    done
    ;;
  17)
    # Nineteenth session: the decode kernels' early loads (--decode-loads, early and late alternated
    # in one process: the step's GPU time decides) at the four decode-target shapes, f16. ~5 minutes.
    for shape in mamba-130m mamba2-130m; do
      timeout 100 bash -c "$(declare -f bench); bench --shape $shape --weights f16 --prefill 16 --chunk 16 --decode 256 --repeats 3 \
        --warmup 1 --no-ceilings --no-breakdown --decode-loads early,late,early,late --out $W/d/loads-$shape.json" 2>&1 | grep -E '^decode|error'
    done
    tar czf "${OUT:-bench/out}/all.tgz" -C $W .
    for shape in mamba-2.8b mamba2-2.7b; do
      timeout 150 bash -c "$(declare -f bench); bench --shape $shape --weights f16 --prefill 16 --chunk 16 --decode 256 --repeats 3 \
        --warmup 1 --no-ceilings --no-breakdown --decode-loads early,late --out $W/d/loads-$shape.json" 2>&1 | grep -E '^decode|error'
      tar czf "${OUT:-bench/out}/all.tgz" -C $W .
    done
    ;;
  18)
    # Nineteenth session: the int8 products' 'direct' tensor-core kernel (fragments loaded from the
    # buffers, not staged) beside 'wide', alone (--int8-gemm) and in the 2,048-token prefill of
    # mamba2-2.7b; then the pipelined decode's depth (--decode-depth 3,6: samplings in flight) at
    # the 130m shapes, where a token is ~8 % longer than its step's GPU time. ~8 minutes.
    timeout 150 bash -c "$(declare -f bench); bench --int8-gemm --out $W/p/int8-gemm.json" 2>&1 | grep -E 'TOPS|FAIL|error' | head -40
    tar czf "${OUT:-bench/out}/all.tgz" -C $W .
    timeout 200 bash -c "$(declare -f bench); bench --shape mamba2-2.7b --weights f16 --prefill 2048 --decode 8 --repeats 2 --no-ceilings \
      --prefill-matmul int8 --tc-kernel wide,direct --out $W/p/tc-mamba2-2.7b.json" 2>&1 | grep -E '^prefill|error'
    tar czf "${OUT:-bench/out}/all.tgz" -C $W .
    for shape in mamba-130m mamba2-130m; do
      timeout 90 bash -c "$(declare -f bench); bench --shape $shape --weights f16 --prefill 16 --chunk 16 --decode 256 --repeats 3 \
        --warmup 1 --no-ceilings --no-breakdown --decode-depth 3,6,3,6 --out $W/d/depth-$shape.json" 2>&1 | grep -E '^decode|error'
    done
    ;;
  19)
    # Nineteenth session: the pipelined decode's steps a command buffer (--decode-batch 1,2,4: one
    # submit a batch; the depth twice the batch), alternated, at the 130m shapes and mamba-2.8b, f16.
    for shape in mamba-130m mamba2-130m; do
      timeout 120 bash -c "$(declare -f bench); bench --shape $shape --weights f16 --prefill 16 --chunk 16 --decode 256 --repeats 3 \
        --warmup 1 --no-ceilings --no-breakdown --decode-batch 1,2,4,1,2,4 --out $W/d/batch-$shape.json" 2>&1 | grep -E '^decode|error'
      tar czf "${OUT:-bench/out}/all.tgz" -C $W .
    done
    timeout 200 bash -c "$(declare -f bench); bench --shape mamba-2.8b --weights f16 --prefill 16 --chunk 16 --decode 256 --repeats 3 \
      --warmup 1 --no-ceilings --no-breakdown --decode-batch 1,2,4 --out $W/d/batch-mamba-2.8b.json" 2>&1 | grep -E '^decode|error'
    ;;
  20)
    # Nineteenth session's last call: --decode-batch 1,2 alternated twice at mamba2-130m and
    # mamba-2.8b (mode 19's host was CPU-bound), then the official decode beside the studio's at the
    # two shapes mode 13's budget left out (official cases ≥ 120 s: a slow host's Triton build).
    for shape in mamba2-130m mamba-2.8b; do
      timeout 120 bash -c "$(declare -f bench); bench --shape $shape --weights f16 --prefill 16 --chunk 16 --decode 256 --repeats 3 \
        --warmup 1 --no-ceilings --no-breakdown --decode-batch 1,2,1,2 --out $W/d/batch2-$shape.json" 2>&1 | grep -E '^decode|error'
      tar czf "${OUT:-bench/out}/all.tgz" -C $W .
    done
    python3 tooling/bench-17.py --out $W/o --shapes mamba2-130m,mamba-2.8b --formats f16 --budget 330 --studio-timeout 90 \
      --official-timeout 120 2>&1 | grep -E '^\| |error'
    ;;
  21)
    # Nineteenth session: mamba-130m's decode beside the official one (mode 13's host was
    # CPU-bound), then the Q4_K decodes of issue 17 (mamba-2.8b, falcon-mamba-7b), studio only.
    python3 tooling/bench-17.py --out $W/o130 --shapes mamba-130m --formats f16 --budget 150 --studio-timeout 60 \
      --official-timeout 70 2>&1 | grep -E '^\| |error'
    tar czf "${OUT:-bench/out}/all.tgz" -C $W .
    python3 tooling/bench-17.py --out $W/q --shapes mamba-2.8b,falcon-mamba-7b --formats q4_k --budget 200 --studio-timeout 100 \
      --no-official 2>&1 | grep -E '^\| |error'
    ;;
  *)
    echo "usage: bash tooling/bench-next.sh 1|2|3|4|5|6|7|8|9|10|11|12|13|14|15|16|17|18|19|20|21" >&2
    exit 2
    ;;
esac
tar czf "${OUT:-bench/out}/all.tgz" -C $W .
