// Subsets of a dataset for split-domain experiments: a class range (e.g. pre-train on classes 0-4, fine-tune on
// 5-9) with the kept classes renumbered 0..k-1, the first n samples of each class (after its first m, for a set
// disjoint from another), or a seeded fraction of each class. The subset is itself a Dataset whose identity names its parent, how it was drawn, and hashes the indices.
import { type Dataset, type DatasetIdentity, MAX_CLASSES, checkIndex, hashLines } from "./dataset.js";
import type { ImageInput, RawImage } from "./image.js";
import { Rng } from "../util/random.js";

const SUBSET_STREAM = 3; // generator stream for fraction draws (the loader uses 1 and 2)
const HOLD_OUT_STREAM = 4; // for holdOut's draws: independent of a fraction drawn before it from the same seed

export interface SubsetOptions {
  classes?: number[]; // original labels to keep, in the order that defines the new labels
  remap?: boolean; // default true: kept classes become labels 0..k-1 in the order of `classes`
  firstPerClass?: number; // keep the first n samples of each class, in dataset order
  skipPerClass?: number; // leave out the first n samples of each class first (disjoint draws of one split)
  fraction?: number; // keep round(fraction * count) samples of each class, drawn with `seed`
  seed?: number; // for `fraction`; default 0
}

// "0-4", "5-9", "0,2,7-9" -> class indices, in the order written. The ranges are counted before they are expanded:
// "0-2000000000" would otherwise fill memory before any dataset could say it has fewer classes.
export function parseClassList(text: string): number[] {
  const ranges = text.split(",").map((s) => s.trim()).map((part) => {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!m) throw new Error(`subset: expected classes like "0-4" or "0,2,7-9", got "${text}"`);
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    if (hi < lo) throw new Error(`subset: expected an increasing class range, got "${part}"`);
    return { lo, hi };
  });
  const count = ranges.reduce((n, r) => n + r.hi - r.lo + 1, 0);
  if (count > MAX_CLASSES) throw new Error(`subset: expected at most ${MAX_CLASSES} classes in "${text}", got ${count}`);
  return ranges.flatMap(({ lo, hi }) => Array.from({ length: hi - lo + 1 }, (_, k) => lo + k));
}

function describe(opts: SubsetOptions, classes: number[] | undefined, remap: boolean, seed: number): string {
  const parts: string[] = [];
  if (classes) parts.push(`classes ${classes.join(",")}${remap ? ` -> 0..${classes.length - 1}` : ""}`);
  const after = opts.skipPerClass !== undefined ? ` after the first ${opts.skipPerClass}` : "";
  if (opts.firstPerClass !== undefined) parts.push(`first ${opts.firstPerClass} per class${after}`);
  else if (after) parts.push(`each class${after}`);
  if (opts.fraction !== undefined) parts.push(`fraction ${opts.fraction} per class, seed ${seed}`);
  return parts.join("; ");
}

export function subset(ds: Dataset, opts: SubsetOptions): Dataset {
  const { classes, firstPerClass, skipPerClass, fraction } = opts;
  const remap = classes !== undefined && opts.remap !== false;
  const seed = opts.seed ?? 0;
  const k = ds.classes.length;
  if (classes) {
    if (classes.length === 0) throw new Error(`subset: expected at least one class, got none`);
    for (const c of classes) if (!Number.isInteger(c) || c < 0 || c >= k) throw new Error(`subset: expected classes in [0, ${k}) for ${ds.identity.name}, got ${c}`);
    if (new Set(classes).size !== classes.length) throw new Error(`subset: expected distinct classes, got ${classes.join(",")}`);
  }
  if (firstPerClass !== undefined && !(Number.isInteger(firstPerClass) && firstPerClass >= 1)) throw new Error(`subset: expected firstPerClass >= 1, got ${firstPerClass}`);
  if (skipPerClass !== undefined && !(Number.isInteger(skipPerClass) && skipPerClass >= 0)) throw new Error(`subset: expected skipPerClass >= 0, got ${skipPerClass}`);
  if (fraction !== undefined && !(fraction > 0 && fraction <= 1)) throw new Error(`subset: expected a fraction in (0, 1], got ${fraction}`);

  // Samples of each class in dataset order.
  const byClass: number[][] = Array.from({ length: k }, () => []);
  for (let i = 0; i < ds.length; i++) byClass[ds.labels[i]].push(i);
  const keep = classes ?? byClass.map((_, c) => c);
  const chosen: number[] = [];
  for (const c of keep) {
    let members = byClass[c];
    if (fraction !== undefined) {
      // A seeded draw per class (the class id joins the seed), returned to dataset order.
      const n = Math.round(fraction * members.length);
      const perm = new Rng([SUBSET_STREAM, seed, c]).permutation(members.length);
      members = Array.from(perm.subarray(0, n), (j) => members[j]).sort((a, b) => a - b);
    }
    if (skipPerClass !== undefined) members = members.slice(skipPerClass);
    if (firstPerClass !== undefined) members = members.slice(0, firstPerClass);
    chosen.push(...members);
  }
  chosen.sort((a, b) => a - b);
  const indices = Int32Array.from(chosen);

  const newLabel = new Int32Array(k).fill(-1);
  keep.forEach((c, j) => (newLabel[c] = remap ? j : c));
  const labels = indices.map((i) => newLabel[ds.labels[i]]);
  const names = remap ? keep.map((c) => ds.classes[c]) : ds.classes;
  const spec = describe(opts, classes, remap, seed);
  const identity: DatasetIdentity = {
    ...ds.identity,
    count: indices.length,
    hash: hashLines([ds.identity.hash, spec, ...Array.from(indices, String)]),
    subset: ds.identity.subset ? `${ds.identity.subset}; then ${spec}` : spec,
  };
  return new SubsetDataset(ds, indices, labels, names, identity);
}

