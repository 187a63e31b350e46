// study/changes.ts: which config changes keep a run folder's finished cells (strategies, learning rates, seeds,
// name, selectBy, microBatch, a per-strategy value of an added strategy, knn.val, knn.otherBanks) and which are
// refused, named by key path, the first seed with a `fraction` included.
import { describe, expect, it } from "vitest";
import { DEFAULT_STUDY, parseStudyConfig } from "../../study/config.js";
import { configChanges } from "../../study/changes.js";

// The default study is a template; every key the tests compare is pinned here (knn.atSteps too: it must fit
// within training.steps).
const training = { steps: 60, batchSize: 8, evalEvery: 20 };
const knn = { ...DEFAULT_STUDY.knn, atSteps: [0, 10, 60] };
const changed = (overrides: Record<string, unknown>) =>
  parseStudyConfig({ ...DEFAULT_STUDY, name: "a", selectBy: "transfer", strategies: ["full", "linear"], learningRates: [0.05], seeds: [0], training, knn, ...overrides });
const base = changed({});

describe("configChanges", () => {
  it("finds nothing between a config and itself, nor in the microBatch settings", () => {
    expect(configChanges(base, base)).toEqual({ keeping: [], refusing: [] });
    expect(configChanges(base, changed({ training: { ...training, microBatch: 4 } }))).toEqual({ keeping: [], refusing: [] });
  });

  it("keeps the cells through new strategies, learning rates (either form), seeds, name and selectBy", () => {
    const grown = changed({ name: "other", selectBy: "mean", strategies: ["full", "linear", "lora-r4"], learningRates: { full: [0.05], linear: [0.05, 0.5], "lora-r4": [0.05] }, seeds: [0, 1] });
    expect(configChanges(base, grown)).toEqual({
      keeping: [
        'name: "a" -> "other"',
        'strategies: ["full","linear"] -> ["full","linear","lora-r4"]',
        'learningRates: [0.05] -> {"full":[0.05],"linear":[0.05,0.5],"lora-r4":[0.05]}',
        "seeds: [0] -> [0,1]",
        'selectBy: "transfer" -> "mean"',
      ],
      refusing: [],
    });
  });

  it("keeps the cells through a changed, added or removed analysis", () => {
    for (const analysis of [{ images: 7 }, { images: 9, gridImages: 2, bankPerClass: 3 }]) {
      const c = configChanges(base, changed({ analysis }));
      expect(c.refusing).toEqual([]);
      expect(c.keeping.length).toBeGreaterThan(0);
      for (const k of c.keeping) expect(k).toMatch(/^analysis/);
      expect(configChanges(changed({ analysis }), base).refusing).toEqual([]);
    }
  });

  it("refuses any other change, by key path, an absent key included", () => {
    const other = changed({ training: { ...training, steps: 400, clipNorm: 1 }, imageSize: 32 });
    expect(configChanges(base, other).refusing).toEqual(["training.steps: 60 -> 400", "training.clipNorm: absent -> 1", "imageSize: absent -> 32"]);
  });

  it("keeps the cells through a per-strategy value for an added strategy, but not a changed one for a kept strategy", () => {
    const three = { strategies: ["full", "linear", "lora-r4"], learningRates: [0.05] };
    const perName = changed({ ...three, headInit: { full: "uniform", linear: "uniform", "lora-r4": "trunc-normal" } });
    expect(configChanges(base, perName)).toEqual({
      keeping: ['strategies: ["full","linear"] -> ["full","linear","lora-r4"]', 'headInit: absent -> {"full":"uniform","linear":"uniform","lora-r4":"trunc-normal"}'],
      refusing: [],
    });
    expect(configChanges(perName, changed({ ...three, headInit: { full: "uniform", linear: "uniform", "lora-r4": "uniform" } }))).toEqual({ keeping: [], refusing: ['headInit of lora-r4: "trunc-normal" -> "uniform"'] });
    expect(configChanges(base, changed({ headInit: "trunc-normal" })).refusing).toEqual(['headInit of full: "uniform" -> "trunc-normal"', 'headInit of linear: "uniform" -> "trunc-normal"']);
  });

  it("keeps the cells through a linear probe for an added -lpft strategy, but not a changed one for a kept -lpft strategy", () => {
    const probed = changed({ strategies: ["full", "linear", "full-lpft"], linearProbe: { lr: 1 } });
    expect(configChanges(base, probed)).toEqual({ keeping: ['strategies: ["full","linear"] -> ["full","linear","full-lpft"]', 'linearProbe: absent -> {"lr":1}'], refusing: [] });
    expect(configChanges(probed, changed({ strategies: ["full", "linear", "full-lpft"], linearProbe: { lr: 1, steps: 30 } })).refusing).toEqual(['linearProbe of full-lpft: {"lr":1} -> {"lr":1,"steps":30}']);
  });

  it("refuses a new first seed when a data spec draws a fraction with it, and only then", () => {
    expect(configChanges(base, changed({ seeds: [1] })).refusing).toEqual([]);
    const drawn = { ...DEFAULT_STUDY.transfer, train: { ...DEFAULT_STUDY.transfer.train, fraction: 0.5 } };
    const before = changed({ transfer: drawn });
    expect(configChanges(before, changed({ transfer: drawn, seeds: [0, 1] })).refusing).toEqual([]);
    expect(configChanges(before, changed({ transfer: drawn, seeds: [1, 0] })).refusing).toEqual(["seeds[0]: 0 -> 1 (the first seed draws the images of transfer.train.fraction)"]);
  });

  it("keeps the cells through an added, changed or removed knn.val, and through a new first seed that draws its images", () => {
    const val = { ...DEFAULT_STUDY.knn.queries, perClass: 100, skipPerClass: 200 };
    const withVal = changed({ knn: { ...knn, val } });
    expect(configChanges(base, withVal).keeping).toEqual([expect.stringMatching(/^knn\.val: absent -> \{.*"skipPerClass":200/)]);
    expect(configChanges(withVal, changed({ knn: { ...knn, val: { ...val, perClass: 50 } } }))).toEqual({ keeping: ["knn.val.perClass: 100 -> 50"], refusing: [] });
    expect(configChanges(withVal, base).refusing).toEqual([]);
    const drawn = changed({ knn: { ...knn, val: { ...val, fraction: 0.5 } } });
    expect(configChanges(drawn, changed({ knn: { ...knn, val: { ...val, fraction: 0.5 } }, seeds: [1] })).refusing).toEqual([]);
    // The bank and the queries stay the cells' own.
    expect(configChanges(withVal, changed({ knn: { ...knn, val, queries: val } })).refusing).toEqual([expect.stringMatching(/^knn\.queries\.perClass: /), expect.stringMatching(/^knn\.queries\.skipPerClass: absent -> 200/)]);
  });

  it("keeps the cells through added, grown or removed knn.otherBanks", () => {
    const draw = (n: number) => ({ ...DEFAULT_STUDY.knn.bank, skipPerClass: 200 * n });
    const one = changed({ knn: { ...knn, otherBanks: [draw(1)] } });
    expect(configChanges(base, one)).toEqual({ keeping: [expect.stringMatching(/^knn\.otherBanks: absent -> \[\{.*"skipPerClass":200/)], refusing: [] });
    expect(configChanges(one, changed({ knn: { ...knn, otherBanks: [draw(1), draw(2)] } })).refusing).toEqual([]);
    expect(configChanges(one, base).refusing).toEqual([]);
  });
});
