#!/usr/bin/env bash
# The built-in model's GPU recipe, as run on a lent H100 (see MODEL_CARD.md): the base transformer
# from scratch on streamed clips, exported in place; then turbo pairs and student from it.
# Needs the carried wheels and text encoder (scripts/carry_text_encoder.py) in .carry/.
# CONFIGS (default configs) and OUT (where the results are copied) may be set.
set -o pipefail
CONFIGS=${CONFIGS:-configs}
OUT=${OUT:-out_gpu}
mkdir -p "$OUT"
source scripts/gpu_env.sh
nvidia-smi --query-gpu=name,memory.total --format=csv 2>/dev/null
date
rf train --config "$CONFIGS/builtin_gpu.json" --log "$OUT/train.log" || exit 1
half_copy runs/transformer_gpu/ema.safetensors src/reelforge/weights/builtin/transformer.safetensors || exit 1
cp src/reelforge/weights/builtin/transformer.safetensors src/reelforge/weights/builtin/transformer.json "$OUT/"
date
rf train --config "$CONFIGS/turbo_pairs_gpu.json" --log "$OUT/train.log" || exit 1
rf train --config "$CONFIGS/turbo_student_gpu.json" --log "$OUT/train.log" || exit 1
rf export-turbo --transformer runs/turbo_gpu/ema.safetensors --steps 4 || exit 1
mkdir -p "$OUT/turbo"
cp src/reelforge/weights/builtin/turbo/* "$OUT/turbo/"
date
