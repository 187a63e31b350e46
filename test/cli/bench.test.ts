// `bench <subject>` flags refused as usage errors before any device work: an unknown --model of bench vit, a strategy
// that is none or does not fit the model, a --reps that would time no run (its rows all NaN), and bench knn's
// --slices, whose numbers are decimal as every number flag's.
import { afterEach, describe, expect, it, vi } from "vitest";
import { BENCHES } from "../../bench/index.js";
import { UsageError } from "../../util/command.js";
import { NAMED_CONFIGS } from "../../vit/config.js";

afterEach(() => vi.restoreAllMocks());

// Runs a subject with its output muted: a flag let through would start the benchmark.
async function run(subject: string, ...argv: string[]): Promise<void> {
  vi.spyOn(console, "log").mockImplementation(() => {});
  await BENCHES[subject].run(argv);
}

describe("bench vit", () => {
  it("refuses an unknown --model as a usage error that names the flag and the models", async () => {
    await expect(run("vit", "--model", "vit-x")).rejects.toThrow(
      new UsageError(`--model: expected default or one of ${Object.keys(NAMED_CONFIGS).join(", ")}, got "vit-x"`),
    );
  });

  it("checks --strategies against the model before any device work, naming the flag", async () => {
    await expect(run("vit", "--model", "default", "--strategies", "bogus")).rejects.toThrow(UsageError);
    await expect(run("vit", "--model", "default", "--strategies", "bogus")).rejects.toThrow(/^--strategies: /);
    await expect(run("vit", "--model", "default", "--strategies", "block-p3")).rejects.toThrow(/^--strategies: .*block-p3/);
    await expect(run("vit", "--model", "default", "--strategies", "none,full")).rejects.toThrow(new UsageError('--strategies: expected "none" alone (inference only), got none,full'));
  });

  it("refuses --reps below 1, which would time no run", async () => {
    await expect(run("vit", "--model", "default", "--strategies", "none", "--reps", "0")).rejects.toThrow(new UsageError("--reps: expected an integer >= 1, got 0"));
  });
});

describe("bench knn", () => {
  it("reads --slices as decimal integers: 0x10 is refused, not 16 slices", async () => {
    const small = ["--bank", "64", "--queries", "2", "--dim", "4", "--k", "3", "--reps", "1", "--warmup", "0"];
    await expect(run("knn", ...small, "--slices", "0x10")).rejects.toThrow(new UsageError('--slices: expected integers >= 1, got "0x10"'));
  });
});
