// train/mixed-precision.ts: the precision key's errors (an unknown value, f16 without shader-f16, int8 without i8
// subgroup matrices, each naming the key and the adapter; int8 products that fail their check on the device), no scaler in f32 or int8, a step's scaling record (the scale copied when the step is encoded, not when it
// is read) and the columns read from it. The loops' use of them: test/train/train.test.ts, dino-pretrain.test.ts.
import { beforeEach, describe, expect, it } from "vitest";
import { Tensor } from "../../engine/tensor.js";
import { runtime } from "../../engine/runtime.js";
import { checkPrecisionOnDevice, lossScalerFor, scalingColumns, scalingRecord } from "../../train/mixed-precision.js";
import { skipWithoutF16, useEngine } from "../helpers.js";
import { useEmulatedSubgroupMatrices } from "../subgroup-matrix-emulation.js";

useEngine();

describe("mixed precision in the loops", () => {
  it("checks the precision, naming the key and, for f16 without shader-f16 or int8 without i8 subgroup matrices, the adapter", async () => {
    await expect(checkPrecisionOnDevice("pretrain", "precision", "f32")).resolves.toBeUndefined();
    await expect(checkPrecisionOnDevice("pretrain", "precision", undefined)).resolves.toBeUndefined();
    await expect(checkPrecisionOnDevice("pretrain", "precision", "bf16")).rejects.toThrow('pretrain: expected precision (precision) to be one of f32, f16, int8, int8x2, got "bf16"');
    const { gpu } = runtime();
    const had = gpu.features.delete("shader-f16");
    try {
      await expect(checkPrecisionOnDevice("dino", "precision", "f16")).rejects.toThrow(`dino: precision "f16" (precision) needs the adapter's shader-f16 feature, which ${gpu.adapterInfo.description} lacks; use "f32"`);
    } finally {
      if (had) gpu.features.add("shader-f16");
    }
    const configs = gpu.subgroupMatrixConfigs;
    try {
      gpu.subgroupMatrixConfigs = [{ componentType: "f16", resultComponentType: "f32", M: 16, N: 16, K: 16 }];
      await expect(checkPrecisionOnDevice("train", "training.precision", "int8")).rejects.toThrow(`train: precision "int8" (training.precision) needs subgroup matrices of i8 into i32, which ${gpu.adapterInfo.description} lacks (\`info\` lists them); use "f32"`);
      await expect(checkPrecisionOnDevice("train", "training.precision", "int8x2")).rejects.toThrow('train: precision "int8x2" (training.precision) needs subgroup matrices of i8 into i32');
    } finally {
      gpu.subgroupMatrixConfigs = configs;
    }
  });

  it("records the factor and the scale as they are when the step is encoded; counts a zero factor as a skip", async () => {
    expect(lossScalerFor("f32", undefined)).toBeUndefined();
    expect(lossScalerFor("int8", undefined)).toBeUndefined();
    const scaler = lossScalerFor("f16", { init: 8 })!;
    const record = scalingRecord(Tensor.fromArray([0], [1]), scaler);
    scaler.scale.write(new Float32Array([4])); // a later step's change
    expect(Array.from(await record.data())).toEqual([0, 8]);
    expect(scalingColumns([0, 8], 3)).toEqual({ lossScale: 8, skippedSteps: 4 });
    expect(scalingColumns([0.125, 8], 3)).toEqual({ lossScale: 8, skippedSteps: 3 });
    record.dispose();
    scaler.dispose();
  });
});

describe("the int8 precisions' check on the device, subgroup matrices emulated", () => {
  useEmulatedSubgroupMatrices({ matmul: { left: "Ws", right: "Ws", uniform: "p.M" } });
  beforeEach((ctx) => skipWithoutF16(ctx));

  it("refuses a precision whose int8 products fail their check (kernels/tensor-core-check.ts), and passes one whose do not", async () => {
    const rt = runtime();
    const get = rt.pipelines.get;
    // mma64i8's first digit product scaled by 2^-11 instead of 2^-12: wrong products.
    rt.pipelines.get = ((name, spec, wgsl) =>
      name === "matmul" && spec.version === "mma64i8" ? get(name, { ...spec, wrong: true }, (s) => wgsl(s).replaceAll("* 0.000244140625", "* 0.00048828125")) : get(name, spec, wgsl)) as typeof get;
    try {
      await expect(checkPrecisionOnDevice("train", "training.precision", "int8")).rejects.toThrow(
        /^train: precision "int8" \(training\.precision\): this adapter's int8 products failed their check on the device \(mma64i8 \(nn, int8\) at 37x100x45: y\[\d+, \d+\] = \S+, expected \S+ within \S+\); use "f32"$/,
      );
    } finally {
      rt.pipelines.get = get;
    }
    await expect(checkPrecisionOnDevice("train", "training.precision", "int8x2")).resolves.toBeUndefined();
  }, 120_000);
});
