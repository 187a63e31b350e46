// A study's run folder read back for reports across runs (study/paper-report.ts) and comparisons of two
// (study/run-comparison.ts): its config (config.json), the original backbone's k-NN accuracy (baseline.json) and
// every cell result there is (cells/<id>/result.json), made into results as the runner makes them, so that a run
// still going, or stopped, reports what it has and names the cells it lacks. results.json, written when a run
// completes, adds the notes (data identities, backbone); without it the backbone's name comes from its checkpoint's
// header, where the file is still there.
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { readJsonFile } from "../util/json-file.js";
import { basename, join, resolve } from "node:path";
import { readArchitecture } from "../vit/checkpoint.js";
import { type StudyConfig, parseStudyConfig } from "./config.js";
import { cellResultPath, cellsOf } from "./cells.js";
import { readBackboneRecord, readBaseline, readCellOutcome } from "./result-files.js";
import { type CellOutcome, type StudyNotes, type StudyResults, modelLabel, summarize } from "./results.js";

export interface RunFolder {
  dir: string; // absolute
  config: StudyConfig;
  results?: StudyResults; // absent while no baseline.json exists: nothing is finished (cells without it are refused)
  missing: string[]; // the config's cells without a result.json
  model: string; // modelLabel of the backbone, or "unknown backbone"
  backbone: string; // which backbone, as 64 hex digits: its SHA-256 (backbone.json), else a hash of where it came from
}

// `command`: the command reading it, which its errors name (report's also reads pre-training folders).
export async function readRunFolder(folder: string, command: "report" | "compare" = "report"): Promise<RunFolder> {
  const readJson = async <T>(path: string): Promise<T> => (await readJsonFile(path, command)) as T;
  const dir = resolve(folder);
  const configPath = join(dir, "config.json");
  const pretrained = command === "report" ? ", or a pretrain folder (DINO's metrics.json from its first checkpoint on, or a finished run's backbone.json)" : "";
  if (!existsSync(configPath)) throw new Error(`${command}: expected a run folder holding config.json (experiment's)${pretrained}, got ${dir}${existsSync(dir) ? "" : " (it does not exist)"}`);
  const config = parseStudyConfig(await readJson(configPath), configPath);
  const outcomes: CellOutcome[] = [];
  const missing: string[] = [];
  for (const cell of cellsOf(config)) {
    if (existsSync(cellResultPath(dir, cell.id))) outcomes.push(await readCellOutcome(dir, cell.id, config, command));
    else missing.push(cell.id);
  }
  const written = existsSync(join(dir, "results.json")) ? (await readJson<{ notes: StudyNotes }>(join(dir, "results.json"))).notes : undefined;
  // The runner's record of the backbone: its file's absolute path (config.json's may be relative to where the run
  // started) and, from builds that record it, its SHA-256.
  const recorded = await readBackboneRecord(dir, command);
  const model = written?.model ?? (await modelOf(config, recorded?.path));
  const backbone = recorded?.sha256 ?? createHash("sha256").update(recorded?.path ?? JSON.stringify(config.backbone)).digest("hex");
  const notes: StudyNotes = written ?? { backbone: config.backbone.checkpoint ?? `pre-trained ViT (${basename(dir)})`, model, data: {}, imageSize: config.imageSize ?? 0 };
  const baselinePath = join(dir, "baseline.json");
  // The preparation writes baseline.json before any cell trains: cells without it are a folder whose baseline.json
  // was removed, and their forgetting has nothing to be measured against (reported as none finished, the counts
  // would contradict the cells' own results).
  if (outcomes.length > 0 && !existsSync(baselinePath)) {
    throw new Error(`${command}: ${dir}: ${outcomes.length} cell result(s) but no baseline.json (the original backbone's k-NN, which the preparation writes): run experiment --prepare-only --config ${configPath} --out ${dir} to measure it again`);
  }
  const results = existsSync(baselinePath) ? summarize(config, await readBaseline(baselinePath, config, command), outcomes, notes) : undefined;
  return { dir, config, results, missing, model, backbone };
}

// The backbone's name from the config: a pre-training's model, or a checkpoint's header where the file is still
// there (where backbone.json says, else the config's path).
async function modelOf(config: StudyConfig, recordedPath: string | undefined): Promise<string> {
  const { checkpoint, heads, key, pretrain } = config.backbone;
  if (pretrain) return modelLabel(pretrain.model);
  const path = [recordedPath, checkpoint && resolve(checkpoint)].find((p) => p !== undefined && existsSync(p));
  if (path) return modelLabel(await readArchitecture(path, { heads, key }));
  return "unknown backbone";
}
