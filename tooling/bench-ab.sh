#!/usr/bin/env bash
# A/B benchmark on the GPU machine, in one device session: the CLI built from this tree
# (.devbench/cli.js, by tooling/bench-bundle.sh) and another build (.devbench/cli-old.js, e.g.
# `git worktree add ../old <rev> && (cd ../old && npm run build:cli) && cp ../old/dist/cli/cli.js
# .devbench/cli-old.js`), alternated ROUNDS times per shape so that drift in the machine's state
# hits both alike. Writes $OUT/<shape>-<which>-<round>.json. On the device (after the Vulkan
# loader setup of bench-bundle.sh's header):
#   bash tooling/bench-ab.sh "mamba-130m mamba2-130m" 2 "--prefill 512,2048,8192 --decode 256"
set -euo pipefail
shapes=${1:-mamba-130m}
rounds=${2:-2}
extra=${3:-}
python3 .devbench/run.py gpu >/dev/null # unpacks node and Dawn into /tmp/devbench
for shape in $shapes; do
  for round in $(seq 1 "$rounds"); do
    for which in new old; do
      cli=.devbench/cli.js
      [ "$which" = old ] && cli=.devbench/cli-old.js
      cp "$cli" /tmp/devbench/dist/cli/cli.js
      echo "== $shape $which round $round"
      # shellcheck disable=SC2086
      (cd /tmp/devbench && ./node dist/cli/cli.js bench --shape "$shape" --no-ceilings --no-breakdown $extra --out "$OUT/$shape-$which-$round.json") 2>&1 | grep -E 'prefill|decode|error' || true
    done
  done
done
