// `report`: the paper's figures and a combined Table 1 from run folders of `experiment`, finished or not
// (study/paper-report.ts). The one command with positional arguments: the run folders, before or among its flags.
import type { Command } from "../util/command.js";
import { UsageError } from "../util/command.js";
import { parseArgs, required } from "../util/args.js";
import { readRunFolder } from "../study/run-folder.js";
import { datasetOf, writePaperReport } from "../study/paper-report.js";

const FLAGS = { out: "string", json: "boolean" } as const;

export const report: Command = {
  summary: "the paper's Figures 2, 3 and 4 and a combined Table 1 from run folders of `experiment`",
  usage: `usage: node dist/run.js report RUN_DIR... --out DIR [--json]

  RUN_DIR      run folders of \`experiment\` (e.g. runs of the presets in configs/paper/), finished or still going:
               each reports its finished cells and names the missing ones
  --out        the folder for table1.md, table1.csv and the figures (.svg, .png, .vl.json)
  --json       print what was written and drawn as JSON

Which figures it draws follows from the runs: Figure 2 (one panel per transfer dataset) when runs of one backbone
cover two or more datasets; Figure 3 (transfer and source k-NN accuracy against the number of new blocks, a line
per learning rate) for each run with Block Expansion at two or more numbers of blocks and rates; Figure 4 (a panel
per backbone) when runs of a second backbone, e.g. ViT-S/16, are among them. It says what it drew and why it left
a figure out. Table 1 across runs: every run's table rows, mean ± std over seeds, with the images that chose the
checkpoints (test, or transfer.val).`,
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
    const unique = [...new Set(dirs)];
    const runs = [];
    for (const dir of unique) runs.push(await readRunFolder(dir));
    const { files, plan } = await writePaperReport(out, runs);
    const summary = {
      runs: runs.map((r) => ({ dir: r.dir, name: r.config.name, backbone: r.model, data: datasetOf(r), finished: r.results?.cells.length ?? 0, diverged: r.results?.diverged.length ?? 0, missing: r.missing })),
      drew: plan.figures.map((f) => ({ figure: f.name, about: f.about })),
      notDrawn: plan.notDrawn,
      files,
    };
    if (flags.json) {
      console.log(JSON.stringify(summary, null, 2));
      return;
    }
    for (const r of summary.runs) {
      const done = `${r.finished + r.diverged} of ${r.finished + r.diverged + r.missing.length} cells`;
      console.log(`${r.name} (${r.dir}): ${r.backbone}, ${r.data}, ${done}${r.missing.length > 0 ? `; missing: ${r.missing.join(", ")}` : ""}`);
    }
    for (const f of summary.drew) console.log(`drew ${f.figure}: ${f.about}`);
    for (const line of summary.notDrawn) console.log(`not drawn: ${line}`);
    console.log(`wrote ${files.join(", ")}`);
  },
};
