// Images and labels as NPY arrays: root/<split>_images.npy and root/<split>_labels.npy, with class names one per
// line in an optional root/classes.txt (otherwise "0", "1", ... up to the largest label, below MAX_CLASSES).
// Images are (N, H, W) grayscale, (N, H, W, C) or (N, C, H, W) with C = 1 or 3: the channel axis is the last one
// when it is 1 or 3, else the second. Pixels are uint8, or float32 in [0, 1] (torchvision's ToTensor range),
// which is rounded to bytes so that every format enters the transforms as 8-bit RGB.
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { ArrayDataset, type Dataset, MAX_CLASSES, checkImageArray, checkLabels, hashFiles } from "./dataset.js";
import { readClassNames } from "./list-files.js";
import { labelsToInt32, readNpy } from "./npy.js";

function toBytes(data: Float32Array, path: string): Uint8Array {
  const out = new Uint8Array(data.length);
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (!(v >= 0 && v <= 1)) throw new Error(`npy: expected float32 pixels in [0, 1] in ${path}, got ${v} at element ${i}`);
    out[i] = Math.round(v * 255);
  }
  return out;
}

export async function openNpyImages(root: string, split = "train"): Promise<Dataset> {
  root = resolve(root);
  const imagesPath = join(root, `${split}_images.npy`);
  const labelsPath = join(root, `${split}_labels.npy`);
  for (const p of [imagesPath, labelsPath]) if (!existsSync(p)) throw new Error(`npy: expected ${p} (split ${split}), it does not exist`);
  const [images, labelArr] = await Promise.all([readNpy(imagesPath), readNpy(labelsPath)]);
  const s = images.shape;
  let layout: { height: number; width: number; channels: 1 | 3; planar: boolean };
  if (s.length === 3) layout = { height: s[1], width: s[2], channels: 1, planar: false };
  else if (s.length === 4 && (s[3] === 1 || s[3] === 3)) layout = { height: s[1], width: s[2], channels: s[3], planar: false };
  else if (s.length === 4 && (s[1] === 1 || s[1] === 3)) layout = { height: s[2], width: s[3], channels: s[1], planar: true };
  else throw new Error(`npy: expected images (N, H, W), (N, H, W, 1|3) or (N, 1|3, H, W) in ${imagesPath}, got (${s.join(", ")})`);
  checkImageArray("npy", imagesPath, s, layout.height, layout.width);
  let pixels: Uint8Array;
  if (images.data instanceof Uint8Array) pixels = images.data;
  else if (images.data instanceof Float32Array) pixels = toBytes(images.data, imagesPath);
  else throw new Error(`npy: expected uint8 or float32 images in ${imagesPath}, got ${images.dtype}`);

  const labels = labelsToInt32(labelArr, labelsPath);
  if (labels.length !== s[0]) throw new Error(`npy: expected ${s[0]} labels in ${labelsPath} to match the images, got ${labels.length}`);
  const namesPath = join(root, "classes.txt");
  const files = [imagesPath, labelsPath];
  let classes: string[];
  if (existsSync(namesPath)) {
    classes = await readClassNames("npy", namesPath, "the class names");
    files.push(namesPath);
  } else {
    const big = labels.findIndex((y) => y >= MAX_CLASSES);
    if (big >= 0) throw new Error(`npy: expected labels below ${MAX_CLASSES} in ${labelsPath} (the classes are 0..the largest label where no ${namesPath} names them), got ${labels[big]} at index ${big}`);
    const k = labels.reduce((m, y) => Math.max(m, y + 1), 0);
    classes = Array.from({ length: k }, (_, c) => String(c));
  }
  checkLabels("npy", labels, classes.length, (i) => `${labelsPath}#${i}`);
  const identity = { name: "npy", root, split, count: labels.length, hash: await hashFiles(files) };
  const stride = layout.height * layout.width * layout.channels;
  return new ArrayDataset(identity, classes, labels, pixels, { offset: 0, stride, ...layout }, (i) => `${imagesPath}#${i}`);
}
