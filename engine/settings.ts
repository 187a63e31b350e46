// The process environment, read once: initEngine() parses it into Settings and the engine, the kernels and the
// tuning cache take their values from runtime().settings. Nothing else in the project reads process.env (run.ts
// reads DEBUG for its own error printing); a test enforces it.
//
//   PEFT_BACKEND, PEFT_ADAPTER   the Dawn backend and adapter (engine/device.ts); --backend / --adapter win
//   PEFT_WAIT                    how a read-back waits: quiet (default), spin or busy (engine/batch.ts)
//   PEFT_TUNE=0                  ignore the autotuner's cache (engine/tuning.ts); 0 or 1, default 1
//   PEFT_REPLAY=0                run every training step and feature and evaluation batch, none replayed
//                                (train/train.ts, eval/); 0 or 1, default 1
//   PEFT_TUNE_CACHE              the cache folder; else $XDG_CACHE_HOME/peft-vit-webgpu, else ~/.cache/peft-vit-webgpu
//   PEFT_IMAGE_CACHE_MB          memory for transformed images a study or pre-training reads again
//                                (data/transform-cache.ts; as much again on the device, train/batch-images.ts);
//                                default 1024, 0 keeps none
//   PEFT_<FAMILY>                a kernel family's version for every call, e.g. PEFT_MATMUL=reg8x8 (kernels/registry.ts);
//                                any other PEFT_ name is refused: a typo must not leave a setting silently unset
//   PEFT_DAWN_TOGGLES            Dawn toggles to enable besides allow_unsafe_apis, comma-separated (engine/device.ts),
//                                e.g. vulkan_enable_f16_on_nvidia; Dawn skips a name it does not know without a word
//   DEBUG=1 / DEBUG=2            log every dispatch / also print each shader's WGSL
//   LP_NUM_THREADS               llvmpipe's threads; engine/device.ts sets it when the user did not
//   XDG_CONFIG_DIRS, XDG_DATA_DIRS, XDG_DATA_HOME, HOME   where the Vulkan loader finds layers (engine/pci.ts)
//   NODEVICE_SELECT              switches Mesa's device-select layer off: no choice of GPU by PCI address
//   DRI_PRIME                    written by engine/device.ts for an adapter chosen by PCI address
//   UV_THREADPOOL_SIZE           libuv's thread pool (image decoding), read by Node itself; reported by bench data. libuv
//                                reads "abc" as 1 thread and "8x" as 8: anything but a count from 1 to 1024 is refused
//   SLURM_JOB_ID, SLURM_ARRAY_JOB_ID, SLURM_ARRAY_TASK_ID   set by Slurm in a job: a study's claims name the job
import { homedir } from "node:os";
import { join } from "node:path";

export const WAIT_POLICIES = ["quiet", "spin", "busy"] as const;
export type WaitPolicy = (typeof WAIT_POLICIES)[number];

export interface Settings {
  backend: string | undefined;
  adapter: string | undefined;
  wait: WaitPolicy;
  tune: boolean; // false: every kernel uses its device default unless a version is forced
  replay: boolean; // false: training runs every step's forward and backward, feature extraction every batch
  tuneCacheDir: string;
  imageCacheBytes: number; // PEFT_IMAGE_CACHE_MB in bytes
  debug: 0 | 1 | 2;
  // A kernel family's forced version, by family name in lower case (PEFT_MATMUL -> matmul), with the variable's name
  // for error messages. The name is one of KERNEL_FAMILIES (readSettings refuses others); kernels/registry.ts checks
  // the value against the family's versions, on every look-up.
  versions: Record<string, { value: string; variable: string }>;
  llvmpipeThreads: string | undefined; // LP_NUM_THREADS as the user set it
  vulkanDataDirs: string[]; // the folders whose vulkan/implicit_layer.d the Vulkan loader reads, as it finds them
  deviceSelectOff: boolean; // NODEVICE_SELECT set
  dawnToggles: string[]; // PEFT_DAWN_TOGGLES
  threadpool: number | undefined; // UV_THREADPOOL_SIZE (undefined: Node's default, 4)
  slurm: { jobId: string; arrayJobId?: string; arrayTaskId?: string } | undefined; // in a Slurm job
}

// The PEFT_ variables that are settings of their own; PEFT_<FAMILY> forces a kernel family's version.
const OWN = ["PEFT_BACKEND", "PEFT_ADAPTER", "PEFT_WAIT", "PEFT_TUNE", "PEFT_TUNE_CACHE", "PEFT_DAWN_TOGGLES", "PEFT_REPLAY", "PEFT_IMAGE_CACHE_MB"];

// The kernel families a PEFT_<FAMILY> variable can force. kernels/registry.ts's FAMILIES has exactly these (the
// compiler holds it to this list): the settings refuse an unknown PEFT_ name when they are read, below the kernels.
export const KERNEL_FAMILIES = ["matmul", "rows", "attention", "knn"] as const;
export type KernelFamily = (typeof KERNEL_FAMILIES)[number];

