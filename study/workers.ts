// Several worker processes of one study on one machine (experiment --workers N): each is `experiment --cells ...`
// on the same run folder, and the claims (study/claims.ts) share the cells out among them. Each worker gets its own
// adapter where several are named (worker i the i-th, round robin), so that one machine's GPUs all work. Their
// output comes back line by line, each line marked with the worker's number.
import { spawn } from "node:child_process";
import { type PciDevice, pciAddress, pciDeviceMissing } from "../engine/pci.js";

export interface WorkersOptions {
  command: string[]; // how to run this program: [node, .../dist/run.js]
  args: string[]; // every worker's `experiment` arguments
  count: number;
  adapters?: string[]; // worker i runs with --adapter adapters[i % length]
  log: (line: string) => void;
}

// `--adapters`' list as the workers take it: "each-gpu" is every display device on the PCI bus by address
// (engine/pci.ts), which tells identical GPUs apart; other entries stay as given.
export function workerAdapters(adapters: string[], devices: PciDevice[]): string[] {
  if (!adapters.includes(EACH_GPU)) {
    for (const a of adapters) {
      const address = pciAddress(a);
      const missing = address && pciDeviceMissing(address, devices);
      if (missing) throw new Error(`experiment: --adapters: ${missing}`);
    }
    return adapters;
  }
  if (adapters.length > 1) throw new Error(`experiment: --adapters ${EACH_GPU} stands alone, got ${adapters.join(",")}`);
  if (devices.length === 0) throw new Error(`experiment: --adapters ${EACH_GPU} found no display device on the PCI bus (/sys/bus/pci/devices)`);
  return devices.map((d) => `pci:${d.address}`);
}
export const EACH_GPU = "each-gpu";

// How many workers to start for `left` cells still to run: at most one per cell, since a worker more would start a
// process (and open a device) only to find every cell claimed or finished. The note says so where that is fewer
// than --workers asked for.
export function workerCount(asked: number, left: number): { count: number; note?: string } {
  if (asked <= left) return { count: asked };
  return { count: left, note: `--workers ${asked}: ${left === 0 ? "no cell is left to run, so no worker starts" : `${left} cell(s) left to run, so ${left} worker(s), one per cell`}` };
}

// Resolves when every worker has exited; rejects naming the workers that failed.
export async function runWorkers(o: WorkersOptions): Promise<void> {
  const exits = await Promise.all(
    Array.from({ length: o.count }, (_, i) => {
      const adapter = o.adapters?.length ? ["--adapter", o.adapters[i % o.adapters.length]] : [];
      return runOne(o, [...o.args, ...adapter], `[worker ${i + 1}] `);
    }),
  );
  const failed = exits.map((e, i) => (e === 0 ? "" : `worker ${i + 1} (${e})`)).filter(Boolean);
  if (failed.length > 0) throw new Error(`experiment: ${failed.join(", ")} failed; their output is above. Rerunning the same command resumes their cells`);
}

// Resolves with "exit code N" or "signal S", or 0 for success.
function runOne(o: WorkersOptions, args: string[], prefix: string): Promise<0 | string> {
  const [program, ...first] = o.command;
  // The IPC channel closes when this process dies, however it dies: the worker (run.ts) then stops too.
  const child = spawn(program, [...first, ...args], { stdio: ["ignore", "pipe", "pipe", "ipc"] });
  for (const stream of [child.stdout!, child.stderr!]) {
    let rest = "";
    stream.setEncoding("utf8").on("data", (text: string) => {
      // Progress lines redraw with \r: each is a line here.
      const lines = (rest + text).split(/\r?\n|\r/);
      rest = lines.pop()!;
      for (const line of lines) if (line.length > 0) o.log(prefix + line);
    });
    stream.on("end", () => rest.length > 0 && o.log(prefix + rest));
  }
  return new Promise((done, fail) => {
    child.on("error", fail);
    child.on("close", (code, signal) => done(code === 0 ? 0 : signal ? `signal ${signal}` : `exit code ${code}`));
  });
}
