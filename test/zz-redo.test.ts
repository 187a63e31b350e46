import { it } from "vitest";
import { analyzeRun } from "../study/analysis.js";
import { useEngine } from "./helpers.js";
useEngine();
for (const [run, out] of [["runs/default-analysis-steps", "runs/default-analysis-steps-resets"]]) {
  it(run, async () => {
    const r = await analyzeRun(run, { out, reuse: true, resets: true, log: (l) => console.log(l) });
    console.log(run, r.reused);
  }, 1200_000);
}
