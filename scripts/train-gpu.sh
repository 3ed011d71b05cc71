#!/usr/bin/env bash
# One GPU session (about 8 minutes): three runs side by side on one GPU, then their model-card
# measurements on the GPU. What the models/*/README.md cards quote as "GPU" comes from this script.
#   maze-gpu      configs/maze-gpu.yaml, from scratch (hidden 256, T=3 n=4)
#   maze-cont     configs/maze.yaml continued from models/maze (the CPU curriculum model) on full mazes
#   sudoku-paper  configs/sudoku-paper.yaml (5M parameters, the paper's size)
# Needs data/maze and data/sudoku (make data-maze data-sudoku). Results go to ${OUT:-gpu-out}.
set -u
OUT=${OUT:-gpu-out}
mkdir -p "$OUT" runs
export PYTHONPATH=src:client/src${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 TRM_PROGRESS=0
PY=${PYTHON:-python3}
nvidia-smi --query-gpu=name,memory.total --format=csv | tee "$OUT/gpu.txt"
$PY -m trm.cli train --config configs/maze-gpu.yaml > runs/maze-gpu.log 2>&1 &
$PY -m trm.cli train --config configs/maze.yaml out=runs/maze-cont init_from=models/maze batch_size=256 \
    threads=4 dtype=auto time_limit_minutes=5.5 eval_every=1000 eval_samples=400 > runs/maze-cont.log 2>&1 &
$PY -m trm.cli train --config configs/sudoku-paper.yaml > runs/sudoku-paper.log 2>&1 &
wait
for run in maze-gpu maze-cont; do
  timeout 50 $PY bench/card.py --model runs/$run --data data/maze/test --threshold 0.0 --latency-n 30 --device cuda \
      --out runs/$run/card-cuda.json > runs/$run/card.txt 2>&1
done
timeout 50 $PY bench/card.py --model runs/sudoku-paper --data data/sudoku/test --latency-n 30 --device cuda \
    --out runs/sudoku-paper/card-cuda.json > runs/sudoku-paper/card.txt 2>&1
timeout 35 $PY bench/card.py --model models/sudoku --data data/sudoku/test --latency-n 30 --device cuda \
    --out runs/card-sudoku-default-cuda.json > runs/card-sudoku-default.txt 2>&1
# Weights of the small models come back; the 5M Sudoku model's (19 MB) do not: its card numbers do.
tar czf "$OUT/results.tar.gz" runs/*.log runs/*.txt runs/*.json \
    runs/maze-gpu/{model.safetensors,config.json,metrics.jsonl,card.txt,card-cuda.json} \
    runs/maze-cont/{model.safetensors,config.json,metrics.jsonl,card.txt,card-cuda.json} \
    runs/sudoku-paper/{config.json,metrics.jsonl,card.txt,card-cuda.json}
ls -la "$OUT"; tail -n 12 runs/*.log runs/*/card.txt runs/*.txt
