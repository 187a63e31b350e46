// A text stream with some lines left out: complete lines that match `drop` are not written, everything else is,
// in order. A partial line is written at once (a progress bar redrawn with "\r" must not wait for a newline) unless
// it could still become a dropped line, i.e. it starts like `hold`; then it waits for the rest of its line.
export class LineFilter {
  private pending = "";

  constructor(
    private readonly hold: string, // the start every dropped line shares
    private readonly drop: RegExp, // tested on each complete line, newline excluded
    private readonly write: (text: string) => void,
  ) {}

  push(text: string): void {
    this.pending += text;
    for (let end = this.pending.indexOf("\n"); end >= 0; end = this.pending.indexOf("\n")) {
      const line = this.pending.slice(0, end + 1);
      this.pending = this.pending.slice(end + 1);
      if (!this.drop.test(line.slice(0, -1))) this.write(line);
    }
    const couldBeDropped = this.hold.startsWith(this.pending) || this.pending.startsWith(this.hold);
    if (this.pending.length > 0 && !couldBeDropped) {
      this.write(this.pending);
      this.pending = "";
    }
  }

  // The end of the stream: a last line without a newline is written as it is.
  end(): void {
    if (this.pending.length > 0 && !this.drop.test(this.pending)) this.write(this.pending);
    this.pending = "";
  }
}
