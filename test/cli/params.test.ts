// `params`: the paper's Table 1 column, a checkpoint's counts (--weights), and flags it refuses as usage errors.
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { params } from "../../cli/params.js";
import { UsageError } from "../../util/command.js";
import { loadVit } from "../../vit/load.js";
import { applyStrategy, countParameters, parseStrategy } from "../../peft/strategy.js";
import { saveFinetuned, sha256File } from "../../peft/save.js";
import { useEngine } from "../helpers.js";

afterEach(() => vi.restoreAllMocks());

async function json(...argv: string[]): Promise<{ rows: { strategy: string; paper: number; trainable: number; total: number }[] }> {
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

  it("refuses strategies that do not fit the model, naming the flag, instead of counting them", async () => {
    const refused: [string, string][] = [
      ["top-99", 'expected top-K with 0 <= K <= depth 12, got "top-99"'],
      ["lora-r0", 'expected lora-rR with 1 <= R <= width 768, got "lora-r0"'],
      ["lora-r769", 'expected lora-rR with 1 <= R <= width 768, got "lora-r769"'],
      ["block@99", 'expected block@POS with distinct positions in 1..depth 12, got "block@99"'],
      ["block-p5", 'expected block-pP with P >= 1 dividing depth 12, got "block-p5"'],
    ];
    for (const [name, says] of refused) {
      await expect(params.run(["--strategies", `full,${name}`])).rejects.toThrow(new UsageError(`--strategies: strategy: ${says}`));
    }
    expect((await json("--model", "vit-s16", "--strategies", "lora-r384")).rows[0].strategy).toBe("lora-r384"); // rank = width fits
  });

  it("counts top-K with and without the final norm", async () => {
    const { rows } = await json("--strategies", "top-3,top-3-frozen-norm");
    expect(rows.map((r) => [r.strategy, r.trainable])).toEqual([
      ["top-3", 21342052],
      ["top-3-frozen-norm", 21340516],
    ]);
  });

  it("takes block@ with several positions in the comma-separated list", async () => {
    const { rows } = await json("--strategies", "block@4,8,linear,block@12");
    expect(rows.map((r) => [r.strategy, r.trainable])).toEqual([
      ["block@4,8", 2 * 7087872 + 76900], // two ViT-B/16 blocks and the head
      ["linear", 76900],
      ["block@12", 7087872 + 76900],
    ]);
  });
});

describe("params --weights", () => {
  useEngine();
  const BASE = "test/fixtures/vit-tiny.safetensors"; // 2 blocks, width 32; its metadata states 2 heads

  it("counts for a checkpoint's ViT what applying each strategy to it marks trainable", async () => {
    const strategies = ["full", "top-1", "linear", "lora-r4", "block-p1", "block@1,2"];
    const { rows } = await json("--weights", BASE, "--classes", "5", "--strategies", strategies.join(","));
    for (const [i, name] of strategies.entries()) {
      const { model } = await loadVit(BASE);
      const trainable = countParameters(applyStrategy(model, parseStrategy(name), 5));
      expect([rows[i].strategy, rows[i].trainable, rows[i].total], name).toEqual([name, trainable, model.parameters().reduce((n, [, t]) => n + t.size, 0)]);
      model.dispose();
    }
  });

  it("keeps of the default list the strategies that fit the checkpoint, and refuses --model beside it", async () => {
    const { rows } = await json("--weights", BASE);
    expect(rows.map((r) => r.strategy)).toEqual(["full", "linear", "lora-r4", "lora-r8", "lora-r16", "block-p1", "block-p2"]);
    await expect(params.run(["--weights", BASE, "--model", "vit-s16"])).rejects.toThrow(new UsageError("--model, --weights: expected one of them, got both"));
    await expect(params.run(["--heads", "2"])).rejects.toThrow(new UsageError("--heads, --key: expected only with --weights"));
    await expect(params.run(["--weights", BASE, "--heads", "3"])).rejects.toThrow(/^--heads: checkpoint: expected 2 heads, as the file's metadata states, got 3/);
  });

  it("refuses a fine-tuned model's trainable tensors (a study cell's best.safetensors) as features does, saying to export them", async () => {
    const dir = await mkdtemp(join(tmpdir(), "peft-params-"));
    const { model } = await loadVit(BASE);
    const strategy = parseStrategy("lora-r2");
    const weights = join(dir, "best.safetensors");
    await saveFinetuned(weights, applyStrategy(model, strategy, 3), { strategyOptions: strategy, classes: 3, seed: 0, base: { file: BASE, sha256: await sha256File(BASE) }, hyperParameters: {} });
    await expect(params.run(["--weights", weights])).rejects.toThrow(
      `params: ${weights} holds a fine-tuned model's trainable tensors (lora-r2, fine-tuned from ${BASE}), not a checkpoint: write one with \`export --base ${BASE} --finetuned ${weights} --out OUT.safetensors --merge\``,
    );
  });
});
