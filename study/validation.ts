// Model selection on a validation split (transfer.val): the images that choose each cell's best checkpoint, and
// each strategy's learning rate, when they should not be the test images the table reports. The paper (and the
// authors' code, for CIFAR and Food-101) chooses on the test set; with transfer.val the test accuracy is that of
// the checkpoint chosen on val, so no test image takes part in any choice.
//
// A held-out val ({"fraction": f}) is drawn per class out of transfer.train with the first seed (data/subset.ts
// holdOut), so training no longer sees those images; a val split of its own must share no image with the test or
// training images (checked by each image's source, after the config check compared the splits by name).
import { type Dataset, classMismatch, sharedImages } from "../data/dataset.js";
import type { DataSpec } from "../data/spec.js";
import { holdOut } from "../data/subset.js";
import { type StudyConfig, isHeldOut } from "./config.js";

// Which images chose the checkpoints: named in results.json, the table and each cell's manifest.
export type Selection = "transfer.val" | "transfer.test";

export function selectionOf(config: StudyConfig): Selection {
  return config.transfer.val ? "transfer.val" : "transfer.test";
}

// The spec whose transform the val images get: a val split's own, and for images held out of training the test
// images' (an evaluation transform, not training's augmentation).
export function valTransformSpec(config: StudyConfig): DataSpec {
  const val = config.transfer.val;
  if (!val) throw new Error("validation: expected transfer.val in the config, got none");
  return isHeldOut(val) ? config.transfer.test : val;
}

// Training and val images: with a held-out fraction, the training images without it and the fraction; with a val
// split, the training images unchanged and that split (opened by `open`, which names the key in its errors).
export async function splitForValidation(
  config: StudyConfig,
  train: Dataset,
  test: Dataset,
  open: (spec: DataSpec, what: string) => Promise<Dataset>,
): Promise<{ train: Dataset; val?: Dataset }> {
  const spec = config.transfer.val;
  if (!spec) return { train };
  if (isHeldOut(spec)) {
    const { rest, held } = holdOut(train, spec.fraction, config.seeds[0]);
    for (const [part, what] of [[held, "the held-out images (transfer.val)"], [rest, "the training images left (transfer.train)"]] as const) {
      if (part.length === 0) throw new Error(`experiment: transfer.val.fraction ${spec.fraction} of transfer.train's ${train.length} images leaves ${what} empty`);
    }
    return { train: rest, val: held };
  }
  const val = await open(spec, "transfer.val");
  const mismatch = classMismatch(val, train, ["transfer.val", "transfer.train"]);
  if (mismatch) throw new Error(`experiment: ${mismatch}`);
  for (const [other, what] of [[test, "transfer.test"], [train, "transfer.train"]] as const) {
    const shared = sharedImages(val, other, ["transfer.val", what]);
    if (shared) throw new Error(`experiment: ${shared}`);
  }
  return { train, val };
}
