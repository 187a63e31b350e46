// CIFAR-10/100 binary files: records split across batch files, planar pixels turned into HWC, fine and coarse
// labels, class-name files (each name once), the parent-folder root, and wrong lengths.
import { describe, expect, it } from "vitest";
import { join } from "node:path";
import { openCifar } from "../../data/cifar.js";
import { cifarRecord, concat, pattern, useTmpDir, writeFile } from "./fixtures.js";

const tmp = useTmpDir("cifar");
const C10 = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];
const image = (k: number) => pattern(3072, 100 + k); // HWC 32x32x3

describe("cifar10", () => {
  // Five train files of 2, 1, 3, 1, 2 records (9 in all) and a test file of 3, under cifar-10-batches-bin/.
  const dir = join(tmp, "c10", "cifar-10-batches-bin");
  const sizes = [2, 1, 3, 1, 2];
  let k = 0;
  const trainLabels: number[] = [];
  sizes.forEach((n, f) => {
    const recs = Array.from({ length: n }, () => {
      trainLabels.push((k * 7) % 10);
      return cifarRecord([(k * 7) % 10], image(k++));
    });
    writeFile(join(dir, `data_batch_${f + 1}.bin`), concat(recs));
  });
  writeFile(join(dir, "test_batch.bin"), concat([0, 1, 2].map((j) => cifarRecord([9 - j], image(50 + j)))));
  writeFile(join(dir, "batches.meta.txt"), C10.join("\n") + "\n\n");

  it("reads every batch file in order with HWC pixels, from the folder or its parent", async () => {
    for (const root of [dir, join(tmp, "c10")]) {
      const ds = await openCifar("cifar10", root, "train");
      expect(ds.length).toBe(9);
      expect(ds.classes).toEqual(C10);
      expect(Array.from(ds.labels)).toEqual(trainLabels);
      expect(ds.identity).toMatchObject({ name: "cifar10", root: dir, split: "train", count: 9 });
      for (const i of [0, 3, 8]) expect(Buffer.from((await ds.image(i)).data).equals(Buffer.from(image(i)))).toBe(true);
      expect(ds.source(3)).toBe(join(dir, "data_batch_3.bin#0"));
      expect(ds.source(8)).toBe(join(dir, "data_batch_5.bin#1"));
    }
    const test = await openCifar("cifar10", dir, "test");
    expect(Array.from(test.labels)).toEqual([9, 8, 7]);
    expect(Buffer.from((await test.image(2)).data).equals(Buffer.from(image(52)))).toBe(true);
  });

  it("rejects a file of the wrong length, a missing batch, a missing name file and bad labels", async () => {
    const bad = join(tmp, "c10bad");
    writeFile(join(bad, "test_batch.bin"), concat([cifarRecord([1], image(0)), new Uint8Array(5)]));
    writeFile(join(bad, "batches.meta.txt"), C10.join("\n"));
    await expect(openCifar("cifar10", bad, "test")).rejects.toThrow(
      `cifar10: expected ${join(bad, "test_batch.bin")} to hold whole 3073-byte records (1 label byte(s) + 3072 pixels), got 3078 bytes`,
    );
    await expect(openCifar("cifar10", bad, "train")).rejects.toThrow(`cifar10: expected ${join(bad, "data_batch_1.bin")} (train split), it does not exist`);
    writeFile(join(bad, "test_batch.bin"), cifarRecord([10], image(0)));
    await expect(openCifar("cifar10", bad, "test")).rejects.toThrow(`cifar10: expected labels in [0, 10), got 10 at ${join(bad, "test_batch.bin")}#0`);
    writeFile(join(bad, "batches.meta.txt"), C10.slice(0, 9).join("\n"));
    await expect(openCifar("cifar10", bad, "test")).rejects.toThrow(`cifar10: expected 10 class names in ${join(bad, "batches.meta.txt")}, got 9`);
    writeFile(join(bad, "batches.meta.txt"), [...C10.slice(0, 9), "cat"].join("\n"));
    await expect(openCifar("cifar10", bad, "test")).rejects.toThrow(`cifar10: expected each class once in ${join(bad, "batches.meta.txt")}, got "cat" at line 4 and again at line 10`);
    await expect(openCifar("cifar10", join(tmp, "c10", "cifar-10-batches-bin"), "valid")).rejects.toThrow('cifar10: expected split train or test, got "valid"');
  });
});

describe("cifar100", () => {
  const dir = join(tmp, "c100", "cifar-100-binary");
  const fine = Array.from({ length: 100 }, (_, c) => `fine_${c}`);
  const coarse = Array.from({ length: 20 }, (_, c) => `coarse_${c}`);
  writeFile(join(dir, "train.bin"), concat([0, 1, 2, 3, 4].map((j) => cifarRecord([j * 4, 99 - j * 13], image(j)))));
  writeFile(join(dir, "test.bin"), cifarRecord([19, 0], image(9)));
  writeFile(join(dir, "fine_label_names.txt"), fine.join("\n"));
  writeFile(join(dir, "coarse_label_names.txt"), coarse.join("\r\n"));

  it("fine and coarse labels from the two label bytes, pixels after both", async () => {
    const f = await openCifar("cifar100", join(tmp, "c100"), "train");
    const c = await openCifar("cifar100-coarse", dir, "train");
    expect(Array.from(f.labels)).toEqual([99, 86, 73, 60, 47]);
    expect(Array.from(c.labels)).toEqual([0, 4, 8, 12, 16]);
    expect(f.classes).toEqual(fine);
    expect(c.classes).toEqual(coarse);
    expect(Buffer.from((await f.image(4)).data).equals(Buffer.from(image(4)))).toBe(true);
    expect(Buffer.from((await c.image(1)).data).equals(Buffer.from(image(1)))).toBe(true);
    const t = await openCifar("cifar100", dir, "test");
    expect([t.length, t.labels[0]]).toEqual([1, 0]);
  });

  it("rejects a CIFAR-10-sized file as CIFAR-100", async () => {
    const bad = join(tmp, "c100bad");
    writeFile(join(bad, "test.bin"), concat([cifarRecord([1], image(0)), cifarRecord([2], image(1))]));
    await expect(openCifar("cifar100", bad, "test")).rejects.toThrow(`to hold whole 3074-byte records (2 label byte(s) + 3072 pixels), got 6146 bytes`);
  });
});
