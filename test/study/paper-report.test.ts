// study/run-folder.ts and study/paper-report.ts from hand-made run folders (the cells of ./fixture.ts written as a
// runner writes them): a run still going reports what it has and names its missing cells, a folder without a
// baseline reports nothing, which figures are drawn and why the others are not, the combined table.
import { afterAll, describe, expect, it } from "vitest";
import { mkdtempSync } from "node:fs";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { configJson } from "../../study/config.js";
import { type CellOutcome, summarize } from "../../study/results.js";
import { readRunFolder } from "../../study/run-folder.js";
import { combinedTableCsv, combinedTableMarkdown, planReport } from "../../study/paper-report.js";
import { baseline, baselineWithAnswers, cells, cellsWithAnswers, config, notes } from "./fixture.js";

const root = mkdtempSync(join(tmpdir(), "paper-report-"));
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

// A run folder of the fixture's config with `name`, transfer data `dataset` and these cells finished.
async function runFolder(name: string, outcomes: CellOutcome[], o: { dataset?: string; baseline?: boolean; model?: string; val?: unknown; knnVal?: unknown; selectBy?: string } = {}): Promise<string> {
  const dir = join(root, name);
  const json = JSON.parse(JSON.stringify(configJson(config)));
  json.name = name;
  if (o.val) json.transfer.val = o.val;
  if (o.knnVal) json.knn.val = o.knnVal;
  if (o.selectBy) json.selectBy = o.selectBy;
  if (o.dataset) json.transfer.train.dataset = json.transfer.test.dataset = o.dataset;
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, "config.json"), JSON.stringify(json));
  if (o.baseline !== false) await writeFile(join(dir, "baseline.json"), JSON.stringify(baseline));
  for (const c of outcomes) {
    await mkdir(join(dir, "cells", c.id), { recursive: true });
    await writeFile(join(dir, "cells", c.id, "result.json"), JSON.stringify(c));
  }
  if (o.model) await writeFile(join(dir, "results.json"), JSON.stringify({ notes: { backbone: "b", model: o.model, data: {}, imageSize: 28 } }));
  return dir;
}

describe("a run folder read back", () => {
  it("reports the finished cells of a run still going and names the missing ones", async () => {
    const run = await readRunFolder(await runFolder("partial", cells.slice(0, 5)));
    expect(run.results!.cells.map((c) => c.id)).toEqual(cells.slice(0, 5).map((c) => c.id));
    expect(run.missing).toEqual(cells.slice(5).map((c) => c.id));
    expect(run.results!.table.map((r) => [r.strategy.kind, r.seeds])).toEqual([["full", 2], ["linear", 1]]);
    // The fixture's backbone is pre-trained: its model names it.
    expect(run.model).toBe("ViT (patch 7, width 64, depth 4)");
    const md = combinedTableMarkdown([run]);
    expect(md).toContain(`- partial (${run.dir}): ViT (patch 7, width 64, depth 4), fashion-mnist; rates by transfer, 5 of 8 cells finished; missing: ${cells.slice(5).map((c) => c.id).join(", ")}.`);
  });

  it("reports nothing of a run without a baseline, and refuses a folder that is not a run", async () => {
    const run = await readRunFolder(await runFolder("starting", [], { baseline: false }));
    expect(run.results).toBeUndefined();
    expect(run.missing.length).toBe(8);
    expect(combinedTableMarkdown([run])).toContain("nothing finished yet (no baseline.json)");
    await expect(readRunFolder(join(root, "nowhere"))).rejects.toThrow(`report: expected a run folder holding config.json (experiment's), or a pretrain folder (DINO's metrics.json from its first checkpoint on, or a finished run's backbone.json), got ${join(root, "nowhere")} (it does not exist)`);
    await mkdir(join(root, "empty"));
    await expect(readRunFolder(join(root, "empty"))).rejects.toThrow(`report: expected a run folder holding config.json (experiment's), or a pretrain folder (DINO's metrics.json from its first checkpoint on, or a finished run's backbone.json), got ${join(root, "empty")}`);
  });
});

describe("the report's plan", () => {
  it("draws Figure 2 across datasets of the main backbone, Figure 4 for another backbone, and says why not Figure 3", async () => {
    const a = await readRunFolder(await runFolder("b-cifar100", cells, { dataset: "cifar100", model: "ViT-B/16" }));
    const b = await readRunFolder(await runFolder("b-cifar10", cells.filter((c) => c.strategy === "full"), { dataset: "cifar10", model: "ViT-B/16" }));
    const s = await readRunFolder(await runFolder("s-cifar100", cells, { dataset: "cifar100", model: "ViT-S/16" }));
    const plan = planReport([s, a, b]);
    expect(plan.figures.map((f) => [f.name, f.about])).toEqual([
      ["figure2", "2 panel(s): CIFAR-100 (b-cifar100); CIFAR-10 (b-cifar10); strategies full; left out, not in every panel: linear"],
      ["figure4", "2 panel(s): ViT-S/16, CIFAR-100 (s-cifar100); ViT-B/16, CIFAR-100 (b-cifar100); strategies full, linear"],
    ]);
    expect(plan.notDrawn).toEqual(["figure3: expected a run with Block Expansion at 2 or more numbers of blocks and 2 or more learning rates, got none"]);
    // One backbone on one dataset: neither Figure 2 nor 4.
    expect(planReport([a]).notDrawn).toEqual([
      "figure2: expected runs of one backbone on 2 or more transfer datasets, got only CIFAR-100 (each run folder has its own figure2.*)",
      "figure3: expected a run with Block Expansion at 2 or more numbers of blocks and 2 or more learning rates, got none",
      "figure4: expected runs of a second backbone beside ViT-B/16 (e.g. ViT-S/16), got one backbone",
    ]);
    // Mean ± std over seeds in the table, the images that chose in the CSV.
    expect(combinedTableMarkdown([a])).toContain("| ViT-B/16 | CIFAR-100 | full | 210.0K | 91.00 ± 1.41 | 41.00 ± 1.41 | – | 66.00 | 0.1 | test | b-cifar100 |");
    expect(combinedTableCsv([a]).split("\n")[2]).toBe("ViT-B/16,CIFAR-100,b-cifar100,full,210000,91.00,1.41,41.00,1.41,66.00,0.1,2,transfer.test,,,transfer,,,,");
  });
});

