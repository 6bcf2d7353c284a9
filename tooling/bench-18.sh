#!/usr/bin/env bash
# Issue 18's trace targets on the GPU machine in ONE device call: `bench --trace` (app/bench/trace-bench.ts)
# at the mamba-130m shape over 131,072 tokens, the bundled shakespeare-byte model over 1,000,000
# bytes, and the mamba-2.8b shape (f16) for the live trace's decode overhead. Writes
# $OUT/trace-<name>.json and $OUT/bench18.log.
#
# Before the call, here: bash tooling/bench-bundle.sh
# The device call: carry [".devbench", ".gl"], command `bash tooling/bench-18.sh [130m] [bytes] [2.8b]`
# (RUN_TIMEOUT: seconds per run, default 270).
set -u
cd "$(dirname "$0")/.."
. tooling/device-env.sh
OUT="${OUT:-bench/out/bench18}"
mkdir -p "$OUT"
run() { # name, then bench arguments
  local name=$1; shift
  echo "== $name: bench $*" | tee -a "$OUT/bench18.log"
  timeout "${RUN_TIMEOUT:-270}" python3 .devbench/run.py bench --no-ceilings --no-breakdown --repeats 3 "$@" --out "$OUT/trace-$name.json" 2>&1 | tail -8 | tee -a "$OUT/bench18.log"
}
# Which runs (default all three; a device call is at most 10 minutes, so split them if needed).
[ $# -gt 0 ] || set -- 130m bytes 2.8b
for which in "$@"; do
  case $which in
    130m) run mamba-130m --shape mamba-130m --prefill 2048 --decode 1024 --trace "${TRACE_130M:-131072}" ;;
    bytes) run shakespeare-byte --model resources/models/shakespeare-byte --prefill 2048 --decode 256 --trace "${TRACE_BYTES:-1000000}" ;;
    2.8b) run mamba-2.8b --shape mamba-2.8b --weights f16 --prefill 2048 --decode 512 --trace "${TRACE_2P8B:-16384}" ;;
    *) echo "unknown run $which (130m, bytes, 2.8b)"; exit 2 ;;
  esac
done