const MAX_THREADPOOL = 1024; // libuv's MAX_THREADPOOL_SIZE: it uses no more

// A study at the default model's size keeps ~75 MB; one at 224 px keeps its k-NN and test sets where they fit.
const DEFAULT_IMAGE_CACHE_MB = 1024;

export function readSettings(env: NodeJS.ProcessEnv = process.env): Settings {
  const wait = env.PEFT_WAIT ?? "quiet";
  if (!(WAIT_POLICIES as readonly string[]).includes(wait)) {
    throw new Error(`PEFT_WAIT: expected one of ${WAIT_POLICIES.join(", ")}, got "${wait}"`);
  }
  const dawnToggles = (env.PEFT_DAWN_TOGGLES ?? "").split(",").map((t) => t.trim()).filter((t) => t);
  for (const t of dawnToggles) {
    if (!/^[a-z0-9_]+$/.test(t)) throw new Error(`PEFT_DAWN_TOGGLES: expected Dawn toggle names (lower case, digits, _), comma-separated, got "${t}"`);
  }
  const imageCache = env.PEFT_IMAGE_CACHE_MB ?? String(DEFAULT_IMAGE_CACHE_MB);
  if (!/^\d+(\.\d+)?$/.test(imageCache)) throw new Error(`PEFT_IMAGE_CACHE_MB: expected megabytes >= 0, got "${imageCache}"`);
  const debug = env.DEBUG === undefined || env.DEBUG === "" || env.DEBUG === "0" ? 0 : env.DEBUG === "2" ? 2 : 1;
  const versions: Settings["versions"] = {};
  const forcing = KERNEL_FAMILIES.map((f) => `PEFT_${f.toUpperCase()}`);
  for (const [variable, value] of Object.entries(env)) {
    if (!variable.startsWith("PEFT_") || OWN.includes(variable) || value === undefined) continue;
    if (!forcing.includes(variable)) {
      throw new Error(`${variable}: unknown variable; expected one of ${OWN.join(", ")} or a kernel family's ${forcing.join(", ")} (docs/RUNNING.md)`);
    }
    versions[variable.slice("PEFT_".length).toLowerCase()] = { value, variable };
  }
  const threadpool = env.UV_THREADPOOL_SIZE;
  if (threadpool !== undefined && !(/^[1-9]\d*$/.test(threadpool) && Number(threadpool) <= MAX_THREADPOOL)) {
    throw new Error(`UV_THREADPOOL_SIZE: expected a number of threads from 1 to ${MAX_THREADPOOL}, got "${threadpool}"`);
  }
  return {
    backend: env.PEFT_BACKEND || undefined,
    adapter: env.PEFT_ADAPTER || undefined,
    wait: wait as WaitPolicy,
    tune: onOff(env, "PEFT_TUNE", true),
    replay: onOff(env, "PEFT_REPLAY", true),
    imageCacheBytes: Number(imageCache) * 2 ** 20,
    tuneCacheDir: env.PEFT_TUNE_CACHE || join(env.XDG_CACHE_HOME || join(homedir(), ".cache"), "peft-vit-webgpu"),
    debug,
    versions,
    llvmpipeThreads: env.LP_NUM_THREADS,
    vulkanDataDirs: vulkanDataDirs(env),
    deviceSelectOff: Boolean(env.NODEVICE_SELECT),
    dawnToggles,
    threadpool: threadpool === undefined ? undefined : Number(threadpool),
    slurm: env.SLURM_JOB_ID ? { jobId: env.SLURM_JOB_ID, arrayJobId: env.SLURM_ARRAY_JOB_ID, arrayTaskId: env.SLURM_ARRAY_TASK_ID } : undefined,
  };
}

// A switch, "0" or "1" (unset: `fallback`): "false" or "no" is refused rather than read as on.
function onOff(env: NodeJS.ProcessEnv, variable: string, fallback: boolean): boolean {
  const value = env[variable];
  if (value === undefined) return fallback;
  if (value !== "0" && value !== "1") throw new Error(`${variable}: expected 0 or 1, got "${value}"`);
  return value === "1";
}

// The Vulkan loader's search path for layer manifests on Linux (Khronos' LoaderLayerInterface.md): the XDG config
// folders, /etc, the XDG data folders and the user's data folder.
function vulkanDataDirs(env: NodeJS.ProcessEnv): string[] {
  const list = (v: string | undefined, fallback: string) => (v || fallback).split(":").filter((d) => d);
  const home = env.XDG_DATA_HOME || (env.HOME ? join(env.HOME, ".local", "share") : undefined);
  return [...list(env.XDG_CONFIG_DIRS, "/etc/xdg"), "/etc", ...list(env.XDG_DATA_DIRS, "/usr/local/share:/usr/share"), ...(home ? [home] : [])];
}
