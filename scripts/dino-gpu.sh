#!/usr/bin/env bash
# DINO's long schedules on a lent GPU machine (one NVIDIA GPU, PyTorch 2 with CUDA in python3, no Node.js), run from
# the repository root, all at once in the background: PyTorch runs of configs/dino-fashion-mnist-long.json's recipe
# (scripts/dino-torch-reference.py --device cuda) over 50 and 100 epochs (11,700 and 23,400 steps: 234 full batches
# of 128 per epoch of the 30,000 images of classes 0-4; warm-ups in proportion, as the script derives them from
# --schedule), and, with BUNDLE, the engine's own `pretrain` of ENGINE_CONFIG through the portable bundle
# (scripts/portable-bundle.sh; --system-gl installs the bundled Vulkan loader and glvnd into /, as NVIDIA's driver
# needs there). The default, configs/dino-fashion-mnist-50ep-grid.json, cuts its crops as the PyTorch runs do (grid
# sampling, in JS): the engine against PyTorch crop for crop, and no call into sharp, so a bundle slimmed of libvips
# (sharp stubbed) runs it; a config resizing with libvips (no `"resampler": "pil"`) needs the full bundle. A small model's step is bound by the host's kernel launches, so the runs share the
# GPU well: one process each, one CPU thread each. A queued run starts when a run finishes, if the finished run's pace
# says it can complete in the time left. At MINUTES the runs still going are stopped; each has left its curve.
#
#   DATA=DIR OUT=DIR [BUNDLE=DIR] [MINUTES=8] [RUNS=...] [QUEUE=...] [ENGINE_CONFIG=FILE] [WORK=DIR] scripts/dino-gpu.sh
#
# DATA: the Fashion-MNIST IDX files (classes 0-4 are enough: scripts/fashion-mnist-subset.py). RUNS (started at once)
# and QUEUE: PyTorch runs as NAME:STEPS:SEED, the schedule spanning STEPS. The runs write into WORK (default a new
# folder under /tmp); OUT gets three files, since a lent machine hands back few: dino-gpu.tgz (all of WORK, packed
# again every 30 s, so that a command stopped from outside still leaves its curves), status.txt (the runs' progress
# every 30 s) and summary.csv (per run: steps done, seconds, steps/s, the last and best k-NN). In the archive:
#   NAME.log, NAME.json     a PyTorch run's output and its k-NN curve (rewritten after each score, every 500 steps)
#   engine.log, engine/     the engine's output (a k-NN line every 1,000 steps) and its run folder (metrics,
#                           last.safetensors every 500 steps: `pretrain` resumes from it with the same data)
#   engine-config.json, engine-info.txt   the engine's config with DATA as its roots; `info` (the adapter)
#   torch.txt, nvidia-smi.txt, gpu.csv    versions and the device; nvidia-smi with the runs going; GPU use every 10 s
set -uo pipefail
cd "$(dirname "$0")/.."
: "${DATA:?DATA: the folder of the Fashion-MNIST IDX files}" "${OUT:?OUT: the folder for the results}"
MINUTES=${MINUTES:-8}
RUNS=${RUNS:-torch-100ep-s0:23400:0 torch-50ep-s0:11700:0 torch-50ep-s1:11700:1}
QUEUE=${QUEUE:-torch-100ep-s1:23400:1}
ENGINE_CONFIG=${ENGINE_CONFIG:-configs/dino-fashion-mnist-50ep-grid.json}
DEVICE=${DEVICE:-cuda} # cpu: a dry run of this script on a machine without a GPU
[ -d "$DATA" ] || { echo "dino-gpu: DATA=$DATA is not a folder" >&2; exit 2; }
mkdir -p "$OUT"
DATA=$(cd "$DATA" && pwd)
OUT=$(cd "$OUT" && pwd)
WORK=${WORK:-$(mktemp -d /tmp/dino-gpu.XXXXXX)}
mkdir -p "$WORK"
start=$(date +%s)
deadline=$((start + $(awk -v m="$MINUTES" 'BEGIN { printf "%d", m * 60 }')))
log() { echo "dino-gpu +$(($(date +%s) - start))s: $*" | tee -a "$OUT/status.txt"; }
pack() { # a file may change while tar reads it: the next pack has it
  tar -C "$WORK" -czf "$OUT/dino-gpu.tgz.part" . 2>/dev/null
  mv "$OUT/dino-gpu.tgz.part" "$OUT/dino-gpu.tgz"
}

{ python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.is_available() and torch.cuda.get_device_name(0))'; nproc; } >"$WORK/torch.txt" 2>&1
nvidia-smi --query-gpu=timestamp,name,utilization.gpu,memory.used,power.draw --format=csv -l 10 >"$WORK/gpu.csv" 2>&1 &
sampler=$!

declare -A pid_of steps_of began ended
torch_run() { # NAME:STEPS:SEED
  local name steps seed
  IFS=: read -r name steps seed <<<"$1"
  python3 scripts/dino-torch-reference.py "$steps" --schedule "$steps" --seed "$seed" --device "$DEVICE" --threads 1 \
    --knn-every 500 --data "$DATA" --out "$WORK/$name.json" >"$WORK/$name.log" 2>&1 &
  pid_of[$name]=$!
  steps_of[$name]=$steps
  began[$name]=$(date +%s)
  log "started $name ($steps steps, seed $seed, pid $!)"
}
for run in $RUNS; do torch_run "$run"; done

if [ -n "${BUNDLE:-}" ]; then
  python3 - "$ENGINE_CONFIG" "$DATA" "$WORK/engine-config.json" <<'PY'
