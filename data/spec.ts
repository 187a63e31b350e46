// A dataset as a study names it: which dataset, split and classes, how many images of each, and the transform its
// images get. `openData` opens exactly that subset; `transformFor` builds its transform.
import type { Dataset } from "./dataset.js";
import { openDataset } from "./registry.js";
import { subset } from "./subset.js";
import type { Interpolation, Resampler, TransformKind, TransformSpec } from "./transforms.js";

export interface DataSpec {
  dataset: string; // a data/registry.ts name: fashion-mnist, cifar100, imagefolder, npy, ...
  root?: string; // default: the registry's default root
  split: string; // train, test, val, trainval where the dataset has them (dtd: train1..test10 too), or an image-folder split
  classes?: number[]; // original labels to keep, renumbered 0..k-1 in this order; JSON: [5, 6] or "5-9"
  perClass?: number; // the first n images of each class
  skipPerClass?: number; // the first n images of each class left out (before perClass), for sets disjoint from another spec's
  fraction?: number; // a seeded fraction of each class (seed: the study's first seed)
  transform: TransformKind; // train: RandomResizedCrop + flip; eval: resize; knn: DINO's resize + centre crop
  // The transform's settings; absent: data/transforms.ts's defaults (ImageNet statistics, bilinear or for knn
  // bicubic, area 0.08..1).
  mean?: [number, number, number];
  std?: [number, number, number];
  interpolation?: Interpolation;
  resampler?: Resampler; // libvips (default) or pil: Pillow's resize exactly, as torchvision on PIL images
  scale?: [number, number]; // train only: RandomResizedCrop's area fraction range
}

// The transform of the spec's images at `size`, with only the settings the spec gives (the rest: defaults).
export function transformFor(spec: DataSpec, size: number): TransformSpec {
  const t: TransformSpec = { kind: spec.transform, size };
  if (spec.mean) t.mean = spec.mean;
  if (spec.std) t.std = spec.std;
  if (spec.interpolation) t.interpolation = spec.interpolation;
  if (spec.resampler) t.resampler = spec.resampler;
  if (spec.scale) t.scale = spec.scale;
  return t;
}

// Datasets already opened whole, by name, root and split: several specs of a study draw from one file (the source
// bank and the transfer images from Fashion-MNIST's training set), which need not be read and unpacked again.
export type OpenedDatasets = Map<string, Promise<Dataset>>;

// The dataset a spec describes, with its class selection and per-class subset applied (`seed` draws a fraction).
// With `opened`, the whole dataset is taken from there, or opened and kept there.
export async function openData(spec: DataSpec, seed: number, opened?: OpenedDatasets): Promise<Dataset> {
  const key = JSON.stringify([spec.dataset, spec.root ?? "", spec.split]);
  let whole = opened?.get(key);
  if (!whole) {
    whole = openDataset({ name: spec.dataset, root: spec.root, split: spec.split });
    opened?.set(key, whole);
  }
  const ds = await whole;
  if (spec.classes === undefined && spec.perClass === undefined && spec.skipPerClass === undefined && spec.fraction === undefined) return ds;
  return subset(ds, { classes: spec.classes, firstPerClass: spec.perClass, skipPerClass: spec.skipPerClass, fraction: spec.fraction, seed });
}
