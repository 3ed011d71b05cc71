#!/usr/bin/env bash
# One GPU lease (about 9 minutes of a 15-minute budget): continue the default maze model from
# models/maze on data/maze for MINUTES with a cosine schedule that ends with the time, measure the
# result for its model card on the GPU, then run the engine benchmark on the GPU.
# Needs data/maze (make data-maze). Everything that comes back is in ${OUT:-gpu-out}/results.tar.gz.
#   MINUTES=6.5 BATCH=512 scripts/gpu-maze-continue.sh
# Tried on CPU first with MINUTES=0.2 BATCH=16 CARD_LIMIT=40 ENGINE_N=24 THREADS=2 EVAL_SAMPLES=20.
set -u
OUT=${OUT:-gpu-out}
MINUTES=${MINUTES:-6.5}
BATCH=${BATCH:-512}
RUN=${RUN:-runs/maze-gpu-continue}
CARD_LIMIT=${CARD_LIMIT:-}
ENGINE_N=${ENGINE_N:-192}
THREADS=${THREADS:-8}
INIT=${INIT:-models/maze}
LR=${LR:-1e-3}
ENGINE=${ENGINE:-1}  # 0: skip the engine benchmark
EVAL_SAMPLES=${EVAL_SAMPLES:-400}
DEVICE=$(python3 -c 'import torch; print("cuda" if torch.cuda.is_available() else "cpu")' 2>/dev/null || echo cpu)
mkdir -p "$OUT" "$RUN"
export PYTHONPATH=src:client/src${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 TRM_PROGRESS=0
PY=${PYTHON:-python3}
{ nvidia-smi --query-gpu=name,memory.total --format=csv 2>/dev/null || echo "no GPU"; $PY -c 'import torch; print("torch", torch.__version__)'; } | tee "$RUN/machine.txt"

# the eval inside training stays small (400 mazes); the card below measures all 2000 test mazes
timeout $((${MINUTES%.*} * 60 + 150)) $PY -m trm.cli train --config configs/maze.yaml out="$RUN" init_from="$INIT" lr="$LR" \
    batch_size="$BATCH" threads="$THREADS" dtype=auto time_limit_minutes="$MINUTES" schedule=cosine min_lr_ratio=0.05 \
    warmup_steps=50 eval_every=2500 eval_samples="$EVAL_SAMPLES" ckpt_every=1000 > "$RUN/train.log" 2>&1
echo "train exit $?"; tail -n 9 "$RUN/train.log"

timeout 75 $PY bench/card.py --model "$RUN" --data data/maze/test --threshold 0.0 --latency-n 30 --device "$DEVICE" \
    ${CARD_LIMIT:+--limit $CARD_LIMIT} --out "$RUN/card-$DEVICE.json" > "$RUN/card.txt" 2>&1
echo "card exit $?"; tail -n 8 "$RUN/card.txt"

[ "$ENGINE" = 1 ] && timeout 90 $PY bench/engine.py --model models/sudoku --device "$DEVICE" --n "$ENGINE_N" --rounds 3 --threads "$THREADS" \
    --out "$RUN/engine-$DEVICE.json" > "$RUN/engine.txt" 2>&1
echo "engine exit $?"; tail -n 30 "$RUN/engine.txt" 2>/dev/null

tar czf "$OUT/results.tar.gz" "$RUN"/{model.safetensors,config.json,metrics.jsonl,train.log,machine.txt,card.txt,engine.txt} \
    "$RUN"/*.json 2>/dev/null
ls -la "$OUT"
