#!/usr/bin/env bash
# A/B benchmark on the GPU machine, in one device session: the CLI built from this tree
# (.devbench/cli.js.xz, by tooling/bench-bundle.sh) and another build (.devbench/cli-old.js.xz, e.g.
# `git worktree add ../old <rev> && (cd ../old && npm run build:cli) && xz -9e -c ../old/dist/cli/cli.js
# > .devbench/cli-old.js.xz`), alternated ROUNDS times per shape so that drift in the machine's state
# hits both alike. Writes $OUT/<shape>-<which>-<round>.json. On the device (after the Vulkan
# loader setup of bench-bundle.sh's header):
#   bash tooling/bench-ab.sh "mamba-130m mamba2-130m" 2 "--prefill 512,2048,8192 --decode 256"
set -euo pipefail
shapes=${1:-mamba-130m}
rounds=${2:-2}
extra=${3:-}
for shape in $shapes; do
  for round in $(seq 1 "$rounds"); do
    for which in new old; do
      cli=$PWD/.devbench/cli.js.xz
      [ "$which" = old ] && cli=$PWD/.devbench/cli-old.js.xz
      echo "== $shape $which round $round"
      # shellcheck disable=SC2086
      DEVBENCH_CLI="$cli" python3 .devbench/run.py bench --shape "$shape" --no-ceilings --no-breakdown $extra --out "$OUT/$shape-$which-$round.json" 2>&1 | grep -E 'prefill|decode|error' || true
    done
  done
done
