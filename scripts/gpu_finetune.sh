#!/usr/bin/env bash
# One transformer run on a lent GPU whose time may be cut short: the run's EMA is exported as fp16
# safetensors to OUT every EXPORT_EVERY seconds while it trains, so whatever the machine finishes
# comes back; the run itself stops after LIMIT seconds at the latest (its time_budget_s should end it first).
#   bash scripts/gpu_finetune.sh configs/builtin_stage10.json
set -o pipefail
CONFIG=${1:?usage: gpu_finetune.sh CONFIG}
OUT=${OUT:-out_gpu}
LIMIT=${LIMIT:-500}
EXPORT_EVERY=${EXPORT_EVERY:-40}
mkdir -p "$OUT"
source scripts/gpu_env.sh
RUN_DIR=$(python3 -c "import json, sys; print(json.load(open(sys.argv[1]))['run_dir'])" "$CONFIG") || exit 1
export_ema() {
  [ -f "$RUN_DIR/ema.safetensors" ] && half_copy "$RUN_DIR/ema.safetensors" "$OUT/transformer.safetensors"
}
nvidia-smi --query-gpu=name,memory.total --format=csv 2>/dev/null
date
timeout "$LIMIT" "${RF[@]}" train --config "$CONFIG" --log "$OUT/train.log" &
train=$!
while kill -0 "$train" 2>/dev/null; do
  sleep "$EXPORT_EVERY"
  kill -0 "$train" 2>/dev/null && export_ema
done
wait "$train"; status=$?
export_ema
date
exit $status
