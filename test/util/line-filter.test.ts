// LineFilter: exactly the matching lines are left out, whatever the chunks, and partial lines are not held back.
import { describe, expect, it } from "vitest";
import { LineFilter } from "../../util/line-filter.js";

const HOLD = "Warning: maxDynamic";
const DROP = /^Warning: maxDynamic(Uniform|Storage)BuffersPerPipelineLayout artificially reduced /;
const NOISE = [
  "Warning: maxDynamicUniformBuffersPerPipelineLayout artificially reduced from 1000000 to 16 to fit dynamic offset allocation limit.\n",
  "Warning: maxDynamicStorageBuffersPerPipelineLayout artificially reduced from 1000000 to 16 to fit dynamic offset allocation limit.\n",
];
const KEPT = [
  "study \"x\" -> runs/x\n",
  "Warning: maxDynamicSomethingElse changed\n", // starts like the noise but is another message
  "Warning: something else\n",
  "pre-train   10/400  [#...]\rpre-train   20/400  [##..]\r",
  "done\n",
  "no newline at the end",
];

function run(chunks: string[]): string {
  let out = "";
  const f = new LineFilter(HOLD, DROP, (t) => (out += t));
  for (const c of chunks) f.push(c);
  f.end();
  return out;
}

describe("LineFilter", () => {
  const stream = [NOISE[0], KEPT[0], NOISE[1], ...KEPT.slice(1)].join("");
  const expected = KEPT.join("");

  it("drops exactly the matching lines", () => {
    expect(run([stream])).toBe(expected);
  });

  it("gives the same text however the stream is cut into two or three chunks", () => {
    for (let i = 0; i <= stream.length; i++) {
      expect(run([stream.slice(0, i), stream.slice(i)]), `cut at ${i}`).toBe(expected);
      const j = Math.min(stream.length, i + 7);
      expect(run([stream.slice(0, i), stream.slice(i, j), stream.slice(j)]), `cuts at ${i}, ${j}`).toBe(expected);
    }
  });

  it("writes a partial line at once unless it could still be dropped", () => {
    const written: string[] = [];
    const f = new LineFilter(HOLD, DROP, (t) => written.push(t));
    f.push("pre-train 10/400\r");
    expect(written).toEqual(["pre-train 10/400\r"]);
    f.push("Warning: maxDyn");
    expect(written).toHaveLength(1);
    f.push("amicUniformBuffersPerPipelineLayout artificially reduced from 1 to 16.\nnext");
    expect(written).toEqual(["pre-train 10/400\r", "next"]);
  });
});
