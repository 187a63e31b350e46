// Command-line entry: `node dist/run.js <command> [--flag value ...]`. It only parses the command name and
// dispatches through the table below; each command lives in cli/<command>.ts, the benchmarks behind `bench` in
// bench/.
import { spawn } from "node:child_process";
import { realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { type Command, HelpRequested, UsageError } from "./util/command.js";
import { info } from "./cli/info.js";
import { bench } from "./bench/index.js";
import { params } from "./cli/params.js";
import { features } from "./cli/features.js";
import { data } from "./cli/data.js";
import { exportCommand } from "./cli/export.js";
import { knn } from "./cli/knn.js";
import { experiment } from "./cli/experiment.js";
import { report } from "./cli/report.js";
import { compare } from "./cli/compare.js";
import { tune } from "./cli/tune.js";
import { analyze } from "./cli/analyze.js";
import { pretrainCommand } from "./cli/pretrain.js";
import { closeDevice } from "./engine/device.js";
import { setWarningSink } from "./engine/runtime.js";
import { readSettings } from "./engine/settings.js";
import { describeFileError, isFileError } from "./util/file-errors.js";
import { LineFilter } from "./util/line-filter.js";

const COMMANDS: Record<string, Command> = {
  experiment,
  report,
  compare,
  analyze,
  pretrain: pretrainCommand,
  info,
  params,
  features,
  data,
  export: exportCommand,
  knn,
  tune,
  bench,
};

function listCommands(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((n) => n.length));
  return Object.entries(COMMANDS)
    .map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`)
    .join("\n");
}

const USAGE = `usage: node dist/run.js <command> [flags]   (node dist/run.js <command> --help for its flags)

commands:
${listCommands()}`;

// Runs one command line; resolves with the exit code: 0, 1 for an error, 2 for a bad command line.
export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === "--help" || name === "-h" || name === "help") {
    console.log(USAGE);
    return 0;
  }
  // No arguments: the embedded default study.
  const command = name === undefined ? experiment : COMMANDS[name];
  if (command === undefined) {
    console.error(`unknown command "${name}"\n\n${USAGE}`);
    return 2;
  }
  setWarningSink((message) => console.error(`warning: ${message}`));
  try {
    // Every command, with a device or without (data, params, report), refuses a bad or unknown PEFT_ setting.
    readSettings();
    await command.run(rest);
    return 0;
  } catch (err) {
    if (err instanceof HelpRequested) {
      console.log(command.usage);
      return 0;
    }
    if (err instanceof UsageError) {
      // A sub-command's error (bench <subject>) names itself and brings its own usage.
      const text = err.usage === undefined ? `${name ?? "experiment"}: ${err.message}\n\n${command.usage}` : `${err.message}\n\n${err.usage}`;
      console.error(text);
      return 2;
    }
    if (err instanceof Error && process.env.DEBUG) console.error(err.stack);
    else if (isFileError(err)) console.error(`error: ${describeFileError(err)}`);
    else console.error(err instanceof Error ? `error: ${err.message}` : err);
    return 1;
  }
}

// Dawn's C++ prints two harmless warnings on every start, while it lists the adapters, with fprintf on the
// process's stderr: before any callback, toggle or limit of ours applies (docs/ENGINE.md). In a terminal, where they
// read like a problem to every new user, the program runs itself as a child whose stderr passes through a filter
// that leaves out exactly those two lines; progress bars and everything else pass unchanged. Redirected output (logs,
// tests, Slurm) keeps one plain process and the lines.
const DAWN_NOISE = { hold: "Warning: maxDynamic", drop: /^Warning: maxDynamic(Uniform|Storage)BuffersPerPipelineLayout artificially reduced / };
const FILTERED = "DAWN_NOISE_FILTERED"; // set in the child: its stderr is the parent's filter, in front of a terminal

function runFiltered(script: string): void {
  const child = spawn(process.execPath, [...process.execArgv, script, ...process.argv.slice(2)], {
    stdio: ["inherit", "inherit", "pipe", "ipc"], // the IPC channel closes when this process dies, however it dies
    env: { ...process.env, [FILTERED]: "1" },
  });
  const filter = new LineFilter(DAWN_NOISE.hold, DAWN_NOISE.drop, (text) => process.stderr.write(text));
  child.stderr!.setEncoding("utf8").on("data", (text: string) => filter.push(text));
  // Ctrl-C signals the terminal's whole process group: the child says how to resume and exits 130; wait for it.
  process.on("SIGINT", () => undefined);
  process.on("SIGTERM", () => child.kill("SIGTERM"));
  child.on("close", (code, signal) => {
    filter.end();
    if (signal === null) process.exit(code ?? 1);
    process.removeAllListeners(signal);
    process.kill(process.pid, signal); // die as the child did
  });
}

// As the program (dist/run.js), not when a test imports this file. Ctrl-C exits at once: every file is written
// atomically, so nothing partial is left, and a rerun of the same command resumes. Exit explicitly at the end:
// dawn-node can keep the event loop alive after the work is done.
if (process.argv[1] !== undefined && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  if (process.stderr.isTTY && process.env[FILTERED] === undefined) runFiltered(process.argv[1]);
  else {
    // The child's stderr is a pipe to the filter, but a terminal behind it: progress redraws its line as there.
    if (process.env[FILTERED] !== undefined) Object.defineProperty(process.stderr, "isTTY", { value: true });
    // A parent of ours (the filter above, or `experiment --workers`) holds an IPC channel to this process, which
    // closes when it dies, however it dies: killed outright (SIGKILL), it leaves no one to read this process's output
    // or collect its work, so stop too, as one process would have (every write is atomic; a rerun resumes).
    // Every exit destroys the device first, which waits for the work in flight (engine/device.ts closeDevice).
    const exit = (code: number) => {
      closeDevice();
      process.exit(code);
    };
    if (process.channel) {
      process.channel.unref();
      process.on("disconnect", () => exit(137));
    }
    process.on("SIGINT", () => {
      console.error("\ninterrupted; rerun the same command to resume");
      exit(130);
    });
    main(process.argv.slice(2)).then(exit);
  }
}
