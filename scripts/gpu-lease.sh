#!/usr/bin/env bash
# One lease of a machine with a GPU, run from the portable bundle (scripts/portable-bundle.sh copies this file to
# DIR/lease), most urgent first, since the lease may end at any step: `info` (retried with --system-gl, as root, when
# no adapter is found; then again with the first GPU chosen by its PCI address); where int8 tensor cores are listed,
# the int8 products' check on the device (info --check) and the probe of the 8-bit loads' readings (info --probe), the
# int8 tests and ViT-B/16's step in f32, int8 and int8x2; whether Dawn's f16 toggle gives NVIDIA shader-f16; where
# Fashion-MNIST is installed, the default study, alone, in 4 worker processes, and on Dawn's null backend (the host's
# share); the f32 products of ViT-B/16 (tiled against tiledvec and TF.js), the int8 ones, and its step with them tuned
# in each precision; on NVIDIA without shader-f16 the f16 tests and benchmarks with Dawn's blocklisting of it lifted;
# the test suite on the GPU's adapter; the benchmark set (scripts/bench-gpu.sh). Everything goes to a work folder
# packed into OUT/results.tgz every 10 s and at the end, so that a run stopped at a time limit still leaves what it
# finished. Usage: DIR/lease OUT. LEASE_TEST_TIMEOUT (default 300 s) bounds the tests, BENCH_STEP_TIMEOUT (default 600
# s) each benchmark, LEASE_STUDY_TIMEOUT (default 300 s) the study; LEASE_FASHION_MNIST a folder of Fashion-MNIST's
# IDX files for it (below).
set -u
here=$(cd "$(dirname "$0")" && pwd)
out=$(realpath -m "${1:?usage: lease OUT}")
mkdir -p "$out"
work=$(mktemp -d)
pack() { tar -czf "$out/results.part" --exclude="*.safetensors" -C "$work" . && mv "$out/results.part" "$out/results.tgz"; }
(while sleep 10; do pack; done) &
packer=$!
trap 'kill $packer 2>/dev/null; pack' EXIT
step() { echo "== $* ($(date +%T))"; }

step info
# The commit the bundle was built from (scripts/portable-bundle.sh), with the results it makes.
cp "$here/commit" "$work/commit" 2>/dev/null && echo "bundle of commit $(cat "$work/commit")"
# The machine, to read the figures by: the host's CPU (the study's host share), the GPU's driver, clocks and other
# processes (where nvidia-smi is there).
{ lscpu; echo; free -g; } >"$work/machine.txt" 2>&1
command -v nvidia-smi >/dev/null && nvidia-smi -q >"$work/nvidia-smi.txt" 2>&1
sysgl=""
"$here/run" info >"$work/info.txt" 2>&1
if ! grep -q "^adapter" "$work/info.txt" && [ "$(id -u)" = 0 ]; then
  echo "no adapter: retrying with --system-gl"
  mv "$work/info.txt" "$work/info-without-system-gl.txt"
  sysgl=--system-gl
  "$here/run" $sysgl info >"$work/info.txt" 2>&1
fi
head -4 "$work/info.txt"
grep -q "^adapter" "$work/info.txt" || exit 1
# The first GPU chosen by its PCI address (engine/pci.ts), as `experiment --workers N --adapters each-gpu` does.
gpu=$(grep -o -m1 "pci:[0-9a-f:.]*" "$work/info.txt" | head -1)
if [ -n "$gpu" ]; then
  "$here/run" $sysgl info --adapter "$gpu" >"$work/info-pci.txt" 2>&1
  echo "info --adapter $gpu: $(grep -E "^adapter|rror" "$work/info-pci.txt" | head -1)"
fi

# First what a short lease must answer (a session's device time may end within minutes): where the adapter lists
# i8 x i8 -> i32 subgroup matrices (the H200 through Dawn), whether the int8 versions compute right on the real
# driver (precisions int8 and int8x2: 3 or 2 int8 slices, docs/KERNELS.md), and ViT-B/16's step at batch 64 in f32,
# int8 and int8x2 with each precision's default versions, profiled; then whether Dawn's f16 toggle gives this GPU
# shader-f16 (tested further below).
int8=""
grep -q "i8 x i8 -> i32" "$work/info.txt" && int8=yes
if [ -n "$int8" ]; then
  step "int8 products: the device's check, tests, then ViT-B/16's step in f32, int8 and int8x2"
  # The check a run in those precisions (and tune) makes first (kernels/tensor-core-check.ts): three small products per
  # version and precision.
  timeout 120 "$here/run" $sysgl info --check >"$work/info-check.txt" 2>&1
  echo "info --check rc $?"
  grep -E "^check " "$work/info-check.txt" || tail -2 "$work/info-check.txt"
  # Which reading of the 8-bit fragment loads this device follows (kernels/subgroup-matrix-probe.ts): where the check
  # failed, the one the int8 kernels should take.
  timeout 90 "$here/run" $sysgl info --probe >"$work/info-probe.txt" 2>&1
  echo "info --probe rc $?; exact: $(grep -E "^probe .*: exact$" "$work/info-probe.txt" | sed 's/^probe i8 *//; s/: exact$//' | paste -sd';' -)"
  timeout 180 "$here/run" --test test/kernels/matmul.test.ts test/kernels/int8-slices.test.ts -t "i8|int8" --reporter=dot >"$work/test-i8.txt" 2>&1
  echo "int8 tests rc $?"
  grep -a -E "Test Files|Tests |FAIL" "$work/test-i8.txt" | head -20
  for precision in f32 int8 int8x2; do
    timeout 240 "$here/run" $sysgl bench vit --model vit-b16 --batch 64 --strategies full --precision $precision --profile >"$work/vit-b16-default-$precision.txt" 2>&1
    echo "vit-b16 $precision (default versions) rc $?"
    head -8 "$work/vit-b16-default-$precision.txt"
  done
