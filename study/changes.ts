// What a changed config does to a run folder's finished cells. A cell's result depends on the whole config but for
// the keys that only choose which cells there are (strategies, learningRates, seeds) or how they are reported
// (name, selectBy, analysis, knn.val, knn.otherBanks: the table, figures and analysis are remade from the cells, and
// the scores of each cell's best checkpoint on knn.val's images and on the other banks are kept beside it), and the
// microBatch settings (studyIdentity drops them). A change of those grows or shrinks the run and keeps its finished
// cells; a change of anything else (backbone, knn, transfer, training, imageSize, and any key added later) would mix
// two studies' cells in one table. A key that holds one value per strategy (headInit; linearProbe, which only the
// -lpft strategies read) only has to agree on the strategies both configs have: an added or removed strategy's entry
// touches no finished cell. And a data spec with a `fraction` draws its images with the first seed (openStudyData in
// study/study-data.ts), so with such a spec a new seeds[0] changes the data of every cell (knn.val's and the other
// banks' aside: their scores are made anew for the images they then hold).
import { type StudyConfig, headInitFor, studyIdentity } from "./config.js";
import { type Strategy, strategyName } from "../peft/strategy.js";
import { differences, show } from "../util/differences.js";
import { isObject } from "../util/json-file.js";

// The keys whose changes keep the finished cells: top-level ones, and key paths within another.
const KEEPING = ["strategies", "learningRates", "seeds", "name", "selectBy", "analysis"];
const KEEPING_PATHS = ["knn.val", "knn.otherBanks"];
const keeps = (path: string) => KEEPING.includes(path.split(".")[0]) || KEEPING_PATHS.some((k) => path === k || path.startsWith(`${k}.`));

// The top-level keys with a value per strategy, each with its reader.
const PER_STRATEGY: Record<string, (config: StudyConfig, s: Strategy) => unknown> = {
  headInit: headInitFor,
  linearProbe: (config, s) => (s.probeFirst ? config.linearProbe : undefined),
};

export interface ConfigChanges {
  keeping: string[]; // changes that keep the finished cells, e.g. "seeds: [0] -> [0,1]"
  refusing: string[]; // changes that make them another study's, e.g. "training.steps: 60 -> 400"
}

export function configChanges(before: StudyConfig, after: StudyConfig): ConfigChanges {
  const now = JSON.parse(studyIdentity(after));
  const changes: ConfigChanges = { keeping: [], refusing: [] };
  const shared = after.strategies.filter((s) => before.strategies.some((b) => strategyName(b) === strategyName(s)));
  for (const d of differences(JSON.parse(studyIdentity(before)), now)) {
    const key = d.path.split(".")[0];
    if (keeps(d.path)) changes.keeping.push(d.text);
    else if (!(key in PER_STRATEGY)) changes.refusing.push(d.text);
    else if (shared.every((s) => show(PER_STRATEGY[key](before, s)) === show(PER_STRATEGY[key](after, s)))) changes.keeping.push(d.text);
  }
  for (const [key, valueFor] of Object.entries(PER_STRATEGY)) {
    for (const s of shared) {
      const [was, is] = [show(valueFor(before, s)), show(valueFor(after, s))];
      if (was !== is) changes.refusing.push(`${key} of ${strategyName(s)}: ${was} -> ${is}`);
    }
  }
  const drawn = fractionKeys(now, "").filter((path) => !keeps(path)); // knn.val's and the other banks' scores are made anew
  if (before.seeds[0] !== after.seeds[0] && drawn.length > 0) {
    changes.refusing.push(`seeds[0]: ${before.seeds[0]} -> ${after.seeds[0]} (the first seed draws the images of ${drawn.join(", ")})`);
  }
  return changes;
}

// The paths of every `fraction` key: the data specs whose images the first seed draws.
function fractionKeys(v: unknown, path: string): string[] {
  if (!isObject(v)) return [];
  return Object.entries(v).flatMap(([key, x]) => {
    const at = path ? `${path}.${key}` : key;
    return key === "fraction" ? [at] : fractionKeys(x, at);
  });
}
