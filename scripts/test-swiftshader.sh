#!/usr/bin/env bash
# The tests on a second CPU Vulkan driver: SwiftShader, as Debian's chromium-common ships it (`npm run setup --
# --swiftshader`). Its subgroups are 4 lanes wide where lavapipe's are 8, it has no shader-f16, its limits differ
# (1 GiB for a buffer and for a binding) and its shader compiler is not LLVM's: a kernel that passes on lavapipe alone
# may lean on that one driver. The arguments go to vitest (files, folders, -t NAME); without any, the kernel tests.
#
#   scripts/test-swiftshader.sh [VITEST ARGS]    e.g. test/kernels/knn.test.ts, or test/kernels -t reg16x4
#
# SWIFTSHADER_ICD: the driver's manifest (default /usr/lib/chromium/vk_swiftshader_icd.json, Debian's).
set -euo pipefail
cd "$(dirname "$0")/.."

ICD="${SWIFTSHADER_ICD:-/usr/lib/chromium/vk_swiftshader_icd.json}"
if [ ! -f "$ICD" ]; then
  echo "test-swiftshader: no SwiftShader Vulkan driver manifest at $ICD: run npm run setup -- --swiftshader, or set SWIFTSHADER_ICD to one" >&2
  exit 1
fi
# The Vulkan loader then knows this driver alone, in this process and the tool's processes the tests start.
export VK_ICD_FILENAMES="$ICD"

# A loader that ignored the variable would run the tests on another driver without a word: check the adapter first.
adapter=$(node dist/run.js info --json 2>/dev/null | node -e 'let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => console.log(JSON.parse(s).adapter.description))') || adapter=""
case "$adapter" in
  *SwiftShader*) echo "test-swiftshader: $adapter" ;;
  *)
    echo "test-swiftshader: expected the SwiftShader adapter with VK_ICD_FILENAMES=$ICD, got \"$adapter\" (is dist/run.js built? npm run build)" >&2
    exit 1
    ;;
esac

if [ "$#" -eq 0 ]; then set -- test/kernels; fi
exec npx vitest run "$@"