import json, sys
config, root, out = sys.argv[1:]
c = json.load(open(config))
for spec in (c["data"], c["knn"]["bank"], c["knn"]["queries"]):
    spec["root"] = root
json.dump(c, open(out, "w"), indent=1)
PY
  "$BUNDLE/run" --system-gl info >"$WORK/engine-info.txt" 2>&1 || log "the bundle's info failed (engine-info.txt)"
  "$BUNDLE/run" pretrain --config "$WORK/engine-config.json" --out "$WORK/engine" >"$WORK/engine.log" 2>&1 &
  pid_of[engine]=$!
  began[engine]=$(date +%s)
  steps_of[engine]=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["steps"])' "$ENGINE_CONFIG")
  log "started engine ($ENGINE_CONFIG, ${steps_of[engine]} steps, pid $!)"
fi

# A run's last k-NN line and its pace (steps per second) from its curve.
pace() { python3 - "$WORK/$1.json" <<'PY' 2>/dev/null || echo "- -"
import json, sys
k = json.load(open(sys.argv[1]))["knn"]
print(k[-1]["step"], round(k[-1]["step"] / k[-1]["seconds"], 2) if k[-1]["seconds"] > 0 else "-")
PY
}
status() {
  local name
  for name in "${!pid_of[@]}"; do
    if [ "$name" = engine ]; then
      echo "  engine: $(grep -a 'source k-NN' "$WORK/engine.log" | tail -1) | $(tr '\r' '\n' <"$WORK/engine.log" | grep -a '^dino ' | tail -1)"
    else
      echo "  $name: $(grep -a '^knn,' "$WORK/$name.log" | tail -1)"
    fi
  done | tee -a "$OUT/status.txt"
}

last_status=$start
while [ "$(date +%s)" -lt "$deadline" ]; do
  [ -e "$WORK/nvidia-smi.txt" ] || [ $(($(date +%s) - start)) -lt 60 ] || nvidia-smi >"$WORK/nvidia-smi.txt" 2>&1
  running=0
  for name in "${!pid_of[@]}"; do
    pid=${pid_of[$name]}
    [ "$pid" = done ] && continue
    if kill -0 "$pid" 2>/dev/null; then running=$((running + 1)); continue; fi
    wait "$pid"
    log "$name ended (exit $?)"
    pid_of[$name]=done
    ended[$name]=$(date +%s)
    [ "$name" = engine ] && continue
    read -r _ rate < <(pace "$name")
    for q in $QUEUE; do
      left=$((deadline - $(date +%s)))
      need=$(awk -v s="${q#*:}" -v r="$rate" 'BEGIN { split(s, a, ":"); print (r > 0) ? int(a[1] / r * 1.1) + 30 : 999999 }')
      QUEUE=${QUEUE/$q/}
      if [ "$need" -lt "$left" ]; then torch_run "$q"; running=$((running + 1)); else log "not starting ${q%%:*}: ~${need}s at $rate steps/s, ${left}s left"; fi
      break
    done
  done
  [ "$running" -eq 0 ] && break
  if [ $(($(date +%s) - last_status)) -ge 30 ]; then log "status"; status; pack; last_status=$(date +%s); fi
  sleep 5
done

for name in "${!pid_of[@]}"; do
  pid=${pid_of[$name]}
  [ "$pid" = done ] && continue
  kill "$pid" 2>/dev/null && log "stopped $name at the time limit"
  ended[$name]=$(date +%s)
done
sleep 3
for name in "${!pid_of[@]}"; do
  pid=${pid_of[$name]}
  [ "$pid" != done ] && kill -9 "$pid" 2>/dev/null
done
kill "$sampler" 2>/dev/null
wait 2>/dev/null

# Per run: the steps done (the last logged step), wall seconds from its start (with its start-up and k-NN scores),
# steps per second over them, the last and the best k-NN.
{
  echo "run,schedule_steps,steps_done,finished,seconds,steps_per_s,knn_step,knn20_last,knn20_max"
  for name in "${!steps_of[@]}"; do
    python3 - "$WORK" "$name" "${steps_of[$name]}" $((${ended[$name]:-$(date +%s)} - ${began[$name]})) <<'PY' || echo "$name,${steps_of[$name]},,,,,,,"
import re, sys
out, name, steps, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
text = open(f"{out}/{name}.log", errors="replace").read().replace("\r", "\n")
if name == "engine":  # `pretrain`'s progress lines and its k-NN lines
    done = [int(s) for s in re.findall(r"^dino +(\d+)/\d+", text, re.M)]
    knn = [(int(s), float(a)) for s, a in re.findall(r"^step (\d+)/\d+: source k-NN ([\d.]+)%", text, re.M)]
else:  # scripts/dino-torch-reference.py: "STEP,,loss,..." every 10 steps, "knn,STEP,ACC,..." every 500
    done = [int(s) for s in re.findall(r"^(\d+),,", text, re.M)]
    knn = [(int(s), float(a)) for s, a in re.findall(r"^knn,(\d+),([\d.]+),", text, re.M)]
last = max(done + [k[0] for k in knn], default=0)
print(f"{name},{steps},{last},{last == steps},{seconds},{last / max(seconds, 1):.2f},{knn[-1][0] if knn else ''},"
      f"{knn[-1][1] if knn else ''},{max(a for _, a in knn) if knn else ''}")
PY
  done
} >"$OUT/summary.csv"
cp "$OUT/summary.csv" "$WORK/"
pack
log "done: $OUT/dino-gpu.tgz ($(du -h "$OUT/dino-gpu.tgz" | cut -f1)) holds $WORK"
cat "$OUT/summary.csv"
