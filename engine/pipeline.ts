// Compute pipelines, created once per kernel specialisation and cached under `name/specKey(spec)`.
// Binding convention for every kernel: @binding(0) is the uniform struct of per-call sizes (when the kernel has
// one), then the storage buffers in the order the wrapper passes them, from @binding(1).

export type Spec = Record<string, string | number | boolean>;

// Serialises every specialisation value, keys sorted, so two specs with the same values share a pipeline.
export function specKey(spec: Spec): string {
  return Object.keys(spec)
    .sort()
    .map((k) => `${k}=${spec[k]}`)
    .join(",");
}

// A kernel as people read it in profiles and censuses: its name, its version where it has one, then the rest of its
// spec, keys sorted, with what is off left out (false, 0, ""; every spec of a family has the same keys) and what is on
// by its key alone, e.g. "matmul reg16x8 bias,transB,vecY". The key stays the whole spec.
export function specLabel(name: string, spec: Spec): string {
  const fields = Object.keys(spec)
    .sort()
    .filter((k) => k !== "version" && spec[k] !== false && spec[k] !== 0 && spec[k] !== "")
    .map((k) => (spec[k] === true ? k : `${k}=${spec[k]}`));
  return [name, spec.version, fields.join(",")].filter((part) => part !== undefined && part !== "").join(" ");
}

export interface Kernel {
  name: string; // kernel family, e.g. "matmul"
  key: string; // name/specKey, for errors and DEBUG logs
  label: string; // specLabel, for profiles and censuses
  pipeline: GPUComputePipeline;
  layout: GPUBindGroupLayout; // the pipeline's group 0, fetched once (each getBindGroupLayout call costs ~2 us)
  groups: Map<string, GPUBindGroup>; // bind groups made for this kernel, by what they bind (see Batch.dispatch)
  // Indices into a dispatch's buffer list (binding - 1) that the WGSL declares read_write: the buffers a dispatch may
  // write, whose derived tensors it invalidates (engine/derived.ts).
  writable: number[];
  // Set by the first dispatch. llvmpipe compiles a shader when it first runs it, on the "GPU" timeline, so the
  // batch that holds a first dispatch takes longer than its work (see Batch.wait).
  dispatched: boolean;
}

// The compute pipelines of one device, by kernel name and spec. Compilation messages arrive asynchronously; the
// batch takes them at its next device-error check (takeErrors) and throws them with the kernels it ran.
export class PipelineCache {
  private kernels = new Map<string, Kernel>();
  private errors: string[] = [];

  constructor(
    private device: GPUDevice,
    private log: ((line: string) => void) | undefined, // DEBUG=2: every shader's WGSL when it is compiled
  ) {}

  get<S extends Spec>(name: string, spec: S, wgsl: (spec: S) => string): Kernel {
    const key = `${name}/${specKey(spec)}`;
    let kernel = this.kernels.get(key);
    if (kernel) return kernel;
    const code = wgsl(spec);
    this.log?.(`[wgsl ${key}]\n${code}`);
    const module = this.device.createShaderModule({ code, label: key });
    module.getCompilationInfo().then((info) => {
      const errors = info.messages.filter((m) => m.type === "error");
      if (errors.length === 0) return;
      const lines = errors.map((m) => `  ${key} ${m.lineNum}:${m.linePos}: ${m.message}`);
      this.errors.push(`shader compilation failed:\n${lines.join("\n")}\n--- WGSL of ${key} ---\n${numbered(code)}`);
    });
    const pipeline = this.device.createComputePipeline({ layout: "auto", compute: { module, entryPoint: "main" }, label: key });
    const layout = pipeline.getBindGroupLayout(0);
    kernel = { name, key, label: specLabel(name, spec), pipeline, layout, groups: new Map(), writable: writableBindings(code), dispatched: false };
    this.kernels.set(key, kernel);
    return kernel;
  }

  // The compile errors reported since the last call.
  takeErrors(): string[] {
    return this.errors.splice(0);
  }
}

// The storage bindings declared read_write, as indices into a dispatch's buffer list (binding 1 is index 0).
// Read from the WGSL rather than declared in each kernel's spec: the declaration is what the device enforces (a
// shader writes only read_write bindings), so it cannot omit a buffer the kernel writes, where a second list kept
// by hand in every kernel family, beside WGSL written in several styles, could, and a stale derived tensor would
// follow silently. It is parsed once per pipeline; WebGPU gives no reflection of a layout's access modes.
export function writableBindings(code: string): number[] {
  return [...code.matchAll(/@binding\((\d+)\)[^;]*\bread_write\b/g)].map((m) => Number(m[1]) - 1);
}

function numbered(code: string): string {
  return code
    .split("\n")
    .map((l, i) => `${String(i + 1).padStart(4)}  ${l}`)
    .join("\n");
}
