// The shape every command exports (cli/<command>.ts, and bench/index.ts for `bench`). run.ts dispatches through a
// table of these.
export interface Command {
  summary: string; // one line for the command list
  usage: string; // full help text, printed by --help and on bad flags
  run(argv: string[]): Promise<void>;
}

// Thrown for a bad command line: run.ts prints the message and the command's usage, then exits 2. A sub-command's
// (bench <subject>) carries its own `usage`, and its message names it.
export class UsageError extends Error {
  constructor(
    message: string,
    readonly usage?: string,
  ) {
    super(message);
  }
}

// Thrown by parseArgs on --help or -h: the command that owns the flags prints its usage and exits 0.
export class HelpRequested extends Error {}