// A seeded fraction of each class held out of `ds` (a validation split taken out of training images) and the rest,
// disjoint and together the whole of `ds`, labels and classes unchanged. round(fraction * count) images of each
// class are held out; each part is in dataset order.
export function holdOut(ds: Dataset, fraction: number, seed: number): { rest: Dataset; held: Dataset } {
  if (!(fraction > 0 && fraction < 1)) throw new Error(`subset: expected a held-out fraction in (0, 1), got ${fraction}`);
  const byClass: number[][] = Array.from({ length: ds.classes.length }, () => []);
  for (let i = 0; i < ds.length; i++) byClass[ds.labels[i]].push(i);
  const isHeld = new Uint8Array(ds.length);
  byClass.forEach((members, c) => {
    const perm = new Rng([HOLD_OUT_STREAM, seed, c]).permutation(members.length);
    for (const j of perm.subarray(0, Math.round(fraction * members.length))) isHeld[members[j]] = 1;
  });
  const part = (held: boolean, spec: string): Dataset => {
    const indices = Int32Array.from({ length: ds.length }, (_, i) => i).filter((i) => (isHeld[i] === 1) === held);
    const identity: DatasetIdentity = {
      ...ds.identity,
      count: indices.length,
      hash: hashLines([ds.identity.hash, spec, ...Array.from(indices, String)]),
      subset: ds.identity.subset ? `${ds.identity.subset}; then ${spec}` : spec,
    };
    return new SubsetDataset(ds, indices, indices.map((i) => ds.labels[i]), ds.classes, identity);
  };
  const drawn = `fraction ${fraction} per class, seed ${seed}`;
  return { rest: part(false, `without the held-out ${drawn}`), held: part(true, `held out: ${drawn}`) };
}

// n samples spread evenly over the dataset, i = floor(j * length / n) for j < n, in dataset order: every part of a
// dataset stored class by class is represented (where its first n would hold the first classes only). Labels and
// classes stay the parent's.
export function evenlySpaced(ds: Dataset, n: number): Dataset {
  if (!(Number.isInteger(n) && n >= 1)) throw new Error(`subset: expected a count >= 1, got ${n}`);
  if (n >= ds.length) return ds;
  const indices = Int32Array.from({ length: n }, (_, j) => Math.floor((j * ds.length) / n));
  const spec = `${n} evenly spaced of ${ds.length}`;
  const identity: DatasetIdentity = {
    ...ds.identity,
    count: n,
    hash: hashLines([ds.identity.hash, spec]),
    subset: ds.identity.subset ? `${ds.identity.subset}; then ${spec}` : spec,
  };
  return new SubsetDataset(ds, indices, indices.map((i) => ds.labels[i]), ds.classes, identity);
}

class SubsetDataset implements Dataset {
  readonly imageSize?: { width: number; height: number };

  constructor(
    private readonly parent: Dataset,
    readonly indices: Int32Array, // (length) parent indices
    readonly labels: Int32Array, // (length) labels after remapping
    readonly classes: string[],
    readonly identity: DatasetIdentity,
  ) {
    this.imageSize = parent.imageSize;
  }

  get length(): number {
    return this.indices.length;
  }

  async read(i: number): Promise<ImageInput> {
    checkIndex(this, i);
    return this.parent.read(this.indices[i]);
  }

  async image(i: number): Promise<RawImage> {
    checkIndex(this, i);
    return this.parent.image(this.indices[i]);
  }

  source(i: number): string {
    checkIndex(this, i);
    return this.parent.source(this.indices[i]);
  }
}
