// `export`: refusals about the fine-tuned model it is given, as usage errors naming the flag. The round trips
// (merged and unmerged, every strategy) are test/peft/save.test.ts's; a study cell's export, test/study/runner.test.ts's.
import { mkdir, mkdtemp, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { exportCommand } from "../../cli/export.js";
import { UsageError } from "../../util/command.js";
import { loadVit } from "../../vit/load.js";
import { applyStrategy, parseStrategy } from "../../peft/strategy.js";
import { saveFinetuned, sha256File } from "../../peft/save.js";
import { useEngine } from "../helpers.js";

useEngine();

describe("export", () => {
  it("refuses a --heads other than the one the manifest records, where the base states none", async () => {
    const dir = await mkdtemp(join(tmpdir(), "peft-export-"));
    const base = "test/fixtures/vit-tiny.pth"; // states no head count: 2 and 4 both fit its width of 32
    const { model } = await loadVit(base, { heads: 2 });
    const strategy = parseStrategy("top-1");
    const finetuned = join(dir, "ft.safetensors");
    await saveFinetuned(finetuned, applyStrategy(model, strategy, 3), { strategyOptions: strategy, classes: 3, heads: 2, seed: 0, base: { file: base, sha256: await sha256File(base) }, hyperParameters: {} });
    const out = join(dir, "out.safetensors");
    await expect(exportCommand.run(["--base", base, "--finetuned", finetuned, "--out", out, "--heads", "4"])).rejects.toThrow(
      new UsageError(`--heads: finetuned: expected 2 heads, as the manifest of ${finetuned} states, got 4`),
    );
    await exportCommand.run(["--base", base, "--finetuned", finetuned, "--out", out]);
    expect((await loadVit(out)).model.config.heads).toBe(2);
  });

  it("refuses a folder as --base or --finetuned, and an --out that is an input under another path, naming the flag", async () => {
    const dir = await mkdtemp(join(tmpdir(), "peft-export-"));
    const base = "test/fixtures/vit-tiny.safetensors";
    const { model } = await loadVit(base);
    const strategy = parseStrategy("linear");
    const finetuned = join(dir, "ft.safetensors");
    await saveFinetuned(finetuned, applyStrategy(model, strategy, 3), { strategyOptions: strategy, classes: 3, seed: 0, base: { file: base, sha256: await sha256File(base) }, hyperParameters: {} });
    const out = join(dir, "out.safetensors");
    await mkdir(join(dir, "folder"));
    await expect(exportCommand.run(["--base", base, "--finetuned", join(dir, "folder"), "--out", out])).rejects.toThrow(`--finetuned: expected a file, got the folder ${join(dir, "folder")}`);
    await expect(exportCommand.run(["--base", dir, "--finetuned", finetuned, "--out", out])).rejects.toThrow(`--base: expected a file, got the folder ${dir}`);
    await symlink(finetuned, join(dir, "link.safetensors"));
    for (const other of [join(dir, "link.safetensors"), `${dir}/folder/../ft.safetensors`]) {
      await expect(exportCommand.run(["--base", base, "--finetuned", finetuned, "--out", other])).rejects.toThrow(
        new UsageError(`--out: expected a file other than --finetuned, which it would overwrite, got ${other}`),
      );
    }
  });
});
