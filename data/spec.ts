// A dataset as a study names it: which dataset, split and classes, how many images of each, and the transform its
// images get. `openData` opens exactly that subset.
import type { Dataset } from "./dataset.js";
import { openDataset } from "./registry.js";
import { subset } from "./subset.js";
import type { TransformKind } from "./transforms.js";

export interface DataSpec {
  dataset: string; // a data/registry.ts name: fashion-mnist, cifar100, imagefolder, npy, ...
  root?: string; // default: the registry's default root
  split: string; // train, test, or an image-folder split
  classes?: number[]; // original labels to keep, renumbered 0..k-1 in this order; JSON: [5, 6] or "5-9"
  perClass?: number; // the first n images of each class
  fraction?: number; // a seeded fraction of each class (seed: the study's first seed)
  transform: TransformKind; // train: RandomResizedCrop + flip; eval: resize; knn: DINO's resize + centre crop
}

// The dataset a spec describes, with its class selection and per-class subset applied (`seed` draws a fraction).
export async function openData(spec: DataSpec, seed: number): Promise<Dataset> {
  const ds = await openDataset({ name: spec.dataset, root: spec.root, split: spec.split });
  if (spec.classes === undefined && spec.perClass === undefined && spec.fraction === undefined) return ds;
  return subset(ds, { classes: spec.classes, firstPerClass: spec.perClass, fraction: spec.fraction, seed });
}
