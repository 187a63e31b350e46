// DINO's schedules against values printed by utils.py cosine_scheduler (numpy, copied from facebookresearch/dino)
// and DINOLoss's teacher temperature table (np.linspace warm-up, then constant).
import { describe, expect, it } from "vitest";
import { cosineAt, teacherTemperatureAt } from "../../train/dino-schedules.js";
import { expectClose } from "../helpers.js";

const TOL = { atol: 1e-12, rtol: 1e-12 };

describe("DINO schedules", () => {
  it("cosineAt is cosine_scheduler with a warm-up from a start value", () => {
    // cosine_scheduler(0.5, 0.01, epochs=2, niter_per_ep=5, warmup_epochs=1, start_warmup_value=0.1)
    const want = [0.1, 0.2, 0.3, 0.4, 0.5, 0.5, 0.45320916362186214, 0.33070916362186215, 0.1792908363781379, 0.05679083637813787];
    expectClose("lr", want.map((_, i) => cosineAt(0.5, 0.01, 10, i, 5, 0.1)), want, TOL);
  });

  it("cosineAt without warm-up: the weight decay's rise 0.04 -> 0.4", () => {
    const want = [0.04, 0.05782560377756457, 0.10777183566542797, 0.17994623188786338, 0.2600537681121366, 0.33222816433457203, 0.38217439622243543];
    expectClose("weight decay", want.map((_, i) => cosineAt(0.04, 0.4, 7, i)), want, TOL);
    expect(cosineAt(0.04, 0.4, 7, 100)).toBeCloseTo(0.38217439622243543, 12); // past the end: the last value
  });

  it("teacherTemperatureAt warms up linearly, then holds", () => {
    const want = [0.04, 0.055, 0.07, 0.07, 0.07];
    expectClose("teacher temperature", want.map((_, i) => teacherTemperatureAt(0.04, 0.07, 3, i)), want, TOL);
    expect(teacherTemperatureAt(0.04, 0.07, 0, 0)).toBe(0.07);
  });

  it("refuses a warm-up as long as the run", () => {
    expect(() => cosineAt(1, 0, 5, 0, 5)).toThrow("schedule: expected 0 <= warm-up steps < total steps, got 5 and 5");
  });
});
