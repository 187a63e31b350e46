// Subsets: class ranges with renumbering for split-domain experiments, first n per class, seeded fractions,
// class-list parsing, and identities that tell subsets apart.
import { describe, expect, it } from "vitest";
import { ArrayDataset, type Dataset } from "../../data/dataset.js";
import { evenlySpaced, holdOut, parseClassList, subset } from "../../data/subset.js";
import { classCounts } from "../../data/summary.js";
import { pattern } from "./fixtures.js";

// 103 samples over 10 classes with uneven counts (label = i * 7 % 10 for i < 100, then three of class 9).
function dataset(): Dataset {
  const n = 103;
  const labels = Int32Array.from({ length: n }, (_, i) => (i < 100 ? (i * 7) % 10 : 9));
  const identity = { name: "ten", root: "/mem", split: "train", count: n, hash: "abc" };
  const layout = { offset: 0, stride: 4, width: 2, height: 2, channels: 1 as const, planar: false };
  return new ArrayDataset(identity, "abcdefghij".split(""), labels, pattern(n * 4, 1), layout, (i) => `/mem#${i}`);
}

describe("subset", () => {
  const ds = dataset();

  it("parses class lists", () => {
    expect(parseClassList("0-4")).toEqual([0, 1, 2, 3, 4]);
    expect(parseClassList("7, 0-1,9")).toEqual([7, 0, 1, 9]);
    expect(() => parseClassList("4-0")).toThrow('subset: expected an increasing class range, got "4-0"');
    expect(() => parseClassList("a-b")).toThrow('subset: expected classes like "0-4" or "0,2,7-9", got "a-b"');
    // Counted before expanding: a range of 2e9 classes is named, not built until memory runs out.
    expect(parseClassList("0-65535")).toHaveLength(65536);
    expect(() => parseClassList("0-2000000000")).toThrow('subset: expected at most 65536 classes in "0-2000000000", got 2000000001');
    expect(() => parseClassList("0-65535,7")).toThrow('subset: expected at most 65536 classes in "0-65535,7", got 65537');
  });

  it("classes 5-9 become labels 0-4 with their names, images unchanged", async () => {
    const s = subset(ds, { classes: [5, 6, 7, 8, 9] });
    expect(s.classes).toEqual(["f", "g", "h", "i", "j"]);
    expect(classCounts(s)).toEqual([10, 10, 10, 10, 13]);
    expect(s.length).toBe(53);
    for (let k = 0; k < s.length; k++) {
      const parent = Number(s.source(k).split("#")[1]);
      expect(s.labels[k]).toBe(ds.labels[parent] - 5);
      expect(Array.from((await s.image(k)).data)).toEqual(Array.from((await ds.image(parent)).data));
    }
    expect(s.identity).toMatchObject({ name: "ten", count: 53, subset: "classes 5,6,7,8,9 -> 0..4" });
    // Without remapping the labels and class list stay the parent's; the order given defines new labels.
    const keep = subset(ds, { classes: [3, 1], remap: false });
    expect(new Set(keep.labels)).toEqual(new Set([1, 3]));
    expect(keep.classes).toEqual(ds.classes);
    expect(Array.from(new Set(subset(ds, { classes: [3, 1] }).labels)).sort()).toEqual([0, 1]);
    expect(subset(ds, { classes: [3, 1] }).classes).toEqual(["d", "b"]);
  });

  it("first n per class keeps dataset order", () => {
    const s = subset(ds, { firstPerClass: 2 });
    expect(s.length).toBe(20);
    const parents = Array.from({ length: s.length }, (_, k) => Number(s.source(k).split("#")[1]));
    expect(parents).toEqual([...parents].sort((a, b) => a - b));
    expect(parents.slice(0, 3)).toEqual([0, 1, 2]); // labels 0, 7, 4: each the first of its class
    expect(classCounts(s)).toEqual(new Array(10).fill(2));
  });

  it("skipping the first m per class gives a set disjoint from the first m, in dataset order", () => {
    const sources = (d: Dataset) => Array.from({ length: d.length }, (_, k) => d.source(k));
    const first = subset(ds, { firstPerClass: 2 });
    const next = subset(ds, { skipPerClass: 2, firstPerClass: 3 });
    expect(classCounts(next)).toEqual(new Array(10).fill(3));
    expect(sources(next).filter((s) => sources(first).includes(s))).toEqual([]);
    // Each class's images 2, 3 and 4 in dataset order: of class 0 (i = 0, 10, 20, ...) those are 20, 30 and 40.
    expect(sources(next).filter((_, k) => next.labels[k] === 0)).toEqual(["/mem#20", "/mem#30", "/mem#40"]);
    expect(next.identity.subset).toBe("first 3 per class after the first 2");
    expect(subset(ds, { skipPerClass: 2 }).identity.subset).toBe("each class after the first 2");
    expect(next.identity.hash).not.toBe(subset(ds, { firstPerClass: 3 }).identity.hash);
    // Past a class's end, nothing of it: class 9 has 13 images.
    expect(classCounts(subset(ds, { skipPerClass: 12 }))).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    expect(() => subset(ds, { skipPerClass: -1 })).toThrow("subset: expected skipPerClass >= 0, got -1");
  });

  it("a fraction is stratified and seeded", () => {
    const a = subset(ds, { fraction: 0.3, seed: 5 });
    expect(classCounts(a)).toEqual([3, 3, 3, 3, 3, 3, 3, 3, 3, 4]); // round(0.3 * 13) = 4
    const b = subset(ds, { fraction: 0.3, seed: 5 });
    const c = subset(ds, { fraction: 0.3, seed: 6 });
    const src = (d: Dataset) => Array.from({ length: d.length }, (_, k) => d.source(k)).join();
    expect(src(a)).toBe(src(b));
    expect(src(a)).not.toBe(src(c));
    expect(a.identity.hash).toBe(b.identity.hash);
    expect(a.identity.hash).not.toBe(c.identity.hash);
    expect(a.identity.subset).toBe("fraction 0.3 per class, seed 5");
  });

  it("subsets compose and rejects bad options", async () => {
    const s = subset(subset(ds, { classes: [0, 1, 2, 3, 4] }), { firstPerClass: 1 });
    expect(s.length).toBe(5);
    expect(s.identity.subset).toBe("classes 0,1,2,3,4 -> 0..4; then first 1 per class");
    expect(() => subset(ds, { classes: [10] })).toThrow("subset: expected classes in [0, 10) for ten, got 10");
    expect(() => subset(ds, { classes: [1, 1] })).toThrow("subset: expected distinct classes, got 1,1");
    expect(() => subset(ds, { fraction: 0 })).toThrow("subset: expected a fraction in (0, 1], got 0");
    expect(() => subset(ds, { firstPerClass: 0 })).toThrow("subset: expected firstPerClass >= 1, got 0");
    await expect(s.image(5)).rejects.toThrow("ten: expected an index in [0, 5), got 5");
  });
});

