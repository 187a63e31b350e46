// `bench attention`: attention forward and backward (autograd/ops.ts attention: the fused kernels of
// kernels/attention.ts and kernels/attention-mma.ts, or "unfused" from matmul and softmax), ms and GFLOP/s per
// version and shape.
//   shapes    vit-s: ViT-S/16 at batch 64, (B, N, H, D) = (64, 197, 6, 64); small: a 32 px, patch 4, width 192
//             model at batch 32, (32, 65, 3, 64); default: the default study's model (28 px, patch 7, width 64,
//             2 heads) at batch 32, (32, 17, 2, 32); or --shapes
//   versions  the versions of kernels/registry.ts ATTENTION this adapter can run at the shape (default), or --version
//   precision f32, or f16 (--precision f16: mixed precision, whose operands mma and unfused read in f16), or int8
//             and int8x2 (unfused's products as int8 slices); reg and tiled compute in f32
// GFLOP/s counts the useful work per wall second at the median run: forward 4*B*H*N^2*D (S = QK^T and PV), backward
// 10*B*H*N^2*D (dP, dV, dQ, dK and the recomputed S; the backward's second recomputation of S is not counted).
// Each case is validated once against the float64 CPU attention of bench/ref/attention.ts (shared with the tests) on
// one (b, h) slice (the last, so that the batch and head offsets are exercised), in f16 at the tolerance of
// test/kernels/attention-mma.test.ts; then warmed up and timed --reps times, each run a few calls (4e11 FLOP's worth
// on GPUs, 4e9 on CPU drivers, at most 100) ending with the GPU idle, with the case's own wait estimate
// (bench/harness.ts timeCalls); the median per call is reported.
import type { Command } from "../util/command.js";
import { UsageError } from "../util/command.js";
import { parseArgs } from "../util/args.js";
import { initEngine, deviceLine } from "../engine/runtime.js";
import { Tensor, tidy, tidyAsync } from "../engine/tensor.js";
import * as ops from "../autograd/ops.js";
import { Rng } from "../util/random.js";
import { ATTENTION, availableVersions, isVersionOf } from "../kernels/registry.js";
import { callsPerRun, timeCalls } from "./harness.js";
import { attentionSliceBackwardRef, attentionSliceRef } from "./ref/attention.js";
import { noGrad } from "../autograd/tape.js";
import { PRECISIONS, type Precision, withPrecision } from "../autograd/precision.js";
import { checkPrecisionOnDevice } from "../train/mixed-precision.js";

export const FLAGS = { json: "boolean", version: "list", shapes: "list", reps: "int", warmup: "int", precision: "string" } as const;

// (B, N, H, D)
const ATTENTION_SHAPES: Record<string, number[]> = {
  "vit-s": [64, 197, 6, 64],
  small: [32, 65, 3, 64],
  default: [32, 17, 2, 32],
};

// As test/kernels/attention.test.ts, and attention-mma.test.ts for f16 operands; int8 and int8x2 (unfused's products
// as int8 slices; reg and tiled compute in f32) as f16, as attention.test.ts checks them.
const F16_TOL = { atol: 4e-3, rtol: 4e-3 };
const TOL: Record<Precision, { atol: number; rtol: number }> = { f32: { atol: 2e-5, rtol: 1e-4 }, f16: F16_TOL, int8: F16_TOL, int8x2: F16_TOL };

interface AttentionPass {
  pass: "forward" | "backward";
  flops: number;
  run: () => Tensor; // encodes one call; the caller disposes the result (e.g. in a tidy)
  check: () => Promise<string | undefined>; // an error message, or undefined when the result matches the reference
}

// The forward and backward of one version at shape (B, N, H, D), on fixed random inputs, through autograd/ops.ts
// attention (which runs the fused kernels or composes "unfused"); the backward pass reruns the recorded backward
// of one forward, in `precision`. Call inside a scope: everything it makes is disposed with it.
function attentionCase([B, N, H, D]: number[], version: string, precision: Precision): AttentionPass[] {
  const C = H * D;
  const rng = new Rng(1);
  const qkvData = rng.fill(B * N * 3 * C, () => rng.normal(0, 1));
  const doutData = rng.fill(B * N * C, () => rng.normal(0, 1));
  const qkv = Tensor.fromArray(qkvData, [B, N, 3 * C]).requireGrad();
  const dout = Tensor.fromArray(doutData, [B, N, C]);
  const forward = () => withPrecision(precision, () => ops.attention(qkv, H, { version }));
  const o = forward();
  const backward = () => o.node!.backward(dout)[0]!;
  const flops = 4 * B * H * N * N * D;
  const shape = { B, N, H, D };
  const scale = 1 / Math.sqrt(D);
  const ref = () => attentionSliceRef(qkvData, shape, scale, B - 1, H - 1);
  return [
    {
      pass: "forward",
      flops,
      run: () => noGrad(forward),
      check: async () => {
        const last = (B - 1) * N; // token 0 of the last batch entry
        return compare("o", await o.data(), ref().o, D, TOL[precision], (n, d) => (last + n) * C + (H - 1) * D + d);
      },
    },
    {
      pass: "backward",
      flops: 2.5 * flops,
      run: backward,
      check: async () => {
        const dqkv = backward();
        const got = await dqkv.data();
        dqkv.dispose();
        const want = attentionSliceBackwardRef(qkvData, doutData, shape, scale, B - 1, H - 1, ref().P);
        const at = (part: number) => (n: number, d: number) => ((B - 1) * N + n) * 3 * C + part * C + (H - 1) * D + d;
        const tol = TOL[precision];
        return compare("dq", got, want.dq, D, tol, at(0)) ?? compare("dk", got, want.dk, D, tol, at(1)) ?? compare("dv", got, want.dv, D, tol, at(2));
      },
    },
  ];
}

