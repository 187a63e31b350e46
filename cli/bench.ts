// `bench <subject>`: benchmarks, one file each in bench/. Never part of `npm test`.
import type { Command } from "./command.js";
import { HelpRequested, UsageError } from "./command.js";
import { BENCHES } from "../bench/index.js";

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
      if (!(err instanceof HelpRequested)) throw err;
      console.log(b.usage);
    }
  },
};
