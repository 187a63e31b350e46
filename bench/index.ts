// `bench <subject>`: the benchmarks, one file each in this folder, never part of `npm test`.
import { type Command, HelpRequested, UsageError } from "../util/command.js";
import { dataBench } from "./data.js";
import { vitBench } from "./vit.js";
import { ops } from "./ops.js";
import { waitBench } from "./wait.js";
import { knnBench } from "./knn.js";
import { matmul } from "./matmul.js";
import { attention } from "./attention.js";

export const BENCHES: Record<string, Command> = { matmul, ops, attention, vit: vitBench, data: dataBench, knn: knnBench, wait: waitBench };

export const bench: Command = {
  summary: "benchmarks: " + Object.keys(BENCHES).join(", "),
  get usage() {
    const rows = Object.entries(BENCHES).map(([name, b]) => `  ${name.padEnd(8)} ${b.summary}`);
    return `usage: node dist/run.js bench <subject> [flags]   (bench <subject> --help for its flags)\n\nsubjects:\n${rows.join("\n")}`;
  },
  async run(argv) {
    const [subject, ...rest] = argv;
    if (subject === "--help" || subject === "-h") throw new HelpRequested();
    const b = subject === undefined ? undefined : BENCHES[subject];
    if (!b) throw new UsageError(subject === undefined ? "missing subject" : `unknown subject "${subject}"`);
    try {
      await b.run(rest);
    } catch (err) {
      // A bad flag of a subject is shown with that subject's flags.
      if (err instanceof UsageError && err.usage === undefined) throw new UsageError(`bench ${subject}: ${err.message}`, b.usage);
      if (!(err instanceof HelpRequested)) throw err;
      console.log(b.usage);
    }
  },
};
