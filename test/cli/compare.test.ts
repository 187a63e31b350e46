// `compare`: its two run folders and flags, what it prints and writes, and what it refuses as usage errors. The
// comparison itself: test/study/run-comparison.test.ts.
import { afterAll, afterEach, describe, expect, it, vi } from "vitest";
import { mkdtempSync } from "node:fs";
import { readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { compare } from "../../cli/compare.js";
import { HelpRequested, UsageError } from "../../util/command.js";
import { answeredCell, cells, config, writeRunFolder } from "../study/fixture.js";

const root = mkdtempSync(join(tmpdir(), "compare-cli-"));
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});
afterEach(() => vi.restoreAllMocks());

const finished = cells.map((c) => answeredCell(c, 30 + c.seed, 20 + c.seed));

describe("compare", () => {
  it("refuses other than two run folders, unknown flags and bad strategies as usage errors", async () => {
    await expect(compare.run([])).rejects.toThrow(new UsageError("expected two run folders, RUN_A RUN_B, got 0"));
    await expect(compare.run(["runs/a", "--json"])).rejects.toThrow(new UsageError("expected two run folders, RUN_A RUN_B, got 1 (runs/a)"));
    await expect(compare.run(["runs/a", "runs/b", "runs/c"])).rejects.toThrow(new UsageError("expected two run folders, RUN_A RUN_B, got 3 (runs/a runs/b runs/c)"));
    await expect(compare.run(["runs/a", "runs/b", "--rate", "0.1"])).rejects.toThrow(new UsageError("unknown flag --rate"));
    await expect(compare.run(["runs/a", "runs/b", "--strategies", "ful"])).rejects.toThrow(UsageError);
    await expect(compare.run(["runs/a", "runs/b", "--rates", "0.1"])).rejects.toThrow(new UsageError('flag --rates: expected two learning rates > 0, A\'s and B\'s, got "0.1"'));
    await expect(compare.run(["runs/a", "runs/b", "--rates", "0.1,x"])).rejects.toThrow(new UsageError('flag --rates: expected two learning rates > 0, A\'s and B\'s, got "0.1,x"'));
    await expect(compare.run(["runs/a", "runs/b", "--rates", "0.1,0.01", "--table-rates"])).rejects.toThrow(new UsageError("flags --table-rates and --rates: expected one of them, got both"));
    await expect(compare.run(["runs/a", "runs/b", "--figure", "runs/"])).rejects.toThrow(new UsageError("flag --figure: expected the figure's path without its extension, e.g. runs/a-b-curve, got runs/ (a folder)"));
    await expect(compare.run(["--help"])).rejects.toThrow(HelpRequested);
  });

  it("names a folder that is not a run", async () => {
    await expect(compare.run([join(root, "nothing"), join(root, "nothing")])).rejects.toThrow(`compare: expected a run folder holding config.json (experiment's), got ${join(root, "nothing")} (it does not exist)`);
  });

  it("prints the table, writes it with --out, prints JSON with --json, the curves with --curve and draws them with --figure", async () => {
    const [a, b] = [await writeRunFolder(join(root, "a"), config, finished), await writeRunFolder(join(root, "b"), config, finished)];
    const log = vi.spyOn(console, "log").mockImplementation(() => {});
    const out = join(root, "a-b.md");
    await compare.run([a, b, "--strategies", "linear", "--out", out]);
    const markdown = String(log.mock.calls[0][0]);
    expect(markdown).toContain(`A: ${a}; B: ${b}.`);
    expect(markdown).toContain("| linear | 0.01 | 2 | 76.25 / 51.25 | 76.25 / 51.25 | 0.00 [0.00, 0.00] | 0.00 [0.00, 0.00] |");
    expect(markdown).not.toContain("| full |");
    expect(await readFile(out, "utf8")).toBe(markdown);
    await compare.run([a, b, "--table-rates", "--json"]);
    const json = JSON.parse(String(log.mock.calls[1][0]));
    expect(json.pairs.map((p: { strategy: string; lrA: number }) => [p.strategy, p.lrA])).toEqual([["full", 0.1], ["linear", 0.1]]);
    expect(json.tableRates).toBe(true);
    // --curve: each pair's forgetting curve, step by step.
    await compare.run([a, b, "--table-rates", "--curve"]);
    expect(String(log.mock.calls[2][0])).toContain("| linear | 0.1 | 60 | 2 | ");
    await compare.run([a, b, "--curve", "--json"]);
    expect(JSON.parse(String(log.mock.calls[3][0])).curveSteps).toEqual(config.knn.atSteps);
    // --figure: the curves drawn (--curve implied), in a folder made for them.
    const figure = join(root, "figures", "a-b");
    await compare.run([a, b, "--figure", figure]);
    expect(String(log.mock.calls[4][0])).toContain("Along fine-tuning (knn.atSteps)");
    for (const ext of ["svg", "png", "vl.json"]) expect((await stat(`${figure}.${ext}`)).size, ext).toBeGreaterThan(0);
    expect(await readFile(`${figure}.svg`, "utf8")).toContain(">every strategy's points the same in both runs<"); // a run against its copy
  });
});
