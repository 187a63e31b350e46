// The one place the bundle's build flags live. `npm run build` runs this file, which writes dist/run.js; the tests
// that run the program as a child process (test/study/faults.test.ts) call `buildBundle`, which bundles the current
// source with the same options into a folder of their own.
//
// One ES module for Node 20+, with the native packages (webgpu: Dawn's bindings; sharp: libvips) left outside the
// bundle and loaded from node_modules at run time. The banner gives the bundle a `require`, which esbuild's
// CommonJS shims of bundled packages call. vega and vega-lite (the figures) are plain JavaScript and bundled; vega's
// optional node-canvas stays a run-time `import("canvas")` inside a try, which fails quietly where it is not
// installed (plot/render.ts sizes text without it anyway).
import { build } from "esbuild";
import { realpathSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");

// esbuild's options without `outfile`. The working directory is the project's, wherever the build is started from:
// the bundle's "// path" comments are relative to it, so the bytes do not depend on where it runs.
export const buildOptions = {
  absWorkingDir: ROOT,
  entryPoints: ["run.ts"],
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  external: ["webgpu", "sharp"],
  banner: { js: "import { createRequire as __cr } from 'module'; const require = __cr(import.meta.url);" },
};

// Bundles run.ts into `outfile`. The externals resolve from the node_modules folders above it, so `outfile` must lie
// inside the project (dist/, node_modules/.cache/...).
export async function buildBundle(outfile, options = {}) {
  return build({ ...buildOptions, outfile, ...options });
}

if (process.argv[1] !== undefined && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await buildBundle(join(ROOT, "dist", "run.js"), { logLevel: "info" });
}
