// `info`: the backend, adapter, limits and features in use, the adapter's subgroup-matrix configurations, what
// mixed precision and the int8 products can use of them, (--check) whether its tensor-core products compute right
// here, and (--probe) which reading of the 8-bit fragment loads this device follows.
import type { Command } from "../util/command.js";
import { parseArgs } from "../util/args.js";
import { initEngine } from "../engine/runtime.js";
import { BACKENDS, type Gpu, SUBGROUP_MATRIX_FEATURE, type SubgroupMatrixConfig } from "../engine/device.js";
import { INT8_SLICES, PRECISIONS, mmaFragment, mmaI8Fragment } from "../kernels/registry.js";
import { SLICE_BOUND } from "../kernels/int8-slices.js";
import { checkTensorCores, tensorCoreVersions } from "../kernels/tensor-core-check.js";
import { I8_READINGS, probeI8Readings } from "../kernels/subgroup-matrix-probe.js";
import { pciDisplayDevices } from "../engine/pci.js";

// "f16 x f16 -> f32 8x8x8" per configuration (M x N x K), or why there are none.
export function subgroupMatrixLine(features: Set<string>, configs: SubgroupMatrixConfig[]): string {
  if (!features.has(SUBGROUP_MATRIX_FEATURE)) return `none (no ${SUBGROUP_MATRIX_FEATURE})`;
  if (configs.length === 0) return "none (the feature lists no configuration)";
  return configs.map((c) => `${c.componentType} x ${c.componentType} -> ${c.resultComponentType} ${c.M}x${c.N}x${c.K}`).join(", ");
}

// What mixed precision can use here: f16 products need shader-f16, the mma versions (matmul's and attention's) an
// f16 x f16 -> f32 subgroup matrix besides (kernels/registry.ts mmaFragment). Dawn offers no shader-f16 on NVIDIA's
// Vulkan driver.
export function mixedPrecisionLine(gpu: Gpu): string {
  if (!gpu.features.has("shader-f16")) return 'no (no shader-f16: training.precision "f16" and the f16 mma versions need it)';
  const f = mmaFragment(gpu, "f16");
  return `f16 products; ${f ? `tensor-core products and attention (mma versions) with f16 x f16 -> f32 ${f.M}x${f.N}x${f.K}` : "no subgroup matrix of f16 into f32 for the mma versions"}`;
}

// Whether the products can run on 8-bit tensor cores here (training.precision "int8", "int8x2"): matmul's int8
// versions need an i8 x i8 -> i32 subgroup matrix (kernels/registry.ts mmaI8Fragment), which NVIDIA's Vulkan driver
// lists through Dawn.
export function int8ProductsLine(gpu: Gpu): string {
  const f = mmaI8Fragment(gpu);
  if (!f) return 'no (no subgroup matrix of i8 into i32: training.precision "int8" and "int8x2" need one)';
  const bound = (p: "int8" | "int8x2") => `2^-${SLICE_BOUND[INT8_SLICES[p]!]}`;
  return `precision "int8" (within ${bound("int8")} K max|a| max|b|), "int8x2" (${bound("int8x2")}): mma64i8, mma128i8 with i8 x i8 -> i32 ${f.M}x${f.N}x${f.K}`;
}

// A precision's tensor-core versions and how their check on the device went (kernels/tensor-core-check.ts): those
// that passed, then each failure, whose version is unavailable to that precision from then on.
export function tensorCoreCheckLine(versions: string[], faults: Map<string, string>): string {
  const passed = versions.filter((v) => !faults.has(v));
  const parts = passed.length ? [`${passed.join(", ")} passed`] : [];
  for (const v of versions) if (faults.has(v)) parts.push(`FAILED, so unavailable: ${faults.get(v)}`);
  return parts.join("; ");
}

export const FLAGS = { backend: "string", adapter: "string", json: "boolean", quiet: "boolean", check: "boolean", probe: "boolean" } as const;

