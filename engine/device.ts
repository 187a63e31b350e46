// The one place that talks to Dawn: creates the instance, picks the adapter, requests the device with the
// adapter's limits and the optional features it has, and turns Dawn's errors into thrown Errors.
//
// Choosing the adapter: the options (flags, else PEFT_BACKEND and PEFT_ADAPTER, see engine/settings.ts), else
// Dawn's default. `backend` is one of Dawn's backends (BACKENDS); `adapter` is a substring of the adapter's name as
// Dawn lists it, which Dawn matches case-sensitively (e.g. "llvmpipe", "NVIDIA"), or a PCI address
// `pci:DDDD:BB:DD.F`, which tells identical GPUs apart (engine/pci.ts).
//
// llvmpipe (Mesa's CPU driver behind lavapipe) runs workgroups on LP_NUM_THREADS threads, one per core by default.
// Twice as many kept both cores busy when one thread stalled (a sync, a busy neighbour on a shared host): on 2
// cores 20-35% more matmul throughput in interleaved runs. So unless the user set it, open() sets it before Dawn
// loads the driver, which reads it once. Other drivers ignore it.
import { availableParallelism } from "node:os";
import { create, globals } from "webgpu";
import { deviceSelectLayerPresent, pciAddress, pciDisplayDevices, pciSelection } from "./pci.js";

// GPUBufferUsage, GPUMapMode, ... as globals, as in a browser.
Object.assign(globalThis, globals);

export interface DeviceOptions {
  backend?: string;
  adapter?: string;
  powerPreference?: GPUPowerPreference;
  llvmpipeThreads?: string; // LP_NUM_THREADS as the user set it (undefined: open() chooses)
  vulkanDataDirs?: string[]; // where the Vulkan loader looks for implicit layers (engine/settings.ts)
  deviceSelectOff?: boolean; // NODEVICE_SELECT: the user switched Mesa's device-select layer off
  dawnToggles?: string[]; // more Dawn toggles to enable (PEFT_DAWN_TOGGLES)
  sources?: { backend: string; adapter: string }; // the flag or variable each came from, for messages
}

// The backends dawn-node takes, in any case (GPU.cpp's kBackends; it also takes d3d, vk, gl and gles for d3d12, vulkan,
// opengl and opengles). Checked here because Dawn's refusal names neither the flag nor the variable.
export const BACKENDS = ["vulkan", "metal", "d3d12", "d3d11", "opengl", "opengles", "webgpu", "null"];
const BACKEND_ALIASES = ["vk", "d3d", "gl", "gles"];

// One shape of product the adapter's subgroup matrices (tensor cores, through the
// chromium-experimental-subgroup-matrix feature) multiply: M x K times K x N of componentType into resultComponentType.
export interface SubgroupMatrixConfig {
  componentType: string;
  resultComponentType: string;
  M: number;
  N: number;
  K: number;
}

export interface Gpu {
  device: GPUDevice;
  adapterInfo: { vendor: string; architecture: string; device: string; description: string };
  features: Set<string>;
  limits: GPUSupportedLimits;
  subgroupMatrixConfigs: SubgroupMatrixConfig[]; // empty without chromium-experimental-subgroup-matrix
  subgroupMaxSize: number; // the adapter's largest subgroup (32 on NVIDIA): kernels with subgroup matrices size by it
  subgroupMinSize: number; // its smallest (8 on llvmpipe, as its largest: a workgroup of 8 is one subgroup there)
  // CPU drivers (lavapipe/llvmpipe, SwiftShader) want barrier-free register-blocked kernels; GPUs want shared memory.
  isCpu: boolean;
  backend: string;
}

export const SUBGROUP_MATRIX_FEATURE = "chromium-experimental-subgroup-matrix";
const OPTIONAL_FEATURES = ["shader-f16", "timestamp-query", "subgroups", SUBGROUP_MATRIX_FEATURE] as GPUFeatureName[];

// Dawn segfaults if the object returned by create() is collected while the device lives: hold it here.
let instance: GPU | undefined;
let current: Promise<Gpu> | undefined;
let opened: GPUDevice | undefined; // for closeDevice, which cannot wait for `current`
let lost: string | undefined;
const uncaptured: string[] = [];

