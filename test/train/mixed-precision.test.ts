// train/mixed-precision.ts: the precision key's errors (an unknown value, f16 without shader-f16, int8 without i8
// subgroup matrices, each naming the key and the adapter), no scaler in f32 or int8, a step's scaling record (the scale copied when the step is encoded, not when it
// is read) and the columns read from it. The loops' use of them: test/train/train.test.ts, dino-pretrain.test.ts.
import { describe, expect, it } from "vitest";
import { Tensor } from "../../engine/tensor.js";
import { runtime } from "../../engine/runtime.js";
import { checkPrecision, lossScalerFor, scalingColumns, scalingRecord } from "../../train/mixed-precision.js";
import { useEngine } from "../helpers.js";

useEngine();

describe("mixed precision in the loops", () => {
  it("checks the precision, naming the key and, for f16 without shader-f16 or int8 without i8 subgroup matrices, the adapter", () => {
    expect(() => checkPrecision("pretrain", "precision", "f32")).not.toThrow();
    expect(() => checkPrecision("pretrain", "precision", undefined)).not.toThrow();
    expect(() => checkPrecision("pretrain", "precision", "bf16")).toThrow('pretrain: expected precision (precision) to be one of f32, f16, int8, int8x2, got "bf16"');
    const { gpu } = runtime();
    const had = gpu.features.delete("shader-f16");
    try {
      expect(() => checkPrecision("dino", "precision", "f16")).toThrow(`dino: precision "f16" (precision) needs the adapter's shader-f16 feature, which ${gpu.adapterInfo.description} lacks; use "f32"`);
    } finally {
      if (had) gpu.features.add("shader-f16");
    }
    const configs = gpu.subgroupMatrixConfigs;
    try {
      gpu.subgroupMatrixConfigs = [{ componentType: "f16", resultComponentType: "f32", M: 16, N: 16, K: 16 }];
      expect(() => checkPrecision("train", "training.precision", "int8")).toThrow(`train: precision "int8" (training.precision) needs subgroup matrices of i8 into i32, which ${gpu.adapterInfo.description} lacks (\`info\` lists them); use "f32"`);
      expect(() => checkPrecision("train", "training.precision", "int8x2")).toThrow('train: precision "int8x2" (training.precision) needs subgroup matrices of i8 into i32');
      gpu.subgroupMatrixConfigs = [{ componentType: "i8", resultComponentType: "i32", M: 16, N: 16, K: 32 }];
      expect(() => checkPrecision("train", "training.precision", "int8")).not.toThrow();
      expect(() => checkPrecision("train", "training.precision", "int8x2")).not.toThrow();
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
