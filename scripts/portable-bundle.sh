#!/usr/bin/env bash
# A self-contained copy of the command-line tool for an x86-64 glibc Linux machine that has neither Node.js nor a
# package registry (a GPU server lent for an hour, say): node itself (xz-compressed), dist/run.js, the shipped
# backbones/ (the default study's), the native packages it loads (webgpu's Dawn, sharp and its libvips, linux-x64
# builds only), scripts/bench-gpu.sh, all in one xz archive, Debian's Vulkan loader (libvulkan1) for hosts without
# one, and glvnd's libraries (libglvnd0, libglx0, libgl1, libegl1, libgles2, libopengl0) for NVIDIA hosts without
# them. About 50 MB; built here, copied there, run there (the first run unpacks the archive into $TMPDIR, a few
# seconds):
#   DIR/run ARGS...               the tool (`node dist/run.js ARGS...`), e.g. DIR/run info
#   DIR/run --bench-gpu [OUT]     scripts/bench-gpu.sh, results in OUT (default bench-results/<date>, both relative
#                                 to the current directory)
#   DIR/run --system-gl ...       first unpacks the bundled Vulkan loader and glvnd packages into / and runs ldconfig
#                                 (root; for a disposable machine): on the device tool's H200 machine NVIDIA's
#                                 Vulkan driver (libGLX_nvidia.so.0) found no GPU without glvnd installed so, and
#                                 still none with only libGLdispatch on LD_LIBRARY_PATH
#   DIR/lease OUT                 scripts/gpu-lease.sh: info, the tests, the benchmark set and the default study,
#                                 packed into OUT/results.tgz as they finish (a lent machine's whole session)
#   DIR/run --test [ARGS...]      the vitest suite (`vitest run ARGS...`) on that machine's adapter, from a second
#                                 archive (tests.tar.xz, ~15 MB): the tracked sources and tests of this checkout and
#                                 the node_modules vitest needs, unpacked on first use
# Usage: scripts/portable-bundle.sh [DIR] (default .portable, ignored by git). Builds dist/run.js first (a stale one
# would run old code beside the checkout's tests) and writes DIR/commit, the commit it was built from ("-dirty" where
# tracked files differed from it), which DIR/lease records with its results.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-.portable}
npm run build >/dev/null
node_bin=$(command -v node)
rm -rf "$out"
mkdir -p "$out/deb"
out=$(cd "$out" && pwd)
# The payload, unpacked on first use by `run`: node, dist/run.js, bench-gpu.sh and the native packages.
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/bin" "$stage/dist" "$stage/scripts" "$stage/node_modules/webgpu/dist" "$stage/node_modules/@img"
cp "$node_bin" "$stage/bin/node"
cp dist/run.js "$stage/dist/"
cp -r backbones "$stage/" # beside dist/, where util/shipped.ts looks for the default study's backbone
cp scripts/bench-gpu.sh "$stage/scripts/"
printf '{ "type": "module", "private": true }\n' >"$stage/package.json" # dist/run.js is an ES module
(cd node_modules/webgpu && cp index.js package.json LICENSE.md "$stage/node_modules/webgpu/" && cp -r dist/linux-x64 "$stage/node_modules/webgpu/dist/")
cp -r node_modules/sharp node_modules/detect-libc node_modules/semver "$stage/node_modules/"
cp -r node_modules/@img/colour node_modules/@img/sharp-linux-x64 node_modules/@img/sharp-libvips-linux-x64 "$stage/node_modules/@img/"
tar -C "$stage" -cf - . | xz -T0 -6 >"$out/payload.tar.xz"
# The test payload: the checkout's tracked files (sources, tests, fixtures) and node_modules without what the
# payload above already holds (webgpu, sharp) or what `vitest run` never loads (TF.js, TypeScript's compiler).
skip='^(webgpu|sharp|@img|detect-libc|semver|@tensorflow|typescript|@typescript|@types|@webgpu)$'
git ls-files -z --cached --others --exclude-standard | tar --null -T - -cf "$stage/tests.tar"
ls -A node_modules | grep -v -E "$skip" | sed 's|^|node_modules/|' | tar -T - -rf "$stage/tests.tar"
xz -T0 -6 <"$stage/tests.tar" >"$out/tests.tar.xz"
if ! (cd "$out/deb" && apt-get download -qq libvulkan1 libglvnd0 libglx0 libgl1 libegl1 libgles2 libopengl0 2>/dev/null); then
  echo "portable-bundle: could not download libvulkan1 and glvnd's packages; the target machine must have them" >&2