export function getDevice(opts: DeviceOptions = {}): Promise<Gpu> {
  current ??= open(opts);
  return current;
}

async function open(opts: DeviceOptions): Promise<Gpu> {
  const backend = opts.backend;
  const sources = opts.sources ?? { backend: "backend", adapter: "adapter" };
  if (backend !== undefined && ![...BACKENDS, ...BACKEND_ALIASES].includes(backend.toLowerCase())) {
    throw new Error(`${sources.backend}: expected one of Dawn's backends ${BACKENDS.join(", ")}, got "${backend}"`);
  }
  if (opts.adapter === "") throw new Error(`${sources.adapter}: expected a substring of the adapter's name or pci:DDDD:BB:DD.F, got ""`);
  // The PCI checks' messages (engine/pci.ts) begin "device:": here they name the flag or variable instead.
  const named = <T>(f: () => T): T => {
    try {
      return f();
    } catch (e) {
      throw new Error((e as Error).message.replace(/^device:/, `${sources.adapter}:`), { cause: e });
    }
  };
  const address = opts.adapter === undefined ? undefined : named(() => pciAddress(opts.adapter!));
  const wanted = address ? undefined : opts.adapter;
  const dawnOptions: string[] = [];
  if (backend) dawnOptions.push(`backend=${backend}`);
  if (wanted) dawnOptions.push(`adapter=${wanted}`);
  // Dawn offers chromium-experimental-subgroup-matrix (tensor cores) only behind allow_unsafe_apis. It guards APIs
  // not yet hardened against hostile web content, which a command-line tool running its own kernels does not face.
  // The user's toggles come after it: e.g. vulkan_enable_f16_on_nvidia, which lifts Dawn's blocklisting of
  // shader-f16 on NVIDIA's Vulkan driver (crbug.com/42251215: driver bugs), at the user's own risk.
  dawnOptions.push(`enable-dawn-features=${["allow_unsafe_apis", ...(opts.dawnToggles ?? [])].join(",")}`);
  if (address) {
    // Read by Mesa's device-select layer when Dawn creates its Vulkan instance: only that GPU is left to find.
    const layer = !opts.deviceSelectOff && deviceSelectLayerPresent(opts.vulkanDataDirs ?? []);
    process.env.DRI_PRIME = named(() => pciSelection(address, pciDisplayDevices(), layer));
  }
  const threads = llvmpipeThreads(opts.llvmpipeThreads, availableParallelism());
  if (threads !== undefined) process.env.LP_NUM_THREADS = threads; // read by the driver as Dawn loads it
  instance = create(dawnOptions);
  // Discovering the adapters prints "Warning: maxDynamicUniformBuffersPerPipelineLayout artificially reduced from
  // 1000000 to 16 to fit dynamic offset allocation limit." and the same for Storage on every start: Dawn's
  // NormalizeLimits (src/dawn/native/Limits.cpp) clamps the driver's limits and says so with dawn::WarningLog, an
  // fprintf to the process's stderr from native code, whatever limits the device later requests. No Dawn toggle,
  // create() option or logging callback reaches it, and Node cannot redirect fd 2 around the call without native
  // code (closing and reopening fd 2 would race the thread pool's own file opens, and reopening a log file would
  // lose its shared offset with stdout). They are harmless (no kernel uses dynamic offsets); in a terminal run.ts
  // runs the program behind a filter that leaves out exactly these two lines.
  const adapter = await instance.requestAdapter({ powerPreference: opts.powerPreference ?? "high-performance" }).catch((err: Error) => {
    if (!wanted) throw err;
    // dawn-node refuses a name no adapter has, listing those it found, one " * backend: 'vulkan', name: '...'" each.
    const found = err.message.split("\n").filter((line) => line.startsWith(" * "));
    throw new Error(`${sources.adapter}: no adapter's name contains "${wanted}" (Dawn matches it case-sensitively); the adapters${backend ? ` of backend ${backend}` : ""}:\n${found.join("\n")}`);
  });
  if (!adapter) {
    throw new Error(
      `device: no WebGPU adapter found${backend ? ` for backend "${backend}"` : ""}${wanted ? ` matching "${wanted}"` : ""}${address ? ` at pci:${address}` : ""}. ` +
        "On Linux without a GPU run `npm run setup`, which installs Mesa's CPU Vulkan driver (lavapipe).",
    );
  }
  const info = adapter.info;
  const description = [info.vendor, info.architecture, info.device, info.description, address && `(pci:${address})`].filter((s) => s).join(" ");
  const features = OPTIONAL_FEATURES.filter((f) => adapter.features.has(f));
  const requiredLimits: Record<string, number> = {};
  for (const key of LIMITS) requiredLimits[key] = (adapter.limits as unknown as Record<string, number>)[key];
  const device = await adapter.requestDevice({ requiredFeatures: features, requiredLimits });
  opened = device;
  device.addEventListener("uncapturederror", (ev) => {
    uncaptured.push((ev as GPUUncapturedErrorEvent).error.message);
  });
  device.lost.then((reason) => {
    if (reason.reason !== "destroyed") lost = `${reason.reason}: ${reason.message}`;
  });
  // Dawn lists the configurations in the adapter's info; the mma matmul versions multiply with them.
  const configs = (info as unknown as { subgroupMatrixConfigs?: SubgroupMatrixConfig[] }).subgroupMatrixConfigs ?? [];
  const subgroupMatrixConfigs = features.includes(SUBGROUP_MATRIX_FEATURE as GPUFeatureName)
    ? configs.map(({ componentType, resultComponentType, M, N, K }) => ({ componentType, resultComponentType, M, N, K }))
    : [];
  const isCpu = /llvmpipe|lavapipe|swiftshader|cpu/i.test(description) || info.architecture === "cpu";
  return {
    device,
    adapterInfo: { vendor: info.vendor, architecture: info.architecture, device: info.device, description },
    features: new Set(features),
    limits: device.limits,
    subgroupMatrixConfigs,
    subgroupMaxSize: (info as unknown as { subgroupMaxSize?: number }).subgroupMaxSize ?? 0,
    subgroupMinSize: (info as unknown as { subgroupMinSize?: number }).subgroupMinSize ?? 0,
    isCpu,
    backend: backend ?? "default",
  };
}

