// `report`: the paper's figures and a combined Table 1 from run folders of `experiment`, finished or not
// (study/paper-report.ts), and the k-NN curves of pre-training runs (study/pretrain-report.ts). The one command with
// positional arguments: the run folders, before or among its flags.
import { existsSync, realpathSync, statSync } from "node:fs";
import { isAbsolute, relative, resolve } from "node:path";
import type { Command } from "../util/command.js";
import { UsageError } from "../util/command.js";
import { parseArgs, required } from "../util/args.js";
import { readRunFolder } from "../study/run-folder.js";
import { datasetOf, distinctBackbones, writePaperReport } from "../study/paper-report.js";
import { isPretrainRun, readPretrainCurve, writePretrainReport } from "../study/pretrain-report.js";

export const FLAGS = { out: "string", json: "boolean" } as const;

export const report: Command = {
  summary: "the paper's Figures 2, 3 and 4 and a combined Table 1 from run folders of `experiment`; pre-training curves",
  usage: `usage: node dist/run.js report RUN... --out DIR [--json]

  RUN          run folders of \`experiment\` (e.g. runs of the presets in configs/paper/), finished or still going:
               each reports its finished cells and names the missing ones; or pre-training runs: folders of
               \`pretrain\` (DINO's: metrics.json, while it runs too; supervised: backbone.json, when finished,
               with the scores at step 0 and the end) whose config had "knn", and k-NN curves of
               scripts/dino-torch-reference.py (--out FILE.json), drawn together as pretrain-knn (source k-NN accuracy
               against step, a line per run; .csv beside it)
  --out        the folder for table1.md, table1.csv and the figures (.svg, .png, .vl.json); not within a run
               reported, whose own figures it would overwrite
  --json       print what was written and drawn as JSON

Which figures it draws follows from the runs: Figure 2 (one panel per transfer dataset) when runs of one backbone
cover two or more datasets; Figure 3 (transfer and source k-NN accuracy against the number of new blocks, a line
per learning rate) for each run with Block Expansion at two or more numbers of blocks and rates; Figure 4 (a panel
per backbone) when runs of a second backbone, e.g. ViT-S/16, are among them. It says what it drew and why it left
a figure out. A backbone is a file, not a shape: runs of two backbones of one architecture (a DINO and a supervised
ViT) are told apart by the SHA-256 their backbone.json records. Table 1 across runs: every run's table rows, mean ±
std over seeds, with the images that chose the checkpoints (test, or transfer.val). Each run folder is read once,
however it is spelled.`,
  async run(argv) {
    // Flags and their values apart from the run folders; parseArgs checks the flags.
    const dirs: string[] = [];
    const flagArgs: string[] = [];
    for (let i = 0; i < argv.length; i++) {
      const arg = argv[i];
      if (!arg.startsWith("-")) dirs.push(arg);
      else {
        flagArgs.push(arg);
        const name = arg.slice(2).split("=")[0];
        if (!arg.includes("=") && FLAGS[name as keyof typeof FLAGS] === "string" && i + 1 < argv.length) flagArgs.push(argv[++i]);
      }
    }
    const flags = parseArgs(flagArgs, FLAGS);
    const out = required(flags.out, "out");
    if (dirs.length === 0) throw new UsageError("expected one or more run folders, got none");
    // One folder however it is spelled (runs/A, runs/A/, ./runs/A, a link to it): each run once in the table.
    const unique = [...new Map(dirs.map((d) => [existsSync(d) ? realpathSync(d) : resolve(d), d])).values()];
    const inside = unique.find((d) => existsSync(d) && statSync(d).isDirectory() && isWithin(resolve(out), realpathSync(d)));
    if (inside) throw new UsageError(`--out: expected a folder outside the runs reported (it would overwrite their own figures and files), got ${out}, within ${inside}`);
    const curves = [];
    for (const path of unique.filter(isPretrainRun)) curves.push(await readPretrainCurve(path));
    const read = [];
    for (const dir of unique.filter((d) => !isPretrainRun(d))) read.push(await readRunFolder(dir));
    const runs = distinctBackbones(read);
    const { files, plan } = runs.length > 0 ? await writePaperReport(out, runs) : { files: [] as string[], plan: { figures: [], notDrawn: [] as string[] } };
    if (curves.length > 0) files.push(...(await writePretrainReport(out, curves)));
    const summary = {
      pretrain: curves.map((c) => ({ run: c.run, points: c.points.length, last: c.points.at(-1) })),
      runs: runs.map((r) => ({ dir: r.dir, name: r.config.name, backbone: r.model, data: datasetOf(r), finished: r.results?.cells.length ?? 0, diverged: r.results?.diverged.length ?? 0, missing: r.missing })),
      drew: plan.figures.map((f) => ({ figure: f.name, about: f.about })),
      notDrawn: plan.notDrawn,
      files,
    };
    if (flags.json) {
      console.log(JSON.stringify(summary, null, 2));
      return;
    }
    for (const c of summary.pretrain) console.log(`${c.run}: ${c.points} k-NN scores${c.last ? `, the last ${c.last.knn.toFixed(1)}% at step ${c.last.step}` : ""}`);
    for (const r of summary.runs) {
      const done = `${r.finished + r.diverged} of ${r.finished + r.diverged + r.missing.length} cells`;
      console.log(`${r.name} (${r.dir}): ${r.backbone}, ${r.data}, ${done}${r.missing.length > 0 ? `; missing: ${r.missing.join(", ")}` : ""}`);
    }
    for (const f of summary.drew) console.log(`drew ${f.figure}: ${f.about}`);
    for (const line of summary.notDrawn) console.log(`not drawn: ${line}`);
    console.log(`wrote ${files.join(", ")}`);
  },
};

// Whether `path` is `dir` or inside it (an --out that does not exist yet: by its resolved path).
function isWithin(path: string, dir: string): boolean {
  const rel = relative(dir, existsSync(path) ? realpathSync(path) : path);
  return rel === "" || (!rel.startsWith("..") && !isAbsolute(rel));
}
