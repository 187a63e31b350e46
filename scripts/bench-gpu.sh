#!/usr/bin/env bash
# The benchmark set of the performance issue, on a machine with a real GPU: every `bench` with --json and `tune`,
# one file each, into a folder (default bench-results/<date>; the first argument overrides it). A few minutes on
# a GPU. It refuses to run on a CPU driver, where the same set takes hours; BENCH_GPU_ALLOW_CPU=1 overrides that.
# Needs dist/run.js (`npm run build`) and node_modules/webgpu. Tuning results go to a temporary cache, so this
# machine's cache is left as it was. Each step is stopped after BENCH_STEP_TIMEOUT seconds (default 600), so one
# that hangs costs a short lease only its own figures. The steps that time explicit versions come first, then
# tune, then the ViT benchmarks that use its choices.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-bench-results/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out"
export PEFT_TUNE_CACHE=$(mktemp -d)
trap 'rm -rf "$PEFT_TUNE_CACHE"' EXIT

failed=0
run() {
  local file=$1
  shift
  echo "== node dist/run.js $* > $out/$file" >&2
  local start=$SECONDS
  if ! timeout "${BENCH_STEP_TIMEOUT:-600}" node dist/run.js "$@" >"$out/$file" 2>"$out/$file.err"; then
    echo "   failed (see $out/$file.err)" >&2
    failed=1
  fi
  echo "   $((SECONDS - start)) s" >&2
}

run info.txt info
if grep -q "kernels for CPU drivers" "$out/info.txt" && [ "${BENCH_GPU_ALLOW_CPU:-}" != 1 ]; then
  echo "bench-gpu: the adapter is a CPU driver ($(sed -n 2p "$out/info.txt")); set BENCH_GPU_ALLOW_CPU=1 to run anyway" >&2
  exit 2
fi
run matmul.json bench matmul --layouts nn,nt,tn --json
run ops.json bench ops --json
run attention.json bench attention --json
run knn.json bench knn --json
run tune.json tune --model vit-s16 --batch 32 --json
run vit-s16.json bench vit --model vit-s16 --batch 32 --profile --replay --json
run vit-b16.json bench vit --model vit-b16 --batch 32 --json
# ViT-B/16's products at batch 64 tuned first (tiled against tiledvec and the others, per shape, GELU products apart),
# so that its step runs the winners.
run tune-b16-b64.json tune --model vit-b16 --batch 64 --strategies full --families matmul --json
run vit-b16-b64.json bench vit --model vit-b16 --batch 64 --strategies full --profile --json
run vit-default.json bench vit --model default --batch 128 --replay --json
run vit-default-b32.json bench vit --model default --batch 32 --strategies full,linear --replay --census --json
# Mixed precision where the adapter has shader-f16 (`info`'s features line): the f16 products, the mma versions
# among them where it lists f16 subgroup matrices, and the ViT steps of the issue's targets.
if grep -q "^features .*shader-f16" "$out/info.txt"; then
  run matmul-f16.json bench matmul --precision f16 --layouts nn,nt,tn --no-tfjs --json
  run attention-f16.json bench attention --precision f16 --version tiled,mma --json
  run tune-f16.json tune --model vit-b16 --batch 64 --precision f16 --families matmul,attention --json
  run vit-b16-f16.json bench vit --model vit-b16 --batch 64 --strategies full --precision f16 --profile --json
  run vit-s16-f16.json bench vit --model vit-s16 --batch 64 --strategies full --precision f16 --json
fi
cp "$PEFT_TUNE_CACHE"/tune-*.json "$out/" 2>/dev/null
echo "results in $out" >&2
exit $failed