describe("the report's figures", () => {
  it("names a panel's strategy of one seed among strategies of several: its missing error bars are no spread of 0", async () => {
    const one = (c: CellOutcome) => c.strategy === "full" || c.seed === 0;
    const a = await readRunFolder(await runFolder("seeds-cifar100", cells.filter(one), { dataset: "cifar100", model: "ViT-B/16" }));
    const b = await readRunFolder(await runFolder("seeds-cifar10", cells, { dataset: "cifar10", model: "ViT-B/16" }));
    const [figure2] = planReport([a, b]).figures;
    expect((figure2.spec.title as { subtitle: string[] }).subtitle).toEqual([
      "each strategy at its selected learning rate",
      "mean over 2 seeds; error bars: ± 1 std over seeds",
      "one seed, so no error bars: linear (CIFAR-100)",
    ]);
  });
});

describe("the combined table", () => {
  it("says which images chose the checkpoints: val, with its accuracy in the CSV, or test", async () => {
    const withVal = cells.map((c) => ({ ...c, valAccuracy: c.transferAccuracy - 10 }));
    const run = await readRunFolder(await runFolder("on-val", withVal, { val: { fraction: 0.2 }, model: "ViT-B/16" }));
    expect(combinedTableMarkdown([run])).toContain("| ViT-B/16 | fashion-mnist | full | 210.0K | 91.00 ± 1.41 | 41.00 ± 1.41 | – | 66.00 | 0.1 | val | on-val |");
    expect(combinedTableCsv([run]).split("\n")[2]).toBe("ViT-B/16,fashion-mnist,on-val,full,210000,91.00,1.41,41.00,1.41,66.00,0.1,2,transfer.val,81.00,1.41,transfer,,,,");
    expect(combinedTableMarkdown([run])).toContain("on-val (");
    expect(combinedTableMarkdown([run])).toContain("ViT-B/16, fashion-mnist; rates by transfer, all 8 cells finished.");
  });

  it("gives each row's forgetting with its interval where the run kept its answers, over the queries alone with one seed", async () => {
    const read = await readRunFolder(await runFolder("with-answers", cells, { model: "ViT-B/16" }));
    const run = { ...read, results: summarize(config, baselineWithAnswers, cellsWithAnswers, notes) };
    const d = run.results.table[0].knnChange!;
    const shown = (x: number) => `${x > 0 ? "+" : ""}${x.toFixed(2)}`;
    expect(combinedTableMarkdown([run])).toContain(`| 41.00 ± 1.41 | ${shown(d.mean)} [${shown(d.lo)}, ${shown(d.hi)}] | 66.00 |`);
    expect(combinedTableCsv([run]).split("\n")[2].endsWith(`,${d.mean.toFixed(2)},${d.lo.toFixed(2)},${d.hi.toFixed(2)}`)).toBe(true);
    const one = { ...read, results: summarize({ ...config, seeds: [0] }, baselineWithAnswers, cellsWithAnswers.filter((c) => c.seed === 0), notes) };
    expect(Number.isFinite(one.results.table[0].knnChange!.lo)).toBe(true);
    expect(combinedTableMarkdown([one])).toContain("with one seed over the queries alone");
    expect(combinedTableMarkdown([read])).toContain("| 41.00 ± 1.41 | – | 66.00 |"); // no answers kept
  });

  it("says which rule chose each run's rates, and that knn.val's images chose where the rule weighs source k-NN on them", async () => {
    const knnVal = { ...config.knn.queries, skipPerClass: 200 };
    const dir = await runFolder("knee-on-knn-val", cells, { knnVal, selectBy: "knee" });
    for (const c of cells) await writeFile(join(dir, "cells", c.id, "knn-val.json"), JSON.stringify({ spec: knnVal, data: {}, knn: c.knn, seconds: 1 }));
    const run = await readRunFolder(dir);
    const md = combinedTableMarkdown([run]);
    expect(md).toContain("| 0.1 | test, knn.val | knee-on-knn-val |");
    expect(md).toContain("; rates by knee, all 8 cells finished.");
    expect(md).toContain("at the learning rate its run's selectBy chose");
    expect(combinedTableCsv([run]).split("\n")[2]).toMatch(/,transfer\.test,,,knee,knn\.val,,,$/);
    const onQueries = await readRunFolder(await runFolder("mean-on-queries", cells, { selectBy: "mean" }));
    expect(combinedTableCsv([onQueries]).split("\n")[2]).toMatch(/,mean,knn\.queries,,,$/);
    expect(combinedTableMarkdown([onQueries])).toContain("| test | mean-on-queries |");
  });
});
