// The program as a user starts it in a terminal (a pseudo-terminal from util-linux's `script`): Dawn's two start-up
// warnings are left out, everything else and the exit code come through; redirected, it is one plain process.
import { beforeAll, describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";

const ROOT = resolve(__dirname, "..");
const BUNDLE = join(ROOT, "node_modules", ".cache", "peft-vit-webgpu-test", "run-terminal.js");
const NOISE = "artificially reduced";

// `script -qec CMD /dev/null` runs CMD on a pseudo-terminal, prints what it printed there, and exits with its code.
function inTerminal(args: string): { out: string; status: number | null } {
  const r = spawnSync("script", ["-qec", `${process.execPath} ${BUNDLE} ${args}`, "/dev/null"], { encoding: "utf8" });
  return { out: r.stdout, status: r.status };
}

beforeAll(async () => {
  const { buildBundle } = (await import(pathToFileURL(join(ROOT, "scripts", "build.mjs")).href)) as { buildBundle: (outfile: string, options?: object) => Promise<unknown> };
  await buildBundle(BUNDLE, { logLevel: "warning" });
});

describe("run.js in a terminal", () => {
  const hasScript = spawnSync("script", ["--version"]).status === 0;

  it.skipIf(!hasScript)("leaves out Dawn's two warnings and keeps the rest, stdout and stderr", () => {
    const { out, status } = inTerminal("info");
    expect(status).toBe(0);
    expect(out).not.toContain(NOISE);
    expect(out).toContain("adapter");
    const bad = inTerminal("params --strategies top-99");
    expect(bad.status).toBe(2);
    expect(bad.out).toContain('expected top-K with 0 <= K <= depth');
    expect(bad.out).not.toContain(NOISE);
  });

  it("redirected, prints Dawn's lines as they come (one process, nothing filtered)", () => {
    const r = spawnSync(process.execPath, [BUNDLE, "info"], { encoding: "utf8" });
    expect(r.status).toBe(0);
    expect(r.stderr).toContain(NOISE);
  });
});
