#!/usr/bin/env bash
# Runs the built CLI through Dawn on the GPU machine over the issue-16 and issue-22 fixtures (Falcon-Mamba,
# Mamba-2 with 8 groups, mamba_ssm / Codestral, PyTorch .bin) and compares its trace and greedy
# output with each fixture's golden.safetensors. Needs `bash tooling/bench-bundle.sh` first; the
# device call carries .devbench and .gl. Prints one line per case; writes $OUT/h200-check.json.
set -u
. tooling/device-env.sh
python3 tooling/device-golden-check.py
rm -f "$OUT"/*.trace.safetensors
