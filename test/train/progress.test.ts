// The progress line: fields, ETA from this run's pace, a line per 10% off a TTY, throttled redraws on one.
import { describe, expect, it } from "vitest";
import { Progress, formatDuration } from "../../train/progress.js";

function sink(isTTY: boolean) {
  const chunks: string[] = [];
  return { chunks, stream: { isTTY, write: (s: string) => chunks.push(s) } };
}

describe("Progress", () => {
  it("prints step/total, loss, accuracy, lr, images/s and ETA", () => {
    let now = 0;
    const { stream } = sink(false);
    const p = new Progress({ label: "full lr 0.01", total: 100, stream, now: () => now });
    now = 20_000; // 20 s for 25 steps: 60 s for the remaining 75
    p.update(25, { loss: 0.51234, accuracy: 81.25, lr: 0.001, imagesPerSecond: 123.4 });
    expect(p.line(25, now)).toBe("full lr 0.01   25/100  [#####...............]  loss 0.5123  acc 81.25%  lr 1.00e-3  123 img/s  ETA 1m00s");
  });

  it("counts the ETA from the resumed step", () => {
    let now = 0;
    const p = new Progress({ label: "x", total: 100, start: 50, stream: sink(false).stream, now: () => now });
    now = 10_000; // 10 steps in 10 s, 40 left
    expect(p.line(60, now)).toMatch(/ETA 40s$/);
  });

  it("off a TTY prints one line per 10% and the final line once", () => {
    const { chunks, stream } = sink(false);
    const p = new Progress({ label: "x", total: 50, stream });
    for (let s = 1; s <= 50; s++) p.update(s, { loss: 1 });
    p.finish();
    expect(chunks.length).toBe(11); // the first step, 10%..90%, and the final line
    expect(chunks.every((c) => c.endsWith("\n") && !c.includes("\r"))).toBe(true);
    expect(chunks[0]).toContain(" 1/50");
    expect(chunks[10]).toContain("50/50");
    expect(chunks[10]).toContain("done in");
  });

  it("on a TTY redraws in place at most every 100 ms and ends the line", () => {
    let now = 0;
    const { chunks, stream } = sink(true);
    const p = new Progress({ label: "x", total: 10, stream, now: () => now });
    p.update(1);
    now = 50;
    p.update(2); // throttled
    now = 150;
    p.update(3);
    now = 160;
    p.update(10); // the last step always draws
    p.finish();
    expect(chunks.length).toBe(4);
    expect(chunks.slice(0, 3).every((c) => c.startsWith("\r\x1b[2K"))).toBe(true);
    expect(chunks[3]).toBe("\n");
  });
});

describe("formatDuration", () => {
  it("formats seconds, minutes and hours", () => {
    expect(formatDuration(5.4)).toBe("5s");
    expect(formatDuration(65)).toBe("1m05s");
    expect(formatDuration(3 * 3600 + 7 * 60)).toBe("3h07m");
    expect(formatDuration(NaN)).toBe("?");
  });
});
