// analysis.atSteps: every cell keeps its backbone at those steps (its trainable tensors and manifest, as the best
// checkpoint holds its own, and the optimiser's state: the last step's are the last checkpoint's), a resumed cell
// restores the one a kill between its checkpoint and that step's file left missing, and the analysis measures each
// kept backbone as it does the best checkpoint: the step that is the best checkpoint's gives the best checkpoint's
// numbers. A cell trained before the key named a step is analysed without it, and the log says how to get it. The
// optimiser's memory at a kept step against the step the weights show it took, and its cosine with gradient descent's
// next move.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseStudyConfig, type StudyConfig } from "../../study/config.js";
import { runExperiment } from "../../study/runner.js";
import { analysisFileNames, analyzeRun } from "../../study/analysis.js";
import type { RunAnalysis } from "../../study/analysis-results.js";
import { cellCheckpointPath, cellFolder, cellResultPath, cellStepPath } from "../../study/cells.js";
import { MANIFEST_KEY } from "../../peft/save.js";
import { LAST_CHECKPOINT, OPTIMIZER_STATE } from "../../train/checkpoint.js";
import { learningRate } from "../../train/schedule.js";
import { readSafetensors } from "../../vit/safetensors.js";
import { readJsonFile } from "../../util/json-file.js";
import { useEngine } from "../helpers.js";
import { MINI_CELLS, writeMiniStudy } from "./program.js";

useEngine();