describe("holdOut", () => {
  const ds = dataset();

  it("splits each class into a seeded held-out fraction and the rest, disjoint and whole", () => {
    const { rest, held } = holdOut(ds, 0.3, 4);
    const sources = (d: Dataset) => Array.from({ length: d.length }, (_, i) => d.source(i));
    expect(new Set([...sources(rest), ...sources(held)]).size).toBe(ds.length);
    expect(rest.length + held.length).toBe(ds.length);
    const full = classCounts(ds);
    expect(classCounts(held)).toEqual(full.map((n) => Math.round(0.3 * n)));
    expect([held.classes, rest.classes]).toEqual([ds.classes, ds.classes]);
    // Labels unchanged: each image keeps its class.
    for (let i = 0; i < held.length; i++) expect(held.labels[i]).toBe(ds.labels[Number(held.source(i).split("#")[1])]);
    expect(held.identity.subset).toBe("held out: fraction 0.3 per class, seed 4");
    expect(rest.identity.subset).toBe("without the held-out fraction 0.3 per class, seed 4");
    expect(rest.identity.hash).not.toBe(held.identity.hash);
  });

  it("draws the same images for the same seed, others for another, and not those of a fraction subset", () => {
    const sources = (d: Dataset) => Array.from({ length: d.length }, (_, i) => d.source(i)).join();
    expect(sources(holdOut(ds, 0.3, 4).held)).toBe(sources(holdOut(ds, 0.3, 4).held));
    expect(sources(holdOut(ds, 0.3, 5).held)).not.toBe(sources(holdOut(ds, 0.3, 4).held));
    expect(sources(holdOut(ds, 0.3, 4).held)).not.toBe(sources(subset(ds, { fraction: 0.3, seed: 4 })));
  });

  it("refuses a fraction outside (0, 1)", () => {
    for (const f of [0, 1, 2]) expect(() => holdOut(ds, f, 0)).toThrow(`subset: expected a held-out fraction in (0, 1), got ${f}`);
  });
});

describe("evenlySpaced", () => {
  const ds = dataset();

  it("takes n samples spread over the dataset, with the parent's labels, and names itself", async () => {
    const s = evenlySpaced(ds, 10);
    const parents = Array.from({ length: 10 }, (_, k) => Number(s.source(k).split("#")[1]));
    expect(parents).toEqual([0, 10, 20, 30, 41, 51, 61, 72, 82, 92]);
    expect(Array.from(s.labels)).toEqual(parents.map((i) => ds.labels[i]));
    expect(s.classes).toEqual(ds.classes);
    expect(Array.from((await s.image(9)).data)).toEqual(Array.from((await ds.image(92)).data));
    expect(s.identity).toMatchObject({ count: 10, subset: "10 evenly spaced of 103" });
    expect(evenlySpaced(ds, 11).identity.hash).not.toBe(s.identity.hash);
  });

  it("keeps a dataset of at most n samples whole, and names a bad count", () => {
    expect(evenlySpaced(ds, 103)).toBe(ds);
    expect(evenlySpaced(ds, 500)).toBe(ds);
    expect(() => evenlySpaced(ds, 0)).toThrow("subset: expected a count >= 1, got 0");
  });
});
