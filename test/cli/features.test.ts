// The `features` command contract, with the research dumps: attention probabilities and block outputs as .npy.
import { copyFile, mkdir, mkdtemp, readFile, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it, vi } from "vitest";
import { features } from "../../cli/features.js";
import { UsageError } from "../../util/command.js";
import { readNpy, writeNpy } from "../../data/npy.js";
import { readSafetensors, writeSafetensors } from "../../vit/safetensors.js";
import { expectClose, useEngine } from "../helpers.js";
import { loadVit } from "../../vit/load.js";
import { applyStrategy, parseStrategy } from "../../peft/strategy.js";
import { saveFinetuned, sha256File } from "../../peft/save.js";

useEngine();
const FIX = "test/fixtures/";

describe("features command", () => {
  it("warns where the head count is a guess (width / 64): a copy of the shipped backbone away from its backbone.json", async () => {
    const shipped = "backbones/dino-fashion-mnist-50ep-grid/backbone.safetensors"; // width 64, 2 heads, stated beside it
    const dir = await mkdtemp(join(tmpdir(), "peft-features-"));
    await copyFile(shipped, join(dir, "copy.safetensors"));
    await writeNpy(join(dir, "x.npy"), new Float32Array(3 * 28 * 28), [1, 3, 28, 28]);
    const said = async (weights: string, ...more: string[]) => {
      const err = vi.spyOn(console, "error").mockImplementation(() => {});
      await features.run(["--weights", weights, "--input", join(dir, "x.npy"), "--out", join(dir, "f.npy"), ...more]);
      const lines = err.mock.calls.map((c) => String(c[0])).filter((l) => l.includes("attention heads"));
      err.mockRestore();
      return lines;
    };
    expect(await said(join(dir, "copy.safetensors"))).toEqual([
      `warning: ${join(dir, "copy.safetensors")}: 1 attention heads (width / 64: the checkpoint states no head count; give --heads if the model has another count)`,
    ]);
    expect(await said(join(dir, "copy.safetensors"), "--heads", "2")).toEqual([`${join(dir, "copy.safetensors")}: 2 attention heads (given)`]);
    expect((await said(shipped))[0]).toMatch(/^backbones\/.*: 2 attention heads \(.*backbone\.json\)$/);
  });

  it("writes the CLS features, attention maps and block outputs", async () => {
    const io = (await readSafetensors(FIX + "vit-tiny-io.safetensors")).tensors;
    const dir = await mkdtemp(join(tmpdir(), "peft-features-"));
    await writeNpy(join(dir, "x.npy"), io.get("x")!.data, [2, 3, 16, 16]);
    await features.run([
      "--weights", FIX + "vit-tiny.pth", "--input", join(dir, "x.npy"), "--out", join(dir, "f.npy"),
      "--heads", "2", "--batch", "1", "--dump-attention", "0,1", "--dump-blocks", "1",
    ]);
    const f = await readNpy(join(dir, "f.npy"));
    expect(f.dtype).toBe("float32");
    expect(f.shape).toEqual([2, 32]);
    expectClose("features", f.data as Float32Array, io.get("features")!.data, { atol: 1e-5, rtol: 1e-4 });
    const att = await readNpy(join(dir, "attention.1.npy"));
    expect(att.shape).toEqual([2, 2, 17, 17]); // (N, H, T, T), T = 16 patches + CLS
    const a = att.data as Float32Array;
    for (let row = 0; row < 2 * 2 * 17; row++) {
      const s = a.subarray(row * 17, row * 17 + 17).reduce((x, y) => x + y, 0);
      expect(Math.abs(s - 1)).toBeLessThan(1e-5);
    }
    const block = await readNpy(join(dir, "block.1.npy"));
    expect(block.shape).toEqual([2, 17, 32]);
    expect((await readNpy(join(dir, "attention.0.npy"))).shape).toEqual([2, 2, 17, 17]);
  });

  it("rejects missing flags and blocks that do not exist", async () => {
    await expect(features.run(["--input", "x.npy", "--out", "f.npy"])).rejects.toThrow(UsageError);
    await expect(features.run(["--weights", "w.safetensors", "--input", "x.npy", "--out", "f.txt"])).rejects.toThrow(new UsageError("--out: expected a file name ending in .npy, got f.txt"));
    const io = (await readSafetensors(FIX + "vit-tiny-io.safetensors")).tensors;
    const dir = await mkdtemp(join(tmpdir(), "peft-features-"));
    await writeNpy(join(dir, "x.npy"), io.get("x")!.data, [2, 3, 16, 16]);
    await expect(
      features.run(["--weights", FIX + "vit-tiny.safetensors", "--input", join(dir, "x.npy"), "--out", join(dir, "f.npy"), "--heads", "2", "--dump-attention", "5"]),
    ).rejects.toThrow("block 5 does not exist: the model has 2 blocks");
    await writeNpy(join(dir, "bad.npy"), new Float32Array(2 * 16 * 16), [2, 1, 16, 16]);
    await expect(
      features.run(["--weights", FIX + "vit-tiny.safetensors", "--input", join(dir, "bad.npy"), "--out", join(dir, "f.npy"), "--heads", "2"]),
    ).rejects.toThrow("expected float32 (N, 3, H, W), got float32 (2, 1, 16, 16)");
  });

  it("refuses a checkpoint with a non-finite weight, naming the tensor, unless --allow-nonfinite", async () => {
    const dir = await mkdtemp(join(tmpdir(), "peft-features-"));
    const { tensors } = await readSafetensors(FIX + "vit-tiny.safetensors");
    tensors.get("blocks.1.mlp.fc1.weight")!.data.fill(NaN);
    const weights = join(dir, "nan.safetensors");
    await writeSafetensors(weights, tensors);
    const io = (await readSafetensors(FIX + "vit-tiny-io.safetensors")).tensors;
    await writeNpy(join(dir, "x.npy"), io.get("x")!.data, [2, 3, 16, 16]);
    const argv = ["--weights", weights, "--input", join(dir, "x.npy"), "--out", join(dir, "f.npy"), "--heads", "2"];
    await expect(features.run(argv)).rejects.toThrow(`vit: ${weights}: expected finite weights, got blocks.1.mlp.fc1.weight[0] = NaN`);
    const warn = vi.spyOn(console, "error").mockImplementation(() => {});
    await features.run([...argv, "--allow-nonfinite"]);
    expect(warn.mock.calls.map((c) => String(c[0])).join("\n")).toContain("non-finite weights: blocks.1.mlp.fc1.weight[0] = NaN");
    warn.mockRestore();
    expect(Array.from((await readNpy(join(dir, "f.npy"))).data as Float32Array).some(Number.isNaN)).toBe(true);
  });

  it("refuses a fine-tuned model's trainable tensors (a study cell's best.safetensors), saying to export them", async () => {
    const dir = await mkdtemp(join(tmpdir(), "peft-features-"));
    const base = FIX + "vit-tiny.safetensors";
    const { model } = await loadVit(base);
    for (const name of ["full", "lora-r2"]) {
      const strategy = parseStrategy(name);
      const weights = join(dir, `${name}.safetensors`);
      await saveFinetuned(weights, applyStrategy(model, strategy, 3), { strategyOptions: strategy, classes: 3, seed: 0, base: { file: base, sha256: await sha256File(base) }, hyperParameters: {} });
      await writeNpy(join(dir, "x.npy"), new Float32Array(3 * 16 * 16), [1, 3, 16, 16]);
      await expect(features.run(["--weights", weights, "--input", join(dir, "x.npy"), "--out", join(dir, "f.npy")])).rejects.toThrow(
        `features: ${weights} holds a fine-tuned model's trainable tensors (${name}, fine-tuned from ${base}), not a checkpoint: write one with \`export --base ${base} --finetuned ${weights} --out OUT.safetensors --merge\``,
      );
    }
  });

  it("refuses, before any work, an --out or a dump over an input or over each other, however the paths are spelt", async () => {
    const dir = await mkdtemp(join(tmpdir(), "peft-features-"));
    const weights = join(dir, "w.safetensors");
    await writeSafetensors(weights, (await readSafetensors(FIX + "vit-tiny.safetensors")).tensors);
    const x = join(dir, "x.npy");
    await writeNpy(x, new Float32Array(2 * 3 * 16 * 16), [2, 3, 16, 16]);
    await symlink(x, join(dir, "link.npy"));
    const before = [await readFile(weights), await readFile(x)];
    const run = (...argv: string[]) => features.run(["--weights", weights, "--input", x, "--heads", "2", ...argv]);
    await expect(run("--out", weights)).rejects.toThrow(new UsageError(`--out: expected a file other than --weights, which it would overwrite, got ${weights}`));
    await expect(run("--out", x)).rejects.toThrow(new UsageError(`--out: expected a file other than --input, which it would overwrite, got ${x}`));
    for (const out of [`${dir}/sub/../x.npy`, join(dir, "link.npy")]) {
      await expect(run("--out", out)).rejects.toThrow(new UsageError(`--out: expected a file other than --input, which it would overwrite, got ${out}`));
    }
    const dump = join(dir, "block.0.npy");
    await expect(run("--out", dump, "--dump-blocks", "0", "--dump-dir", dir)).rejects.toThrow(
      new UsageError(`--out: expected a file other than the dump of --dump-blocks 0 (${dump}), which would overwrite it, got ${dump}`),
    );
    // A dump as the next run's --input: not to be overwritten by that run's own dump of the same block.
    await run("--out", join(dir, "f.npy"), "--dump-attention", "0");
    await expect(features.run(["--weights", weights, "--input", join(dir, "attention.0.npy"), "--out", join(dir, "g.npy"), "--dump-attention", "0"])).rejects.toThrow(
      new UsageError(`--dump-attention: expected a file other than --input, which it would overwrite, got ${join(dir, "attention.0.npy")}`),
    );
    expect([await readFile(weights), await readFile(x)]).toEqual(before);
  });

  it("refuses images smaller than a patch and inputs that are folders, naming the file or flag", async () => {
    const dir = await mkdtemp(join(tmpdir(), "peft-features-"));
    const weights = FIX + "vit-tiny.safetensors"; // patch 4
    const out = join(dir, "f.npy");
    for (const shape of [[2, 3, 0, 0], [2, 3, 0, 16], [2, 3, 16, 0]]) {
      const x = join(dir, "x.npy");
      await writeNpy(x, new Float32Array(0), shape);
      await expect(features.run(["--weights", weights, "--input", x, "--out", out, "--heads", "2"])).rejects.toThrow(
        `features: ${x}: expected images of at least the patch size (4 x 4), got (${shape.join(", ")})`,
      );
    }
    await mkdir(join(dir, "folder"));
    await expect(features.run(["--weights", weights, "--input", join(dir, "folder"), "--out", out])).rejects.toThrow(`--input: expected a file, got the folder ${join(dir, "folder")}`);
    await expect(features.run(["--weights", dir, "--input", join(dir, "x.npy"), "--out", out])).rejects.toThrow(`--weights: expected a file, got the folder ${dir}`);
  });
});