export const info: Command = {
  summary: "show the WebGPU backend, adapter, limits and features",
  usage: `usage: node dist/run.js info [--backend NAME] [--adapter SUBSTRING] [--check] [--probe] [--json] [--quiet]

  --backend   Dawn backend: ${BACKENDS.join(", ")} (default: Dawn's choice;
              env PEFT_BACKEND)
  --adapter   pick the adapter whose name, as Dawn lists it, contains this text (case-sensitive: a text no name
              has is refused with the list), or the GPU at a PCI address as pci:DDDD:BB:DD.F (one of several
              identical GPUs; env PEFT_ADAPTER)
  --check     also check the tensor-core products on the device where the adapter lists subgroup matrices: per
              precision, a small product per layout (nn, nt, tn) of each matmul version and a forward and backward
              of attention's mma, as tune and an int8 or int8x2 run do first
  --probe     also try one i8 fragment product in each of ${I8_READINGS.length} readings of the extension's 8-bit loads (units of
              offsets and strides, order of the types' sizes, storage or workgroup memory, B's layout), to say which
              this device follows where the int8 products fail their check
  --json      print as JSON
  --quiet     print nothing; the exit code says whether an adapter was found`,
  async run(argv) {
    const flags = parseArgs(argv, FLAGS);
    const { gpu } = await initEngine({ backend: flags.backend, adapter: flags.adapter });
    if (flags.quiet) return;
    const limits: Record<string, number> = {};
    for (const key in gpu.limits) limits[key] = (gpu.limits as unknown as Record<string, number>)[key];
    // With --check, whether each precision's tensor-core products compute right here. Not by default: info is what
    // one runs first when a device misbehaves, so it runs nothing on the device unless asked.
    const checks: { precision: string; versions: string[]; faults: Map<string, string> }[] = [];
    for (const precision of flags.check ? PRECISIONS : []) {
      const versions = tensorCoreVersions(precision);
      if (versions.length > 0) checks.push({ precision, versions, faults: await checkTensorCores(precision) });
    }
    const readings = flags.probe ? await probeI8Readings() : [];
    const report = {
      backend: gpu.backend,
      adapter: gpu.adapterInfo,
      kind: gpu.isCpu ? "cpu" : "gpu",
      features: [...gpu.features],
      subgroupMatrixConfigs: gpu.subgroupMatrixConfigs,
      tensorCoreCheck: flags.check ? Object.fromEntries(checks.map((c) => [c.precision, { versions: c.versions, faults: Object.fromEntries(c.faults) }])) : undefined,
      i8Readings: flags.probe ? readings : undefined,
      limits,
      pciDisplayDevices: pciDisplayDevices(), // what --adapter pci:ADDRESS can choose
    };
    if (flags.json) {
      console.log(JSON.stringify(report, null, 2));
      return;
    }
    console.log(`backend   ${report.backend}`);
    console.log(`adapter   ${gpu.adapterInfo.description} (${report.kind}: kernels for ${gpu.isCpu ? "CPU drivers" : "GPUs"})`);
    console.log(`features  ${report.features.join(", ") || "none"}`);
    console.log(`subgroup matrices  ${subgroupMatrixLine(gpu.features, gpu.subgroupMatrixConfigs)}`);
    console.log(`mixed precision    ${mixedPrecisionLine(gpu)}`);
    console.log(`int8 products      ${int8ProductsLine(gpu)}`);
    for (const c of checks) console.log(`${`check ${c.precision}`.padEnd(19)}${tensorCoreCheckLine(c.versions, c.faults)}`);
    for (const r of readings) console.log(`probe i8           ${r.units}, ${r.order}, ${r.space}, B ${r.right}: ${r.verdict}`);
    const pci = report.pciDisplayDevices.map((d) => `pci:${d.address} (${d.vendor}:${d.device})`);
    console.log(`pci       ${pci.length ? `${pci.join(", ")} (--adapter pci:ADDRESS picks one)` : "no display device on the PCI bus"}`);
    console.log("limits");
    for (const [k, v] of Object.entries(limits)) console.log(`  ${k.padEnd(44)} ${v}`);
  },
};
