// A strategy with a linear probe first (-lpft, LP-FT): each cell trains its head alone for linearProbe's steps at its
// rate, the backbone frozen, in the cell's probe/ folder, then fine-tunes from that head. The probe's checkpoint holds
// the head alone, as linear probing's cell of the seed at that rate does, bit for bit; the fine-tuning starts at a
// lower loss than the same cell from a drawn head; the manifest records
// the probe; a cell killed after its probe, or with its probe lost, resumes to the same bytes; the config names a
// missing or unused linearProbe and a probe no longer than the warm-up; the interpolation with the head "probe"
// moves an -lpft cell's head from its own probe's.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { existsSync } from "node:fs";
import { cp, mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { configJson, parseStudyConfig, type StudyConfig } from "../../study/config.js";
import { runExperiment } from "../../study/runner.js";
import { strategyName } from "../../peft/strategy.js";
import { readSafetensors, writeSafetensors } from "../../vit/safetensors.js";
import { analyzeRun } from "../../study/analysis.js";
import { useEngine } from "../helpers.js";
import { writeSynthetic } from "../train/synthetic.js";
import { miniStudy } from "./program.js";

useEngine();

let root: string;
let config: StudyConfig;
const run = () => join(root, "run");
const PROBED = "full-lpft_lr0.05_s0";
const PROBE = { lr: 0.1, steps: 4 };
const cellFile = (dir: string, id: string, ...name: string[]) => join(dir, "cells", id, ...name);
const json = async (path: string) => JSON.parse(await readFile(path, "utf8"));

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "lpft-test-"));
  await writeSynthetic(join(root, "data"), { size: 8, perClass: { train: 16, test: 8 }, seed: 4, noise: 160 });
  const mini = miniStudy(join(root, "data"), join(root, "cache"));
  config = parseStudyConfig({
    ...mini,
    knn: { ...mini.knn, atSteps: [0, 2, 4] },
    strategies: ["full", "full-lpft", "linear"],
    learningRates: { full: [0.05], "full-lpft": [0.05], linear: [PROBE.lr] },
    linearProbe: PROBE,
  });
  const r = await runExperiment({ config, out: run() });
  expect(r.complete).toBe(true);
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe("a strategy with a linear probe first (-lpft)", () => {
  it("is a row of its own, training the same tensors, its probe recorded in the manifest", async () => {
    const results = await json(join(run(), "results.json"));
    expect(results.table.map((row: { strategy: string }) => row.strategy)).toEqual(["full", "full-lpft", "linear"]);
    const cell = (id: string) => results.cells.find((c: { id: string }) => c.id === id);
    expect(cell(PROBED).trainableParams).toBe(cell("full_lr0.05_s0").trainableParams);
    const manifest = async (id: string) => JSON.parse((await readSafetensors(cellFile(run(), id, "best.safetensors"))).metadata.manifest);
    expect((await manifest(PROBED)).hyperParameters.linearProbe).toEqual(PROBE);
    expect((await manifest(PROBED)).strategy).toBe("full-lpft");
    expect((await manifest("full_lr0.05_s0")).hyperParameters).not.toHaveProperty("linearProbe");
    expect(existsSync(cellFile(run(), "full_lr0.05_s0", "probe"))).toBe(false);
  });

  it("trains the head alone in probe/ at the probe's rate, and fine-tunes from it: its first loss is below the drawn head's", async () => {
    const probe = await readSafetensors(cellFile(run(), PROBED, "probe", "last.safetensors"));
    expect([...probe.tensors.keys()].filter((n) => !n.startsWith("optimizer.")).sort()).toEqual(["head.bias", "head.weight"]);
    const rows = (await json(cellFile(run(), PROBED, "probe", "metrics.json"))).rows as { step: number; lr: number; loss: number }[];
    expect(rows.map((r) => r.step)).toEqual([1, 2, 3, 4]);
    expect(Math.max(...rows.map((r) => r.lr))).toBe(PROBE.lr);
    const first = async (id: string) => (await json(cellFile(run(), id, "metrics.json"))).rows[0].loss as number;
    // The probe starts from the head the cell drew, on the cell's first batch: the same loss as the drawn head's.
    expect(rows[0].loss).toBe(await first("full_lr0.05_s0"));
    // The probe is linear probing's cell of the same seed at the probe's rate, bit for bit.
    const linear = await readSafetensors(cellFile(run(), `linear_lr${PROBE.lr}_s0`, "last.safetensors"));
    for (const name of ["head.weight", "head.bias"]) expect(Array.from(probe.tensors.get(name)!.data), name).toEqual(Array.from(linear.tensors.get(name)!.data));
    // The fine-tuning starts from the probe's head, on that batch again: lower.
    expect(await first(PROBED)).toBeLessThan(await first("full_lr0.05_s0"));
  });

  it("resumes to the same bytes when killed after its probe, and when its probe was lost", async () => {
    const bytes = async (dir: string, name: string) => readFile(cellFile(dir, PROBED, name));
    for (const [name, lose] of [
      ["after-probe", async (dir: string) => {
        for (const f of await readdir(join(dir, "cells", PROBED))) if (f !== "probe") await rm(cellFile(dir, PROBED, f), { recursive: true });
      }],
      // With the curve's last point lost too, the rerun loads the last checkpoint to measure it: the probe must be
      // trained again before that, on the backbone as it was at step 0.
      ["probe-lost", async (dir: string) => {
        await rm(cellFile(dir, PROBED, "probe"), { recursive: true });
        await rm(cellFile(dir, PROBED, "result.json"));
        const curve = await json(cellFile(dir, PROBED, "knn-curve.json"));
        await writeFile(cellFile(dir, PROBED, "knn-curve.json"), JSON.stringify({ ...curve, points: curve.points.filter((p: { step: number }) => p.step !== 4) }));
      }],
    ] as const) {
      const dir = join(root, name);
      await cp(run(), dir, { recursive: true });
      await lose(dir);
      const r = await runExperiment({ config, out: dir });
      expect(r.ran, name).toEqual([PROBED]);
      for (const f of ["best.safetensors", "last.safetensors"]) expect((await bytes(dir, f)).equals(await bytes(run(), f)), `${name}: ${f}`).toBe(true);
      expect((await readFile(cellFile(dir, PROBED, "probe", "last.safetensors"))).equals(await readFile(cellFile(run(), PROBED, "probe", "last.safetensors"))), `${name}: the probe`).toBe(true);
    }
  });

  it("moves an -lpft cell's head from its own probe's in the interpolation with the head \"probe\", other cells' from linear probing's", async () => {
    // A copy whose linear probing cell's head is zeroed: full's interpolation reads it, full-lpft's its own probe.
    const zeroed = join(root, "zeroed-linear");
    await cp(run(), zeroed, { recursive: true });
    const linearBest = cellFile(zeroed, `linear_lr${PROBE.lr}_s0`, "best.safetensors");
    const { tensors, metadata } = await readSafetensors(linearBest);
    for (const [name, t] of tensors) if (name.startsWith("head.")) tensors.set(name, { shape: t.shape, data: new Float32Array(t.data.length) });
    await writeSafetensors(linearBest, tensors, metadata);
    const atZero = async (dir: string, out: string) => {
      const { analysis } = await analyzeRun(dir, { out: join(root, out), strategies: ["full", "full-lpft"], interpolate: [0], interpolateHead: "probe" });
      return Object.fromEntries(analysis.cells.map((c) => [c.strategy, c.interpolation!.points[0].transferCorrect.bits]));
    };
    const [before, after] = [await atZero(run(), "probe-heads"), await atZero(zeroed, "probe-heads-zeroed")];
    expect(after["full-lpft"]).toBe(before["full-lpft"]);
    expect(after.full).not.toBe(before.full);
    // Its own probe is required.
    await rm(cellFile(zeroed, PROBED, "probe"), { recursive: true });
    await expect(analyzeRun(zeroed, { out: join(root, "no-own-probe"), interpolate: [0], interpolateHead: "probe" })).rejects.toThrow(
      `analyze: the head "probe" moves cell ${PROBED}'s head from its own linear probe's, and ${cellFile(zeroed, PROBED, "probe", "last.safetensors")} is missing; delete ${join(zeroed, "cells", PROBED)} to train the cell again`,
    );
  });

  it("needs linearProbe with an -lpft strategy, refuses it without one, and a probe no longer than the warm-up", () => {
    const json = JSON.parse(JSON.stringify(configJson(config)));
    const problems = (overrides: Record<string, unknown>, base: Record<string, unknown> = json) => {
      try {
        parseStudyConfig({ ...base, ...overrides });
        return "";
      } catch (e) {
        return (e as Error).message;
      }
    };
    const { linearProbe: _, ...without } = json;
    expect(problems({}, without)).toContain("linearProbe: missing (full-lpft train a linear probe first: its lr, and its steps where not training.steps)");
    expect(problems({ strategies: ["full"], learningRates: [0.05] })).toContain("linearProbe: expected an -lpft strategy to use it, got none (a linear probe first is a strategy's -lpft suffix)");
    expect(problems({ linearProbe: { lr: 0, steps: 1, extra: 2 } })).toContain("linearProbe.lr: expected a number > 0, got 0");
    expect(problems({ linearProbe: { lr: 0, steps: 1, extra: 2 } })).toContain("linearProbe.extra: unknown key (known keys: lr, steps, headNorm)");
    expect(problems({ linearProbe: { lr: 0.5, headNorm: -1 } })).toContain('linearProbe.headNorm: expected a number > 0 or "drawn", got -1');
    expect(problems({ linearProbe: { lr: 0.5, headNorm: "drawn" } })).toBe("");
    expect(problems({ linearProbe: { lr: 0.5, steps: 1 } })).toContain("linearProbe.steps: expected more than training.warmupSteps (1), got 1");
    expect(problems({ linearProbe: { lr: 0.5 } })).toBe("");
    expect(strategyName(parseStudyConfig({ ...json }).strategies[1])).toBe("full-lpft");
  });
});