// Destroys the device, if one is open; Dawn first waits for the work in flight. For the process's exit: exiting with
// a dispatch still running (Ctrl-C in the middle of a step) crashed in SwiftShader's teardown, a segmentation fault
// after the exit's message, in 3 of 16 interrupted default studies; none of 22 after closeDevice (2026-12-07).
export function closeDevice(): void {
  opened?.destroy();
  opened = undefined;
}

// The LP_NUM_THREADS to set for `cores` cores (see the header), or undefined where the user chose one.
export function llvmpipeThreads(userSet: string | undefined, cores: number): string | undefined {
  if (userSet !== undefined) return undefined;
  return String(Math.min(2 * cores, LLVMPIPE_MAX_THREADS));
}
const LLVMPIPE_MAX_THREADS = 16; // Mesa's own cap (LP_MAX_THREADS) is 32; more than 16 was never measured here

// The limits worth raising to the adapter's maximum for compute work.
const LIMITS = [
  "maxStorageBufferBindingSize",
  "maxBufferSize",
  "maxComputeWorkgroupStorageSize",
  "maxComputeInvocationsPerWorkgroup",
  "maxComputeWorkgroupSizeX",
  "maxComputeWorkgroupSizeY",
  "maxComputeWorkgroupsPerDimension",
  "maxStorageBuffersPerShaderStage",
];

// Throws the first error Dawn reported since the last check, naming `context` (the kernels of a batch).
export function throwIfDeviceError(context: string): void {
  if (lost !== undefined) throw new Error(`device lost (${lost}) during ${context}`);
  if (uncaptured.length > 0) {
    const messages = uncaptured.splice(0).join("\n");
    throw new Error(`WebGPU error during ${context}:\n${messages}`);
  }
}
