// `params`: the paper's Table 1 column, and flags it refuses as usage errors.
import { afterEach, describe, expect, it, vi } from "vitest";
import { params } from "../../cli/params.js";
import { UsageError } from "../../util/command.js";

afterEach(() => vi.restoreAllMocks());

async function json(...argv: string[]): Promise<{ rows: { strategy: string; paper: number; trainable: number }[] }> {
  const log = vi.spyOn(console, "log").mockImplementation(() => {});
  await params.run([...argv, "--json"]);
  return JSON.parse(String(log.mock.calls[0][0]));
}

describe("params", () => {
  it("gives the paper's counts for ViT-B/16 with 100 classes", async () => {
    const { rows } = await json("--strategies", "full,linear,lora-r8,block-p1");
    expect(rows.map((r) => [r.strategy, r.paper])).toEqual([
      ["full", 85875556],
      ["linear", 76900],
      ["lora-r8", 448712], // the paper counts the classifier twice; the exact count is 371,812
      ["block-p1", 7164772],
    ]);
  });

  it("refuses a class count below 1, an unknown model or strategy and stray arguments, as usage errors", async () => {
    await expect(params.run(["--classes", "0"])).rejects.toThrow(new UsageError("--classes: expected an integer >= 1, got 0"));
    await expect(params.run(["--model", "vit-x"])).rejects.toThrow(UsageError);
    await expect(params.run(["--strategies", "lora-rx"])).rejects.toThrow(UsageError);
    await expect(params.run(["extra"])).rejects.toThrow(new UsageError('unexpected argument "extra"'));
  });
});
