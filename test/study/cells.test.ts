// study/cells.ts: the cells of a config in their numbered order, where a run folder keeps each, and the selections
// --cells and --shard read.
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { cellCheckpointPath, cellFolder, cellResultPath, cellsFolder, cellsOf, formatCellList, parseCellList, parseShard } from "../../study/cells.js";
import { DEFAULT_STUDY, parseStudyConfig } from "../../study/config.js";

describe("cellsOf", () => {
  it("orders strategies, then rates, then seeds", () => {
    const config = parseStudyConfig({ ...DEFAULT_STUDY, strategies: ["full", "lora-r4"], learningRates: [0.1, 0.01], seeds: [0, 1] });
    expect(cellsOf(config).map((c) => c.id)).toEqual([
      "full_lr0.1_s0", "full_lr0.1_s1", "full_lr0.01_s0", "full_lr0.01_s1",
      "lora-r4_lr0.1_s0", "lora-r4_lr0.1_s1", "lora-r4_lr0.01_s0", "lora-r4_lr0.01_s1",
    ]);
  });
});

// The layout docs/STUDY.md gives users and Slurm's job scripts rely on: cells/<id>/result.json, best.safetensors.
describe("a cell's files in a run folder", () => {
  it("are cells/<id>/ with result.json and best.safetensors in it", () => {
    expect(cellsFolder("runs/a")).toBe(join("runs/a", "cells"));
    expect(cellFolder("runs/a", "full_lr0.1_s0")).toBe(join("runs/a", "cells", "full_lr0.1_s0"));
    expect(cellResultPath("runs/a", "full_lr0.1_s0")).toBe(join("runs/a", "cells", "full_lr0.1_s0", "result.json"));
    expect(cellCheckpointPath("runs/a", "full_lr0.1_s0")).toBe(join("runs/a", "cells", "full_lr0.1_s0", "best.safetensors"));
  });
});

describe("parseCellList", () => {
  it("reads numbers and ranges, sorted and each once", () => {
    expect(parseCellList("3,7-9", 10)).toEqual([3, 7, 8, 9]);
    expect(parseCellList(" 9, 1-2 ,2,10 ", 10)).toEqual([1, 2, 9, 10]);
    expect(parseCellList("5-5", 5)).toEqual([5]);
  });

  it("refuses what is not a list of cells of the study, naming the flag, the range and the part", () => {
    const cases: [string, string][] = [
      ["", "no cell named"],
      [",", "no cell named"],
      ["0", "0 is outside 1-10"],
      ["11", "11 is outside 1-10"],
      ["3-12", "3-12 is outside 1-10"],
      ["9-7", "the range 9-7 runs backwards"],
      ["a", '"a" is neither a number nor a range a-b'],
      ["1,,2", '"" is neither a number nor a range a-b'],
      ["1-2-3", '"1-2-3" is neither a number nor a range a-b'],
      ["-3", '"-3" is neither a number nor a range a-b'],
      ["2.5", '"2.5" is neither a number nor a range a-b'],
    ];
    for (const [text, why] of cases) {
      expect(() => parseCellList(text, 10), text).toThrow(`--cells: expected cell numbers from 1 to 10 such as "3,7-9", got "${text}": ${why}`);
    }
  });

  it("reads back what formatCellList writes", () => {
    expect(formatCellList([1, 2, 3, 7, 9, 10])).toBe("1-3,7,9-10");
    expect(formatCellList([4])).toBe("4");
    for (const list of [[1], [1, 3, 5], [2, 3, 4, 5, 6], [1, 2, 4, 5, 7]]) expect(parseCellList(formatCellList(list), 10)).toEqual(list);
  });
});

describe("parseShard", () => {
  it("interleaves the cells into n shares that cover every cell once", () => {
    expect(parseShard("1/3", 10)).toEqual([1, 4, 7, 10]);
    expect(parseShard("3/3", 10)).toEqual([3, 6, 9]);
    expect(parseShard(" 2 / 4 ", 3)).toEqual([2]);
    expect(parseShard("4/4", 3)).toEqual([]);
    const all = [1, 2, 3, 4].flatMap((i) => parseShard(`${i}/4`, 13)).sort((a, b) => a - b);
    expect(all).toEqual(Array.from({ length: 13 }, (_, i) => i + 1));
  });

  it("refuses anything but i/n with 1 <= i <= n", () => {
    for (const text of ["", "2", "0/3", "4/3", "1/0", "a/b", "1/2/3", "-1/2", "1.5/2", "1/99999999999999999999"]) {
      expect(() => parseShard(text, 10), text).toThrow(/^--shard: expected i\/n with 1 <= i <= n/);
    }
  });
});