fi
if grep -qi nvidia "$work/info.txt" && ! grep -q "^features .*shader-f16" "$work/info.txt"; then
  PEFT_DAWN_TOGGLES=vulkan_enable_f16_on_nvidia "$here/run" $sysgl info >"$work/info-f16.txt" 2>&1
  echo "with vulkan_enable_f16_on_nvidia:"
  grep -E "^(features|subgroup|mixed)" "$work/info-f16.txt"
fi

# The default study next: short (tens of seconds), and [gpu]'s end-to-end target. Its images: Debian's
# dataset-fashion-mnist, or (as root) LEASE_FASHION_MNIST's folder copied where that package puts them, e.g. the
# 5.2 MB of `scripts/fashion-mnist-subset.py DIR --classes 0-9 --train-per-class 1000 --test-per-class 200`, all the
# study reads.
step study
fm=/usr/share/datasets/fashion-mnist
if [ ! -e "$fm/t10k-labels-idx1-ubyte.gz" ] && [ -n "${LEASE_FASHION_MNIST:-}" ] && [ "$(id -u)" = 0 ]; then
  mkdir -p "$fm" && cp "$LEASE_FASHION_MNIST"/*-ubyte.gz "$fm/" && echo "Fashion-MNIST from $LEASE_FASHION_MNIST"
fi
if [ -e "$fm/t10k-labels-idx1-ubyte.gz" ]; then
  (cd "$work" && timeout "${LEASE_STUDY_TIMEOUT:-300}" "$here/run" >"$work/study.txt" 2>&1; echo "study rc $?"; tail -1 "$work/study.txt")
  # The same study in 4 worker processes sharing the GPU: its steps are bound by the host, which has cores to spare.
  mkdir -p "$work/workers"
  (cd "$work/workers" && timeout "${LEASE_STUDY_TIMEOUT:-300}" "$here/run" experiment --workers 4 >"$work/study-workers.txt" 2>&1; echo "study --workers 4 rc $?"; tail -1 "$work/study-workers.txt")
  # And on Dawn's null backend, which computes nothing: the host's share of the study on this machine's CPU.
  mkdir -p "$work/null"
  (cd "$work/null" && PEFT_BACKEND=null timeout "${LEASE_STUDY_TIMEOUT:-300}" "$here/run" >"$work/study-null.txt" 2>&1; echo "study on the null backend rc $?"; tail -1 "$work/study-null.txt")
else
  echo "no Fashion-MNIST in $fm (LEASE_FASHION_MNIST: a folder of its IDX files): study skipped"
fi

# f32 products, short and before anything long: tiled and tiledvec against TF.js at ViT-B/16's sizes (batch 64:
# qkv's forward, fc2's forward, a weight gradient) in every layout, then ViT-B/16's step at batch 64 with its
# products and attention tuned (each shape's winner among every version, GELU products apart) and profiled.
step "f32 products: tiled and tiledvec; ViT-B/16's step with its products tuned"
timeout 240 "$here/run" $sysgl bench matmul --version tiled,tiled128,tiledvec,tiled128vec \
  --shapes 12608x768x2304,12608x3072x768,768x12608x3072,2048x2048x2048 --layouts nn,nt,tn >"$work/products.txt" 2>&1
echo "products rc $?"
grep -E "^[0-9]" "$work/products.txt" | head -60
# The int8 versions' speed beside tiled128 and tiled128vec, at the same sizes. ViT-B/16's tuned int8 steps follow
# the f32 one below.
if [ -n "$int8" ]; then
  step "f32 products on int8 tensor cores"
  timeout 240 "$here/run" $sysgl bench matmul --precision int8 --version mma64i8,mma128i8,tiled128,tiled128vec \
    --shapes 12608x768x2304,12608x3072x768,768x12608x3072,2048x2048x2048 --layouts nn,nt,tn --no-tfjs >"$work/products-i8.txt" 2>&1
  echo "int8 products rc $?"
  grep -E "^[0-9]" "$work/products-i8.txt" | head -60
  timeout 180 "$here/run" $sysgl bench matmul --precision int8x2 --version mma64i8,mma128i8 \
    --shapes 12608x768x2304,12608x3072x768,768x12608x3072 --layouts nn,nt,tn --no-tfjs >"$work/products-i8x2.txt" 2>&1
  echo "int8x2 products rc $?"
  grep -E "^[0-9]" "$work/products-i8x2.txt" | head -30
  # Attention at ViT-S/16's shape: unfused's products as int8 slices against the fused tiled in f32.
  timeout 120 "$here/run" $sysgl bench attention --precision int8 --version tiled,unfused --shapes vit-s >"$work/attention-i8.txt" 2>&1
  echo "int8 attention rc $?"
  tail -5 "$work/attention-i8.txt"
fi
tuned=$(mktemp -d)
PEFT_TUNE_CACHE=$tuned timeout 300 "$here/run" $sysgl tune --model vit-b16 --batch 64 --strategies full --families matmul,attention >"$work/tune-b16.txt" 2>&1
echo "tune rc $?"
tail -3 "$work/tune-b16.txt"
PEFT_TUNE_CACHE=$tuned timeout 240 "$here/run" $sysgl bench vit --model vit-b16 --batch 64 --strategies full --profile >"$work/vit-b16-tuned.txt" 2>&1
echo "vit-b16 tuned rc $?"
head -8 "$work/vit-b16-tuned.txt"
# The same step in precisions int8 and int8x2: their products are shapes of their own, tuned among the int8 and the
# exact versions, and attention's, whose unfused version then multiplies as int8 slices too.
if [ -n "$int8" ]; then
  for precision in int8 int8x2; do
    step "ViT-B/16's step in precision $precision"
    PEFT_TUNE_CACHE=$tuned timeout 300 "$here/run" $sysgl tune --model vit-b16 --batch 64 --strategies full --families matmul,attention --precision $precision >"$work/tune-b16-$precision.txt" 2>&1
    echo "tune $precision rc $?"
    tail -3 "$work/tune-b16-$precision.txt"
    PEFT_TUNE_CACHE=$tuned timeout 240 "$here/run" $sysgl bench vit --model vit-b16 --batch 64 --strategies full --precision $precision --profile >"$work/vit-b16-$precision.txt" 2>&1
    echo "vit-b16 $precision rc $?"
    head -8 "$work/vit-b16-$precision.txt"
  done
fi
cp "$tuned"/tune-*.json "$work/" 2>/dev/null
rm -rf "$tuned"

# NVIDIA through Dawn: no shader-f16 unless Dawn's blocklisting is lifted (PEFT_DAWN_TOGGLES, docs/RUNNING.md). With
# it lifted: the f16 and mma tests first (the driver bugs behind the blocklist would show there), then their speed.
if grep -qi nvidia "$work/info.txt" && ! grep -q "^features .*shader-f16" "$work/info.txt"; then
  step "f16 on NVIDIA (PEFT_DAWN_TOGGLES=vulkan_enable_f16_on_nvidia)"
  export PEFT_DAWN_TOGGLES=vulkan_enable_f16_on_nvidia
  if grep -q "^features .*shader-f16" "$work/info-f16.txt"; then
    timeout "${LEASE_TEST_TIMEOUT:-300}" "$here/run" --test test/kernels/matmul.test.ts test/kernels/matmul-mma.test.ts test/kernels/attention-mma.test.ts \
      test/autograd/precision.test.ts test/train/train.test.ts -t "mma|f16|precision" --reporter=dot >"$work/test-f16.txt" 2>&1
    echo "f16 tests rc $?"
    grep -a -E "Test Files|Tests |FAIL" "$work/test-f16.txt" | head -20
    timeout 300 "$here/run" bench matmul --precision f16 --version mma64,mma128,tiled,tiled128,tiledvec,tiled128vec --shapes 12608x768x2304,2048x2048x2048 \
      --layouts nn,nt --no-tfjs >"$work/matmul-f16.txt" 2>&1
    tail -12 "$work/matmul-f16.txt"
    timeout 120 "$here/run" bench attention --precision f16 --version tiled,mma --shapes vit-s >"$work/attention-f16.txt" 2>&1
    tail -5 "$work/attention-f16.txt"
    timeout 300 "$here/run" bench vit --model vit-b16 --batch 64 --strategies full --precision f16 --profile >"$work/vit-b16-f16.txt" 2>&1
    head -8 "$work/vit-b16-f16.txt"
  fi
  unset PEFT_DAWN_TOGGLES
fi

step tests
timeout "${LEASE_TEST_TIMEOUT:-300}" "$here/run" --test --reporter=dot >"$work/test.txt" 2>&1
echo "tests rc $?"
grep -a -E "Test Files|Tests |FAIL" "$work/test.txt" | head -30

step bench
"$here/run" --bench-gpu "$work/bench"

step done
