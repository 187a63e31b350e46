// DinoHead: DINO's parameter names and shapes, its initialisation (zero biases, trunc-normal 0.02 MLP weights (bounds ±2 absolute, as DINO's utils.trunc_normal_), the
// last layer uniform in ±1/sqrt(bottleneck)), outputs that are cosines (a row's outputs scale with neither the
// input nor the prototypes' lengths), and refused sizes. Its values against PyTorch: test/train/dino.test.ts.
import { describe, expect, it } from "vitest";
import { Tensor, tidyAsync } from "../../engine/tensor.js";
import { noGrad } from "../../autograd/tape.js";
import { buildDinoHead, dinoHeadInitialiser } from "../../train/dino-head.js";
import { expectClose, randn, useEngine } from "../helpers.js";

useEngine();

describe("DinoHead", () => {
  it("is named, shaped and initialised as DINO's", async () => {
    const head = buildDinoHead(12, { hidden: 40, bottleneck: 16, prototypes: 30 }, dinoHeadInitialiser(3));
    expect(head.parameters().map(([n, t]) => `${n}:${t.shape.join("x")}`)).toEqual([
      "head.mlp.0.weight:40x12", "head.mlp.0.bias:40", "head.mlp.2.weight:40x40", "head.mlp.2.bias:40",
      "head.mlp.4.weight:16x40", "head.mlp.4.bias:16", "head.last_layer.weight_v:30x16",
    ]);
    for (const [name, t] of head.parameters()) {
      const v = await t.data();
      if (name.endsWith("bias")) expect(v.every((x) => x === 0)).toBe(true);
      else if (name.endsWith("weight_v")) expect(Math.max(...v.map(Math.abs))).toBeLessThanOrEqual(0.25);
      else {
        const std = Math.sqrt(v.reduce((a, x) => a + x * x, 0) / v.length);
        expect(std).toBeGreaterThan(0.015);
        expect(std).toBeLessThan(0.025);
        expect(Math.max(...v.map(Math.abs))).toBeLessThan(0.2); // DINO truncates at ±2 absolute: untruncated at this std
      }
    }
    expect(head.prototypes).toBe(30);
  });

  it("outputs cosines between the normalised bottleneck and each prototype", async () => {
    const head = buildDinoHead(6, { hidden: 8, bottleneck: 4, prototypes: 5 }, dinoHeadInitialiser(1));
    const x = randn(2 * 6, 2, 10);
    const [y, yScaled] = await tidyAsync(async () =>
      noGrad(async () => {
        const a = head.forward(Tensor.fromArray(x, [2, 6]));
        head.lastLayer.write(Float32Array.from(await head.lastLayer.data(), (v) => v * 7));
        const b = head.forward(Tensor.fromArray(x, [2, 6]));
        return [await a.data(), await b.data()];
      }),
    );
    expect(y.every((v) => Math.abs(v) <= 1 + 1e-6)).toBe(true);
    expectClose("outputs with the prototypes scaled by 7", yScaled, y, { atol: 1e-6, rtol: 1e-5 });
  });

  it("refuses sizes that are not positive integers", () => {
    expect(() => buildDinoHead(6, { hidden: 0, bottleneck: 4, prototypes: 5 }, dinoHeadInitialiser(1))).toThrow("dino head.hidden: expected an integer >= 1, got 0");
  });
});