let root: string;
let config: StudyConfig;
const out = () => join(root, "run");
const readAnalysis = async (dir = out()) => (await readJsonFile(join(dir, "analysis.json"), "test")) as RunAnalysis;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "analysis-steps-"));
  const study = await writeMiniStudy(root);
  // Four steps, checkpoints at 2 and 4: the best checkpoint is one of the kept steps.
  config = parseStudyConfig({ ...study, analysis: { images: 12, gridImages: 2, atSteps: [2, 4] } });
  const r = await runExperiment({ config, out: out() });
  expect(r.complete).toBe(true);
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe("analysis.atSteps in a study", () => {
  it("keeps each cell's backbone at each step with the optimiser's state, as the last checkpoint holds them, and the best checkpoint's manifest; the last step's is the last checkpoint's", async () => {
    for (const id of MINI_CELLS) {
      const best = await readSafetensors(cellCheckpointPath(out(), id));
      const last = await readSafetensors(join(cellFolder(out(), id), LAST_CHECKPOINT));
      for (const step of [2, 4]) {
        const kept = await readSafetensors(cellStepPath(out(), id, step));
        expect(kept.metadata[MANIFEST_KEY], id).toBe(best.metadata[MANIFEST_KEY]);
        expect(kept.metadata.step).toBe(String(step));
        expect([...kept.tensors.keys()].sort()).toEqual([...last.tensors.keys()].sort());
        expect([...kept.tensors.keys()].filter((name) => !name.startsWith(OPTIMIZER_STATE)).sort()).toEqual([...best.tensors.keys()].sort());
        expect([...kept.tensors.keys()].some((name) => name.startsWith(OPTIMIZER_STATE)), id).toBe(true);
        if (step === 4) for (const [name, t] of kept.tensors) expect(Buffer.from(t.data.buffer).equals(Buffer.from(last.tensors.get(name)!.data.buffer)), `${id} ${name}`).toBe(true);
      }
    }
  });

  it("measures each kept backbone as the best checkpoint's: the best step's numbers are the best checkpoint's", async () => {
    const a = await readAnalysis();
    expect(a.key.atSteps).toEqual([2, 4]);
    for (const c of a.cells) {
      expect(c.atSteps!.map((s) => s.step), c.id).toEqual([2, 4]);
      const result = (await readJsonFile(cellResultPath(out(), c.id), "test")) as { bestStep: number };
      const atBest = c.atSteps!.find((s) => s.step === result.bestStep)!;
      expect({ cka: atBest.cka, knn: atBest.knn, knnCorrect: atBest.knnCorrect, attention: atBest.attention, weights: atBest.weights, outputChange: atBest.outputChange, patchChange: atBest.patchChange }).toEqual({ cka: c.cka, knn: c.knn, knnCorrect: c.knnCorrect, attention: c.attention, weights: c.weights, outputChange: c.outputChange, patchChange: c.patchChange });
      // Step 4's output change from the original is its change up to step 2 and since, by the law of cosines.
      // So on the target-domain images.
      const [two, four] = c.atSteps!;
      for (const [change, since] of [["outputChange", "outputSince"], ["targetOutputChange", "targetOutputSince"]] as const) {
        const [w, u, n] = [four[change]!, two[change]!, four[since]!];
        const parts = [[w.embedding, u.embedding, n.embedding], ...w.blocks.map((v, i) => [v, u.blocks[i], n.blocks[i]] as const)] as const;
        for (const [whole, until, since] of parts) if (until > 0) expect(Math.abs(whole ** 2 - (since.change ** 2 + until ** 2 + 2 * since.change * until * since.turn)) / whole ** 2, `${c.id} ${change}`).toBeLessThan(1e-5);
      }
      // And the patch projection's along its patches' first direction and the rest (host float64).
      for (const set of ["source", "target"] as const) {
        for (const key of ["along", "rest"] as const) {
          const [whole, until, since] = [four.patchChange![set]![key], two.patchChange![set]![key], four.patchSince![set]![key]];
          if (until > 0) expect(Math.abs(whole ** 2 - (since.change ** 2 + until ** 2 + 2 * since.change * until * since.turn)) / whole ** 2, `${c.id} ${set} ${key}`).toBeLessThan(1e-9);
        }
      }
      // Gradient descent's next move in weight space where the cell trained original weights directly: full
      // fine-tuning's; LoRA's through its adapters and Block Expansion's new blocks are not parts of the original.
      expect([c.weightDescent !== undefined, four.weightMemory !== undefined], c.id).toEqual([c.strategy === "full", c.strategy === "full"]);
      if (c.outputChange.embedding > 0) expect(c.targetOutputChange!.embedding, c.id).not.toBe(c.outputChange.embedding);
      else expect(c.targetOutputChange!.embedding, c.id).toBe(0);
    }
    for (const s of a.strategies) {
      expect(s.atSteps!.map((t) => [t.step, t.seeds])).toEqual([[2, 1], [4, 1]]);
      const cell = a.cells.find((c) => c.strategy === s.strategy)!;
      expect(s.atSteps![1].ckaCls.map((m) => m.mean)).toEqual(cell.atSteps![1].cka.cls);
      expect(s.atSteps![1].knn.map((m) => m.mean)).toEqual(cell.atSteps![1].knn);
    }
  });

  it("writes analysis-steps.csv, a line per number with its step (each part's output since the step before too), and the figures", async () => {
    for (const f of analysisFileNames({ atSteps: [1] })) expect(existsSync(join(out(), f)), f).toBe(true);
    const csv = (await readFile(join(out(), "analysis-steps.csv"), "utf8")).trim().split("\n");
    expect(csv[0]).toBe("cell,strategy,lr,seed,step,measure,block,part,value");
    const a = await readAnalysis();
    const c = a.cells[0];
    expect(csv).toContain(`${c.id},${c.strategy},${c.lr},${c.seed},4,cka_cls,1,,${c.atSteps![1].cka.cls[1].toPrecision(6)}`);
    // Step 4's lines are step 2's and, for each part (the embeddings and 2 blocks), its output change since step 2
    // and its turn, on the source-domain images and on the target-domain ones.
    const at = (step: string) => csv.filter((l) => l.split(",")[4] === step);
    // And the patch projection's along its patches' first direction and the rest, since step 2 and its turn, on
    // either domain's images.
    expect(at("4").length - at("2").length).toBe(a.cells.length * (2 * 3 * 2 + 2 * 2 * 2));
    expect(csv).toContain(`${c.id},${c.strategy},${c.lr},${c.seed},4,patch_turn,along,transfer.test,${c.atSteps![1].patchSince!.target!.along.turn.toPrecision(6)}`);
    expect(csv).toContain(`${c.id},${c.strategy},${c.lr},${c.seed},4,output_turn,embedding,transfer.test,${c.atSteps![1].targetOutputSince!.embedding.turn.toPrecision(6)}`);
    const since = c.atSteps![1].outputSince!;
    expect([c.atSteps![0].outputSince, since.from]).toEqual([undefined, 2]);
    expect(csv).toContain(`${c.id},${c.strategy},${c.lr},${c.seed},4,output_turn,embedding,,${since.embedding.turn.toPrecision(6)}`);
    expect(csv).toContain(`${c.id},${c.strategy},${c.lr},${c.seed},4,output_change_since_previous,1,,${since.blocks[1].change.toPrecision(6)}`);
    const row = a.strategies.find((s) => s.strategy === c.strategy)!;
    expect(row.atSteps![1].outputSince!.from).toBe(2);
    expect(row.atSteps![0].outputSince).toBeUndefined();
    expect(await readFile(join(out(), "analysis-steps-turn.svg"), "utf8")).toContain(">Which parts turn back in what they compute<");
    for (const name of ["analysis-steps-cka", "analysis-steps-knn", "analysis-steps-output"]) {
      const svg = await readFile(join(out(), `${name}.svg`), "utf8");
      expect(svg, name).toContain(">steps on a symmetric log scale<");
      for (const s of a.strategies) expect(svg).toContain(`>${s.strategy}<`);
      expect(existsSync(join(out(), `${name}.png`))).toBe(true);
    }
  });

  it("measures anew an analysis.json without each part's output change since the kept step before, and says why", async () => {
    const a = await readAnalysis();
    const earlier = join(root, "earlier");
    await analyzeRun(out(), { out: earlier });
    const json = await readAnalysis(earlier);
    for (const c of json.cells) for (const t of c.atSteps!) delete t.outputSince;
    await writeFile(join(earlier, "analysis.json"), JSON.stringify(json));
    const lines: string[] = [];
    const again = await analyzeRun(out(), { out: earlier, reuse: true, log: (l) => lines.push(l) });
    expect(again.reused).toBe(false);
    expect(lines).toContain(`analysis: ${join(earlier, "analysis.json")} lacks each part's output change since the kept step before (a build before them): its cells are measured anew`);
    // And one without the target-domain images' (a later step's alone).
    const noTarget = await readAnalysis(earlier);
    for (const c of noTarget.cells) delete c.atSteps![1].targetOutputSince;
    await writeFile(join(earlier, "analysis.json"), JSON.stringify(noTarget));
    const third: string[] = [];
    await analyzeRun(out(), { out: earlier, reuse: true, log: (l) => third.push(l) });
    expect(third).toContain(`analysis: ${join(earlier, "analysis.json")} lacks each part's output change on the target-domain images (a build before them): its cells are measured anew`);
    // And one without the patch projection's change since the kept step before.
    const noPatch = await readAnalysis(earlier);
    for (const c of noPatch.cells) delete c.atSteps![1].patchSince;
    await writeFile(join(earlier, "analysis.json"), JSON.stringify(noPatch));
    const fourth: string[] = [];
    await analyzeRun(out(), { out: earlier, reuse: true, log: (l) => fourth.push(l) });
    expect(fourth).toContain(`analysis: ${join(earlier, "analysis.json")} lacks the patch projection's output change along its patches' first direction (a build before them): its cells are measured anew`);
    // As JSON: a part that had not moved by step 2 has no turn (NaN, null in the file).
    const since = (x: RunAnalysis) => JSON.stringify(x.cells.map((c) => c.atSteps![1].outputSince));
    expect(since(again.analysis)).toBe(since(a));
  });

  it("restores the kept backbone a kill left missing at the step training resumes from, to the byte", async () => {
    const id = MINI_CELLS[0];
    const path = cellStepPath(out(), id, 4);
    const before = await readFile(path);
    await rm(path);
    await rm(cellResultPath(out(), id)); // unfinished again: it resumes from its last checkpoint, at step 4
    const r = await runExperiment({ config, out: out() });
    expect(r.ran).toEqual([id]);
    expect((await readFile(path)).equals(before)).toBe(true);
  });

  it("analyses a cell without kept backbones at its best checkpoint alone, and says how to get them", async () => {
    const id = MINI_CELLS[1];
    for (const step of [2, 4]) await rm(cellStepPath(out(), id, step));
    const lines: string[] = [];
    const elsewhere = join(root, "analysis-without");
    await analyzeRun(out(), { out: elsewhere, log: (l) => lines.push(l) });
    expect(lines).toContain(`analysis: cell ${id} kept no backbone at step 2, 4 of analysis.atSteps (trained before they were asked for): delete ${cellFolder(out(), id)} to train it again with them`);
    const a = await readAnalysis(elsewhere);
    expect(a.cells.find((c) => c.id === id)!.atSteps).toEqual([]);
    const row = a.strategies.find((s) => a.cells.find((c) => c.id === id)!.strategy === s.strategy)!;
    expect(row.atSteps).toBeUndefined();
    expect(a.strategies.filter((s) => s.atSteps !== undefined)).toHaveLength(MINI_CELLS.length - 1);
  });

  it("makes the study's analysis anew where the backbones the cells keep are no longer those it measured", async () => {
    const id = MINI_CELLS[1]; // its kept backbones removed above
    expect((await readAnalysis()).cells.find((c) => c.id === id)!.atSteps!.map((t) => t.step)).toEqual([2, 4]);
    const lines: string[] = [];
    await runExperiment({ config, out: out(), log: (l) => lines.push(l) });
    expect(lines.some((l) => l.includes("is up to date"))).toBe(false);
    expect((await readAnalysis()).cells.find((c) => c.id === id)!.atSteps).toEqual([]);
    const again: string[] = [];
    await runExperiment({ config, out: out(), log: (l) => again.push(l) });
    expect(again.some((l) => l.includes("is up to date"))).toBe(true);
  });
});

