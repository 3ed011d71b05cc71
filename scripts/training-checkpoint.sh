#!/usr/bin/env bash
# Carry a CPU training run across sessions (a session's machine may not come back).
#
#   scripts/training-checkpoint.sh save TASK     # stop runs/TASK's trainer (SIGTERM: it checkpoints at
#                                                # the step reached), copy its state to checkpoints/TASK/
#   scripts/training-checkpoint.sh resume TASK   # rebuild the config's data if missing (deterministic: the
#                                                # sha256 in its meta.json must match), restore the state
#                                                # into runs/TASK, continue in the background (logs/)
#
# checkpoints/TASK/ is committed: weights, optimizer, EMA, the slots' carry, the data stream position
# and every RNG (`trm train --resume` continues exactly where the run stopped).
set -euo pipefail
cd "$(dirname "$0")/.."
cmd=${1:?usage: $0 save|resume TASK}
task=${2:?usage: $0 save|resume TASK}
run=runs/$task
keep=checkpoints/$task
# the run's data directory, from its config (configs/TASK.yaml: `data:`)
data=$(.venv/bin/python -c "import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))['data'])" "configs/$task.yaml")
case $cmd in
  save)
    pid=$(pgrep -f "trm train --config configs/$task.yaml" | head -1 || true)
    if [ -n "$pid" ]; then
      kill -TERM "$pid"
      while kill -0 "$pid" 2>/dev/null; do sleep 1; done
    fi
    test -f "$run/train_state.json" || { echo "$run has no train_state.json to save" >&2; exit 1; }
    mkdir -p "$keep"
    cp "$run"/train_state.safetensors "$run"/train_state.json "$run"/model.safetensors "$run"/config.json "$run"/metrics.jsonl "$keep"/
    sha=$(python3 -c "import json; print(json.load(open('$data/train/meta.json'))['sha256'])")
    echo "$sha" > "$keep/data.sha256"
    echo "saved step $(python3 -c "import json; print(json.load(open('$run/train_state.json'))['step'])") of $task to $keep"
    ;;
  resume)
    test -f "$keep/train_state.json" || { echo "no $keep/train_state.json" >&2; exit 1; }
    test -f "$data/train/meta.json" || make "data-$(basename "$data")"
    sha=$(python3 -c "import json; print(json.load(open('$data/train/meta.json'))['sha256'])")
    [ "$sha" = "$(cat "$keep/data.sha256")" ] || { echo "$data differs from the data the run trained on (sha256)" >&2; exit 1; }
    mkdir -p "$run" logs
    cp "$keep"/* "$run"/
    nohup .venv/bin/trm train --config "configs/$task.yaml" --resume >> "logs/train-$task.log" 2>&1 &
    echo "resumed $task (pid $!), logging to logs/train-$task.log and $run/metrics.jsonl"
    ;;
  *) echo "usage: $0 save|resume TASK" >&2; exit 2 ;;
esac
