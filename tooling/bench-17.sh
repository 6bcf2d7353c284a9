#!/usr/bin/env bash
# Issue 17's decode targets on the GPU machine in ONE device call (≤ 10 min): the studio's bench at
# the mamba-2.8b, mamba2-2.7b and falcon-mamba-7b shapes (f16, q8_0, q4_k; q4_k_m too for
# falcon-mamba-7b) and the official mamba_ssm (fp32, bf16) at the first two, one after the other;
# tooling/bench-17.py says how each is measured. Writes $OUT/bench17.{json,md,log} and
# $OUT/studio-<shape>.json.
#
# Before the call, here (the mamba_ssm source from the stored mirror; v2.3.2 as in bench/RESULTS.md):
#   bash tooling/bench-bundle.sh
#   mkdir -p .devbench/mamba && git --git-dir=/work/.mirror/state-spaces+mamba/repo archive v2.3.2 mamba_ssm | tar -x -C .devbench/mamba
# The device call: carry [".devbench", ".gl"], command `bash tooling/bench-17.sh`.
# MAMBA_SSM_SRC overrides the folder put on PYTHONPATH; extra arguments go to bench-17.py
# (e.g. --shapes mamba-2.8b --budget 300).
set -u
cd "$(dirname "$0")/.."
. tooling/device-env.sh
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
python3 tooling/bench-17.py --out "${OUT:-bench/out/bench17}" "$@"
