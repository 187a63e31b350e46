// A progress line for long loops: step/total, a bar, loss, accuracy, learning rate, images/s and ETA.
// On a TTY it redraws one line in place (at most ~10 times a second); elsewhere (CI logs, files) it prints a
// full line each time another `percentStep`% of the steps is done, so logs stay short and readable.
// The caller owns the stream: library code passes one in only when a command asks for progress.

export interface ProgressFields {
  loss?: number;
  accuracy?: number; // percent
  lr?: number;
  imagesPerSecond?: number;
}

// process.stderr, or anything with write() (tests).
export interface ProgressStream {
  write(text: string): unknown;
  isTTY?: boolean;
}

export interface ProgressOptions {
  label: string; // e.g. "lora-r8 lr 0.01"
  total: number; // steps
  start?: number; // the step a resumed run starts from (the ETA counts only this run's pace)
  stream: ProgressStream;
  percentStep?: number; // non-TTY: a line every this many percent (default 10)
  now?: () => number; // ms clock, for tests
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "?";
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

export class Progress {
  private readonly tty: boolean;
  private readonly started: number;
  private lastDraw = -Infinity;
  private lastBucket = -1;
  private fields: ProgressFields = {};
  private drawn = false;
  private final: string | undefined; // non-TTY: the last line, printed once by finish()

  constructor(private readonly o: ProgressOptions) {
    this.tty = o.stream.isTTY === true;
    this.started = this.clock();
  }

  private clock(): number {
    return this.o.now ? this.o.now() : performance.now();
  }

  // `step` steps are done. Fields left out keep their last value (accuracy is known only after evaluations).
  update(step: number, fields: ProgressFields = {}): void {
    this.fields = { ...this.fields, ...Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined)) };
    const { total } = this.o;
    const now = this.clock();
    if (this.tty) {
      if (now - this.lastDraw < 100 && step < total) return;
      this.lastDraw = now;
      this.o.stream.write(`\r\x1b[2K${this.line(step, now)}`);
      this.drawn = true;
      return;
    }
    if (step >= total) {
      this.final = this.line(step, now);
      return;
    }
    const bucket = Math.floor((100 * step) / total / (this.o.percentStep ?? 10));
    if (bucket === this.lastBucket) return;
    this.lastBucket = bucket;
    this.o.stream.write(`${this.line(step, now)}\n`);
  }

  // Ends the in-place line so that later output starts on a fresh one; elsewhere prints the final line.
  finish(): void {
    if (this.tty && this.drawn) this.o.stream.write("\n");
    if (!this.tty && this.final !== undefined) this.o.stream.write(`${this.final}\n`);
    this.drawn = false;
    this.final = undefined;
  }

  line(step: number, now = this.clock()): string {
    const { total, label } = this.o;
    const width = 20;
    const filled = Math.round((width * Math.min(step, total)) / total);
    const parts = [`${label}`, `${String(step).padStart(String(total).length)}/${total}`, `[${"#".repeat(filled)}${".".repeat(width - filled)}]`];
    const f = this.fields;
    if (f.loss !== undefined) parts.push(`loss ${f.loss.toFixed(4)}`);
    if (f.accuracy !== undefined) parts.push(`acc ${f.accuracy.toFixed(2)}%`);
    if (f.lr !== undefined) parts.push(`lr ${f.lr.toExponential(2)}`);
    if (f.imagesPerSecond !== undefined) parts.push(`${f.imagesPerSecond.toFixed(0)} img/s`);
    const done = step - (this.o.start ?? 0);
    const elapsed = (now - this.started) / 1000;
    if (step >= total) parts.push(`done in ${formatDuration(elapsed)}`);
    else parts.push(`ETA ${done > 0 ? formatDuration((elapsed / done) * (total - step)) : "?"}`);
    return parts.join("  ");
  }
}