fi

cat >"$out/run" <<'EOF'
#!/usr/bin/env bash
# Runs the bundled tool (see scripts/portable-bundle.sh in the repository): unpacks the payload once into $TMPDIR,
# puts the bundled Vulkan loader on the library path where the host has none, and points the Vulkan loader at
# NVIDIA's driver where containers mount it (/usr/local/nvidia) rather than under /usr/share.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=${TMPDIR:-/tmp}/peft-vit-$(cksum <"$here/payload.tar.xz" | cut -d' ' -f1)
if [ ! -x "$root/bin/node" ]; then
  rm -rf "$root.part"
  mkdir -p "$root.part"
  xz -dc "$here/payload.tar.xz" | tar -C "$root.part" -xf -
  rm -rf "$root"
  mv "$root.part" "$root"
fi
export PATH="$root/bin:$PATH"
if [ "${1:-}" = --system-gl ]; then
  shift
  for deb in "$here"/deb/*.deb; do dpkg -x "$deb" /; done
  ldconfig
fi
# A host without a Vulkan loader gets the bundled one, unpacked beside the payload.
if ! ldconfig -p 2>/dev/null | grep -q 'libvulkan\.so\.1'; then
  for deb in "$here"/deb/libvulkan1_*.deb; do
    [ -e "$deb" ] && [ ! -d "$root/vulkan" ] && dpkg -x "$deb" "$root/vulkan"
  done
  export LD_LIBRARY_PATH="$root/vulkan/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  if ! ldconfig -p 2>/dev/null | grep -q 'libGLdispatch\.so\.0' && [ -e /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ]; then
    echo "run: an NVIDIA host without glvnd: if no adapter is found, run as root with --system-gl first" >&2
  fi
fi
nvidia_icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
if [ -z "${VK_DRIVER_FILES:-}${VK_ICD_FILENAMES:-}" ] && [ -f "$nvidia_icd" ] && ! ls /usr/share/vulkan/icd.d/*nvidia* >/dev/null 2>&1; then
  export VK_DRIVER_FILES=$nvidia_icd
fi
if [ "${1:-}" = --test ]; then
  shift
  tests=$root-tests
  if [ ! -d "$tests" ]; then
    rm -rf "$tests.part"
    mkdir -p "$tests.part"
    xz -dc "$here/tests.tar.xz" | tar -C "$tests.part" -xf -
    cp -r "$root/node_modules/." "$tests.part/node_modules/" # webgpu and sharp, from the payload
    mv "$tests.part" "$tests"
  fi
  cd "$tests"
  exec node node_modules/vitest/vitest.mjs run "$@"
fi
if [ "${1:-}" = --bench-gpu ]; then
  results=$(realpath -m "${2:-bench-results/$(date +%Y%m%d-%H%M%S)}") # relative to the caller, not the payload
  exec "$root/scripts/bench-gpu.sh" "$results"
fi
exec node "$root/dist/run.js" "$@"
EOF
chmod +x "$out/run"
cp scripts/gpu-lease.sh "$out/lease"
echo "$(git rev-parse --short HEAD)$(git diff --quiet HEAD || echo -dirty)" >"$out/commit"
echo "portable-bundle: $out ($(du -sh "$out" | cut -f1)); run it with $out/run ARGS... or $out/run --bench-gpu" >&2
