#!/usr/bin/env bash
# Re-makes the outputs of scripts/ on one GPU machine (an H200).
# usage (from the repository root): bash scripts/device_run.sh DATA_DIR [LOG_DIR]
#   DATA_DIR holds tinyshakespeare.txt and gpt-neox-20b-tokenizer.json (../shared/data here).
# Env: STAGES   which parts, default "golden shakespeare copy"; the trainings run at the same
#               time on the one GPU and slow each other down a lot; the committed models were made
#               as STAGES="golden shakespeare" (~5.5 min), then selective-copy alone in two stages
#               (see scripts/README.md: one 400 s run reached 97.4%, a second --init-from run 99.86%),
#      SHAKESPEARE_SECONDS (default 300), COPY_SECONDS (default 400): training budgets,
#      SHAKESPEARE_ARGS, COPY_ARGS: extra arguments (e.g. small sizes for a dry run on a CPU).
set -uo pipefail
DATA=${1:?usage: scripts/device_run.sh DATA_DIR [LOG_DIR]}
LOGS=${2:-/tmp/mamba-studio-logs}
STAGES=" ${STAGES:-golden shakespeare copy} "
mkdir -p "$LOGS"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_HUB_DISABLE_PROGRESS_BARS=1
python3 -c 'import torch, transformers, tokenizers, safetensors, numpy; print("torch", torch.__version__, "cuda", torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else "-", "| transformers", transformers.__version__, "| tokenizers", tokenizers.__version__, "| safetensors", safetensors.__version__, "| numpy", numpy.__version__)'

status=0
pids=()
if [[ $STAGES == *" copy "* ]]; then
  python3 scripts/train/train_selective_copy.py --time-budget "${COPY_SECONDS:-400}" ${COPY_ARGS:-} >"$LOGS/selective-copy.log" 2>&1 &
  pids+=($!)
fi
if [[ $STAGES == *" shakespeare "* ]]; then
  python3 scripts/train/train_shakespeare.py --data "$DATA/tinyshakespeare.txt" --time-budget "${SHAKESPEARE_SECONDS:-300}" ${SHAKESPEARE_ARGS:-} >"$LOGS/shakespeare.log" 2>&1 &
  pids+=($!)
fi
if [[ $STAGES == *" golden "* ]]; then
  python3 scripts/golden/make_golden.py --threads 4 >"$LOGS/golden.log" 2>&1 || { echo "golden FAILED"; status=1; }
  grep -a -v "falling back" "$LOGS/golden.log" | tail -n 20
  python3 scripts/golden/make_tokenizer_golden.py "$DATA/gpt-neox-20b-tokenizer.json" >"$LOGS/tokenizer.log" 2>&1 || { echo "tokenizer FAILED"; status=1; }
  tail -n 1 "$LOGS/tokenizer.log"
fi
for p in "${pids[@]}"; do wait "$p" || { echo "training pid $p FAILED"; status=1; }; done
for f in "$LOGS/selective-copy.log" "$LOGS/shakespeare.log"; do
  [ -f "$f" ] && { echo "== $f"; grep -a -v "falling back" "$f" | tail -n 16; }
done
exit $status