// The first element where `got` (read at index(token, d)) differs from `want` (N, width), as a message.
function compare(name: string, got: Float32Array, want: Float64Array, width: number, tol: { atol: number; rtol: number }, index: (n: number, d: number) => number): string | undefined {
  for (let n = 0; n * width < want.length; n++) {
    for (let d = 0; d < width; d++) {
      const w = want[n * width + d];
      const x = got[index(n, d)];
      if (!(Math.abs(x - w) <= tol.atol + tol.rtol * Math.abs(w))) return `${name}[token ${n}, ${d}] of the last (b, h): expected ${w}, got ${x}`;
    }
  }
  return undefined;
}

export const attention: Command = {
  summary: "attention forward and backward (fused reg, tiled, mma; unfused): ms and GFLOP/s per version and shape",
  usage: `usage: node dist/run.js bench attention [--version LIST] [--shapes LIST] [--precision ${PRECISIONS.join("|")}] [--reps N] [--warmup N] [--json]

  --version  ${ATTENTION.versions.join(",")} (default: all this adapter can run; on CPU drivers unfused is the default
             past 64 tokens, else reg; tiled on GPUs)
  --shapes   ${Object.entries(ATTENTION_SHAPES).map(([k, s]) => `${k} (B, N, H, D) = (${s.join(", ")})`).join(", ")} (default: all)
  --precision f16: mixed precision, q, k, v, dO, P and dS in f16 where the version is mma, unfused's products'
             operands too; int8, int8x2: unfused's products as int8 slices (reg and tiled compute in f32 and are
             timed as such); default f32
  --reps     timed runs per case, median reported (default 5)
  --warmup   untimed runs first (default 1)
  --json     print the rows as JSON`,
  async run(argv) {
    const flags = parseArgs(argv, FLAGS);
    const shapes = flags.shapes ?? Object.keys(ATTENTION_SHAPES);
    for (const v of flags.version ?? []) if (!isVersionOf(ATTENTION, v)) throw new UsageError(`--version: unknown "${v}"; choose from ${ATTENTION.versions.join(", ")}`);
    for (const s of shapes) if (!(s in ATTENTION_SHAPES)) throw new UsageError(`--shapes: unknown "${s}"; choose from ${Object.keys(ATTENTION_SHAPES).join(", ")}`);
    const reps = flags.reps ?? 5;
    const warmup = flags.warmup ?? 1;
    if (reps < 1 || warmup < 0) throw new UsageError(`expected --reps >= 1 and --warmup >= 0, got ${reps} and ${warmup}`);
    const precision = (flags.precision ?? "f32") as Precision;
    if (!PRECISIONS.includes(precision)) throw new UsageError(`--precision: expected one of ${PRECISIONS.join(", ")}, got "${precision}"`);
    await initEngine();
    await checkPrecisionOnDevice("bench attention", "--precision", precision);
    const rows: Record<string, unknown>[] = [];
    if (!flags.json) {
      console.log(deviceLine());
      console.log("version  shape   (B, N, H, D)        pass             ms   GFLOP/s");
    }
    for (const version of flags.version ?? ATTENTION.versions) {
      for (const name of shapes) {
        const shape = ATTENTION_SHAPES[name];
        const [B, N, H, D] = shape;
        const runnable: string[] = availableVersions(ATTENTION, { B, N, H, D, inputs: precision });
        if (!flags.version && !runnable.includes(version)) continue; // asked for by name, it may fail and say why
        await tidyAsync(async () => {
          for (const pass of attentionCase(shape, version, precision)) {
            const error = await pass.check();
            if (error) throw new Error(`bench attention: ${version} ${name} ${pass.pass} failed validation: ${error}`);
            // Calls per timed run enough that the wait does not dominate (bench/harness.ts), each call's outputs
            // disposed by its own tidy.
            const ms = await timeCalls(() => tidy(() => void pass.run()), callsPerRun(pass.flops, "FLOP"), { warmup, reps });
            const row = { version, precision, shape: name, B: shape[0], N: shape[1], H: shape[2], D: shape[3], pass: pass.pass, ms, gflops: pass.flops / ms / 1e6 };
            rows.push(row);
            if (!flags.json) {
              console.log(
                `${version.padEnd(8)} ${name.padEnd(7)} ${`(${shape.join(", ")})`.padEnd(19)} ${pass.pass.padEnd(9)} ` +
                  `${ms.toFixed(1).padStart(10)} ${row.gflops.toFixed(2).padStart(9)}`,
              );
            }
          }
        });
      }
    }
    if (flags.json) console.log(JSON.stringify({ device: deviceLine(), rows }, null, 2));
  },
};
