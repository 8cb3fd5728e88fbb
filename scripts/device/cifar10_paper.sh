#!/usr/bin/env bash
# ablations/cifar10_paper.yaml on one GPU: CE | LA loss | ELM x seeds 0 1 2, all nine runs at once, with elm.train
# (the same fit loop every platform trial runs; no Ray, Optuna or MLflow needed on the GPU machine).
#
# Here, before the device call (see ../shared/device/README.md):
#     echo /.device/ >> .git/info/exclude
#     python3 ../shared/device/pack_cifar10_lt.py --src ../shared/data --out .device
# Device call (carry [".device"], timeout well inside the time left):
#     bash scripts/device/cifar10_paper.sh
# Dry run of the script itself on a CPU (nine processes at once: 17 min on 2 busy cores):
#     PYTHON=.venv/bin/python OUT=/tmp/dry EPOCHS=1 \
#       EXTRA="train.max_steps_per_epoch=2 optim.warmup_epochs=0 optim.milestones=[]" bash scripts/device/cifar10_paper.sh
# It writes to $OUT: gpu_runs.csv (one row per run: final test metrics), machine.txt (GPU, versions, wall seconds
# for all runs), logs.tar.xz (logs, metrics.jsonl and final.json of every run). Exit status 1 when a run did not
# finish (gpu_runs.csv lists it with finished False).
set -uo pipefail
OUT=${OUT:-out/cifar10_paper_gpu}
EPOCHS=${EPOCHS:-200}
EXTRA=${EXTRA:-}  # more KEY=VALUE overrides, space-separated
PY=${PYTHON:-python3}  # here: PYTHON=.venv/bin/python
extra=(); for kv in $EXTRA; do extra+=(--set "$kv"); done
# A fresh start: runs left by an earlier call (a dry run carried along in .device, or a call cut off by its timeout)
# would otherwise be read as this call's results (elm.train keeps an old final.json and appends to metrics.jsonl).
rm -rf .device/runs .device/logs
mkdir -p "$OUT" .device/data .device/runs .device/logs
[ -d .device/data/cifar-10-batches-py ] || tar -xJf .device/cifar10_lt.tar.xz -C .device/data
export PYTHONUNBUFFERED=1
(nvidia-smi -L; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; "$PY" -c \
  "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)") > "$OUT/machine.txt" 2>&1
declare -A LOSS=(
  [ce]="{name: cross_entropy}"
  [logit_only]="{name: logit_adjusted, tau: 1.0}"
  [elm]="{name: elm, tau: 1.0, lam: 0.4626, margin: 0.0101, temperature: 0.0611}"
)
start=$(date +%s)
for v in ce logit_only elm; do
  for s in 0 1 2; do
    "$PY" -m elm.train ablations/cifar10_paper.yaml --no-progress --out ".device/runs/$v-$s" \
      --set data.root=.device/data --set data.download=false --set "loss=${LOSS[$v]}" --set seed=$s \
      --set optim.epochs="$EPOCHS" "${extra[@]}" > ".device/logs/$v-$s.log" 2>&1 &
  done
done
wait
echo "all runs ended after $(( $(date +%s) - start )) s" | tee -a "$OUT/machine.txt"
"$PY" - "$OUT/gpu_runs.csv" <<'PY'
import csv, json, sys
from pathlib import Path
keys = ["test/balanced_acc", "test/acc_many", "test/acc_medium", "test/posthoc_tau1/balanced_acc", "test/ece"]
rows = []
for log in sorted(Path(".device/logs").glob("*.log")):  # one per launched run, even one that failed to start
    run = Path(".device/runs") / log.stem
    variant, seed = run.name.rsplit("-", 1)
    final = run / "final.json"
    lines = (run / "metrics.jsonl").read_text().splitlines() if (run / "metrics.jsonl").exists() else []
    last = json.loads(lines[-1]) if lines else {}
    m = json.loads(final.read_text()) if final.exists() else {}
    rows.append({"variant": variant, "seed": seed, "finished": final.exists(), "epochs": last.get("epoch"),
                 **{k: m.get(k, "") for k in keys}})
if not rows:
    sys.exit("no runs under .device/logs")
with open(sys.argv[1], "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=list(rows[0]))
    w.writeheader()
    w.writerows(rows)
print(open(sys.argv[1]).read())
unfinished = [f"{r['variant']}-{r['seed']}" for r in rows if not r["finished"]]
if unfinished:
    sys.exit(f"not finished: {' '.join(unfinished)} (see their logs in logs.tar.xz)")
PY
status=$?
tar -cJf "$OUT/logs.tar.xz" .device/logs .device/runs/*/metrics.jsonl .device/runs/*/final.json 2>/dev/null
exit $status