describe("the optimiser's memory at consecutive kept steps", () => {
  // SGD with momentum mu: step t moved the weights by -lr_t buf_t, and the memory kept with it is -mu buf_t, so the
  // change since step t - 1 is lr_t / mu times the memory (each part's size) and, with D the change from the
  // original, the memory's turn at t is (|D_(t-1)| cos + |since|) / |D_t|, cos the since's turn: from the weights
  // alone, against what the analysis reads from the optimiser's state.
  it("is the last step taken scaled by mu / lr, its turn that step's against the change it made", async () => {
    const dir = join(root, "memory");
    const study = await writeMiniStudy(dir);
    // 32 training images: two full batches of 16, so the gradient's spread and the noise walk are numbers.
    const c = parseStudyConfig({ ...study, strategies: ["full"], analysis: { images: 32, gridImages: 2, atSteps: [2, 3] } });
    const lines: string[] = [];
    expect((await runExperiment({ config: c, out: join(dir, "run"), log: (l) => lines.push(l) })).complete).toBe(true);
    const a = await readAnalysis(join(dir, "run"));
    const [two, three] = a.cells[0].atSteps!;
    const csv = await readFile(join(dir, "run", "analysis-steps.csv"), "utf8");
    const lr = learningRate({ base: study.learningRates[0], warmup: c.training.warmupSteps, total: c.training.steps }, 2);
    expect(c.training.optimizer).toBe("sgd");
    for (const set of ["source", "target"] as const) {
      for (const part of ["along", "rest"] as const) {
        const [memory, since] = [three.patchMemory![set]![part], three.patchSince![set]![part]];
        const [until, whole] = [two.patchChange![set]![part], three.patchChange![set]![part]];
        expect(memory.change, `${set} ${part}`).toBeGreaterThan(0);
        expect(Math.abs(since.change - (lr / c.training.momentum) * memory.change) / since.change, `${set} ${part}`).toBeLessThan(1e-4);
        expect(Math.abs(memory.turn - (until * since.turn + since.change) / whole), `${set} ${part}`).toBeLessThan(1e-4);
      }
    }
    expect(two.patchMemory!.source.along.change).toBeGreaterThan(0);
    // So too in weight space, part by part, from the weight change alone: the step since step 2 is s = lr / mu times
    // the memory's size, and the memory's turn (d3^2 - d2^2 + s^2) / (2 s d3), d the part's relative weight change.
    const parts = (m: { embedding: number; blocks: number[]; norm: number }) => [m.embedding, ...m.blocks, m.norm];
    const memory = three.weightMemory!;
    const [d2, d3] = [parts(two.weights), parts(three.weights)];
    [memory.embedding, ...memory.blocks, memory.norm].forEach((m, i) => {
      const s = (lr / c.training.momentum) * m.change;
      expect(m.change, `part ${i}`).toBeGreaterThan(0);
      expect(Math.abs(m.turn - (d3[i] ** 2 - d2[i] ** 2 + s * s) / (2 * s * d3[i])), `part ${i}`).toBeLessThan(1e-4);
    });
    // And gradient descent's next move on them, at every kept step and the best checkpoint.
    expect([a.cells[0].weightDescent, two.weightDescent, three.weightDescent].every((d) => d && d.blocks.every((p) => p.change > 0))).toBe(true);
    expect(csv).toContain(`,3,weight_memory_turn,norm,,${memory.norm.turn.toPrecision(6)}`);
    expect(csv).toContain(`,2,weight_descent,1,,${two.weightDescent!.blocks[1].change.toPrecision(6)}`);
    expect(csv).toContain(`,2,weight_descent_spread,1,,${two.weightDescent!.blocks[1].spread!.toPrecision(6)}`);
    // What the batches' noise alone would have made of each part: the study's SGD walked with those spreads, its
    // change as a share of the observed one over the seeds.
    expect(two.weightDescent!.blocks[1].spread).toBeGreaterThan(0);
    const walk = three.noiseWalk!;
    expect([walk.embedding, ...walk.blocks, walk.norm].every((w) => w.change > 0 && w.memory > 0 && Math.abs(w.turn) <= 1)).toBe(true);
    expect(a.strategies[0].atSteps![1].noiseWalk!.blocks[1].share.mean).toBe(walk.blocks[1].change / three.weights.blocks[1]);
    expect(csv).toContain(`,3,noise_walk_memory,norm,,${walk.norm.memory.toPrecision(6)}`);
    expect(lines.some((l) => l.startsWith("analysis: what the batches' noise alone would have made of the weights each row trained directly"))).toBe(true);
    expect(await readFile(join(dir, "run", "analysis-steps-noise-walk.svg"), "utf8")).toContain(">How far the batches' noise alone would take each part<");
    expect(await readFile(join(dir, "run", "analysis-steps-weight-memory.svg"), "utf8")).toContain(">Where the optimiser's memory carries each part<");
    expect(await readFile(join(dir, "run", "analysis-steps-weight-descent.svg"), "utf8")).toContain(">Where the training loss pulls each part<");
    expect(csv).toContain(`,3,patch_memory_turn,rest,transfer.test,${three.patchMemory!.target!.rest.turn.toPrecision(6)}`);
    expect(csv).toContain(`,2,patch_memory,along,,${two.patchMemory!.source.along.change.toPrecision(6)}`);
    const row = a.strategies[0].atSteps!;
    expect(row[1].patchMemory!.source.along.turn.mean).toBe(three.patchMemory!.source.along.turn);
    expect(lines).toContain(`  full at step 3: ${[three.patchMemory!.source, three.patchMemory!.target!].map((x) => (["along", "rest"] as const).map((p) => `${x[p].change.toFixed(3)} (turn ${x[p].turn.toFixed(2)})`).join(" / ")).join("; ")}`);
    expect(await readFile(join(dir, "run", "analysis-steps-memory.svg"), "utf8")).toContain(">Where the optimiser's memory carries the patch projection<");
    // The memory's cosine with gradient descent's next move on each part; an analysis.json from before it is
    // measured anew.
    expect([memory.embedding, ...memory.blocks, memory.norm].every((p) => Math.abs(p.descentTurn!) <= 1)).toBe(true);
    expect(csv).toContain(`,3,weight_memory_descent_turn,0,,${memory.blocks[0].descentTurn!.toPrecision(6)}`);
    expect(await readFile(join(dir, "run", "analysis-steps-memory-descent.svg"), "utf8")).toContain(">Whether the optimiser's memory goes the loss's way<");
    const bare = { ...a, cells: a.cells.map((c) => ({ ...c, atSteps: c.atSteps!.map((m) => ({ ...m, weightMemory: { embedding: m.weightMemory!.embedding, blocks: m.weightMemory!.blocks.map(({ descentTurn: _, ...p }) => p), norm: m.weightMemory!.norm } })) })) };
    await writeFile(join(dir, "run", "analysis.json"), JSON.stringify(bare));
    const again: string[] = [];
    await runExperiment({ config: c, out: join(dir, "run"), log: (l) => again.push(l) });
    expect(again.some((l) => l.includes("lacks the optimiser's memory's cosine with gradient descent's next move"))).toBe(true);
    expect((await readAnalysis(join(dir, "run"))).cells[0].atSteps![1].weightMemory).toEqual(memory);
  });
});

