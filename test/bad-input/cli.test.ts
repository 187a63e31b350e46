// Bad command lines for every command and bench subject: an unknown command, unknown flags, stray positional
// arguments, flags without their value, words where numbers go, fractions where integers go, missing required
// flags, values out of range and sizes past the device's or the machine's. Each exits with code 2 and names the
// command, argument or flag; `report`'s run folders, its positional arguments, have cases of their own. Bad
// environment variables and device flags exit 1 naming them, each in a process of its own.
import { spawnSync } from "node:child_process";
import { beforeAll, describe, expect, it } from "vitest";
import { buildProgram } from "../study/program.js";
import type { BadCase } from "./harness.js";
import { runCases, tempRoot } from "./harness.js";

const root = tempRoot("cli");

const COMMANDS = ["experiment", "pretrain", "info", "params", "features", "data", "export", "knn", "tune"];
const BENCHES = ["matmul", "ops", "attention", "vit", "data", "knn", "wait"].map((s) => `bench ${s}`);

// A bad command line: exit 2 and these words.
const usage = (argv: string, ...says: (string | RegExp)[]): BadCase => ({ what: argv, argv: argv.split(" "), code: 2, says });

// Per command, one flag that takes a number (int: an integer) and whose absence is not checked first.
const NUMBER_FLAGS: [string, string, "int" | "number"][] = [
  ["experiment", "max-cells", "int"],
  ["params", "classes", "int"],
  ["features", "batch", "int"],
  ["features", "heads", "int"],
  ["data", "tile", "int"],
  ["data", "fraction", "number"],
  ["export", "heads", "int"],
  ["knn", "temperature", "number"],
  ["tune", "batch", "int"],
  ["tune", "reps", "int"],
  ["bench matmul", "reps", "int"],
  ["bench knn", "bank", "int"],
  ["bench wait", "size", "int"],
];

const generic: BadCase[] = [
  usage("trian", 'unknown command "trian"', "usage"),
  usage("--verbose", 'unknown command "--verbose"'),
  usage("bench", "missing subject"),
  usage("bench matmull", 'unknown subject "matmull"'),
  ...[...COMMANDS, ...BENCHES].flatMap((c) => [
    usage(`${c} --bogus 1`, "unknown flag --bogus", "usage"),
    usage(`${c} stray`, 'unexpected argument "stray"', "usage"),
    usage(`${c} -x`, 'unexpected argument "-x"'),
  ]),
  ...NUMBER_FLAGS.flatMap(([c, flag, type]) => [
    usage(`${c} --${flag}`, `flag --${flag} needs a value`),
    usage(`${c} --${flag} many`, `flag --${flag}: expected a decimal number, got "many"`),
    usage(`${c} --${flag} 0x10`, `flag --${flag}: expected a decimal number, got "0x10"`), // not 16
    ...(type === "int" ? [usage(`${c} --${flag} 1.5`, `flag --${flag}: expected an integer, got "1.5"`)] : []),
  ]),
  usage("info --backend", "flag --backend needs a value"),
  // An empty flag is no value (util/args.ts): --config "" once ran the embedded study, --out "" wrote into ".".
  ...["info --backend", "info --adapter", "experiment --config", "experiment --out", "report r --out"].map((line): BadCase => {
    const flag = line.split(" ").pop()!;
    return { what: `${line} ""`, argv: [...line.split(" "), ""], code: 2, says: [`flag ${flag}: expected a value, got an empty string`] };
  }),
  // A flag is no value: `experiment --out --list-cells` trained the whole study into a folder named --list-cells.
  usage("experiment --out --list-cells", "flag --out needs a value, got the flag --list-cells"),
  usage("report r --out --json", "flag --out needs a value, got the flag --json"),
  usage("params --classes 5 --classes 7", "flag --classes is given twice"),
  usage("params --classes 99999999999999999999", 'flag --classes: expected an integer of magnitude below 2^53, got "99999999999999999999"'),
  usage("knn --json=yes", "flag --json takes no value"),
  usage("data --dataset npy --check=1", "flag --check takes no value"),
  usage("experiment --retry-diverged=yes", "flag --retry-diverged takes no value"),
];

const required: BadCase[] = [
  usage("features --input x.npy --out f.npy", "missing required flag --weights"),
  usage("features --weights w.safetensors --out f.npy", "missing required flag --input"),
  usage("features --weights w.safetensors --input x.npy", "missing required flag --out"),
  usage("knn --train-labels y.npy --test q.npy --test-labels l.npy", "missing required flag --train"),
  usage("knn --train x.npy --train-labels y.npy --test q.npy", "missing required flag --test-labels"),
  usage("export --finetuned f.safetensors --out o.safetensors", "missing required flag --base"),
  usage("export --base b.safetensors --out o.safetensors", "missing required flag --finetuned"),
  usage("data", "missing required flag --dataset"),
  usage("pretrain --out dir", "missing required flag --config"),
  usage("pretrain --config c.json", "missing required flag --out"),
  // A dataset without a default root needs --root: not a bad flag, a missing one the dataset asks for.
  { what: "data --dataset cifar10", argv: ["data", "--dataset", "cifar10"], code: 1, says: ["cifar10", "root"] },
];

const range: BadCase[] = [
  usage("experiment --max-cells 0", "--max-cells", "got 0"),
  // The embedded default study has 10 cells.
  usage("experiment --cells 0", "--cells", "from 1 to 10", '"0"', "outside 1-10"),
  usage("experiment --cells 2,11", "--cells", '"2,11"', "11 is outside 1-10"),
  usage("experiment --cells 3-x", "--cells", '"3-x" is neither a number nor a range'),
  usage("experiment --cells 5-2", "--cells", "the range 5-2 runs backwards"),
  usage("experiment --cells ,", "--cells", "no cell named"),
  usage("experiment --shard 3/2", "--shard", "1 <= i <= n", '"3/2"'),
  usage("experiment --shard 1", "--shard", "expected i/n", '"1"'),
  usage("experiment --shard 0/4", "--shard", '"0/4"'),
  usage("experiment --cells 1 --shard 1/2", "flag --cells does not go with --shard"),
  usage("experiment --cells 1 --force", "flag --cells does not go with --force"),
  usage("experiment --shard 1/2 --retry-diverged", "flag --shard does not go with --retry-diverged"),
  usage("experiment --slurm --workers 2", "flag --slurm does not go with --workers"),
  usage("experiment --slurm --force", "flag --slurm does not go with --force"),
  usage("experiment --collect --prepare-only", "flag --collect does not go with --prepare-only"),
  usage("experiment --list-cells --cells 1", "flag --list-cells does not go with --cells"),
  usage("experiment --resubmit-failed --force", "flag --resubmit-failed does not go with --force"),
  usage("experiment --workers 0", "--workers", "got 0"),
  usage("experiment --workers 2 --max-cells 1", "flag --workers does not go with --max-cells"),
  usage("experiment --partition gpu", "flag --partition needs --slurm"),
  usage("experiment --array-max 4", "flag --array-max needs --slurm"),
  usage("experiment --slurm --array-max 0", "--array-max", "got 0"),
  usage("experiment --slurm --gpus-per-task 0", "--gpus-per-task", "got 0"),
  usage("experiment --dry-run", "flag --dry-run needs --slurm or --resubmit-failed"),
  usage("experiment --adapters a,b", "flag --adapters needs --workers"),
  usage("experiment --workers 2 --adapters a,b,c", "flag --adapters: expected at most one adapter per worker (--workers 2), got 3: a,b,c"),
  usage("experiment --workers 2 --adapters a,b --adapter a", "flag --adapters does not go with --adapter"),
  usage("params --classes 0", "--classes", "got 0"),
  usage("params --classes -3", "--classes", "got -3"),
  usage("params --model vit-z99", "--model", '"vit-z99"'),
  usage("params --strategies full,lora-rx", "--strategies", "lora-rx"),
  usage("params --strategies full,top-99", "--strategies", "depth 12", '"top-99"'),
  usage("params --strategies lora-r0", "--strategies", "width 768", '"lora-r0"'),
  usage("params --model vit-s16 --strategies lora-r385", "--strategies", "width 384", '"lora-r385"'),
  usage("params --strategies block@99", "--strategies", "depth 12", '"block@99"'),
  usage("params --strategies block@0", "--strategies", "depth 12", '"block@0"'),
  usage("params --strategies block-p5", "--strategies", "dividing depth 12", '"block-p5"'),
  usage("params --strategies ,", "--strategies", "comma-separated list", '","'),
  usage("params --strategies lora-r8,full,lora-r8", "--strategies", "lora-r8 twice"),
  usage("tune --dry-run --strategies lora-r0", "--strategies", "width 384", '"lora-r0"'),
  usage("tune --dry-run --model default --strategies top-5", "--strategies", "depth 4", '"top-5"'),
  usage("features --weights w.safetensors --input x.npy --out f.npy --batch 0", "--batch", /positive|>= 1/),
  usage("features --weights w.safetensors --input x.npy --out f.npy --heads 0", "--heads", /positive|>= 1|got 0/),
  usage("features --weights w.safetensors --input x.npy --out f.npy --dump-attention 0,x", "--dump-attention", '"x"'),
  usage("features --weights w.safetensors --input x.npy --out f.npy --dump-blocks -1", "--dump-blocks", '"-1"'),
  usage("features --weights w.safetensors --input x.npy --out f.npy --dump-blocks 0x1", "--dump-blocks", '"0x1"'),
  usage("knn --train x.npy --train-labels y.npy --test q.npy --test-labels l.npy --k 0", "--k", "positive integers"),
  usage("knn --train x.npy --train-labels y.npy --test q.npy --test-labels l.npy --k 10,a", "--k", "10,a"),
  usage("knn --train x.npy --train-labels y.npy --test q.npy --test-labels l.npy --k 2.5", "--k", "2.5"),
  usage("knn --train x.npy --train-labels y.npy --test q.npy --test-labels l.npy --k 10,10", "--k", "10 twice"),
  usage("knn --train x.npy --train-labels y.npy --test q.npy --test-labels l.npy --k 10,0x14", "--k", "0x14"),
  usage("knn --train x.npy --train-labels y.npy --test q.npy --test-labels l.npy --k ,", "--k", "comma-separated list", '","'),
  usage("knn --train x.npy --train-labels y.npy --test q.npy --test-labels l.npy --temperature 0", "--temperature", "got 0"),
  usage("knn --train x.npy --train-labels y.npy --test q.npy --test-labels l.npy --temperature 0.001", "--temperature", "expected a number >= 1/700 (0.00143: below it the votes exp(sim / T) overflow), got 0.001"),
  usage("knn --train x.npy --train-labels y.npy --test q.npy --test-labels l.npy --temperature -1", "--temperature", "got -1"),
  usage("data --dataset imagenet", "--dataset", '"imagenet"'),
  usage("data --dataset npy --tile 0", "--tile", "got 0"),
  usage("data --dataset fashion-mnist --tile 100000 --sheet s3.png", "--tile", "at most 1024", "got 100000"),
  usage("data --dataset npy --first 0", "--first", "got 0"),
  usage("data --dataset npy --skip-per-class -1", "--skip-per-class", "expected a non-negative integer, got -1"),
  usage("data --dataset npy --sheet-per-class 0", "--sheet-per-class", "got 0"),
  usage("data --dataset npy --fraction 2", "--fraction", "got 2"),
  usage("data --dataset npy --fraction 0", "--fraction", "got 0"),
  usage("data --dataset npy --classes 5-1", "--classes", "5-1"),
  usage("data --dataset npy --classes a-b", "--classes", "a-b"),
  usage("tune --batch 0", "--batch", "got 0"),
  usage("tune --reps 0", "--reps", "got 0"),
  usage("tune --classes 0", "--classes", "got 0"),
  usage("tune --families matmul,nope", "--families", '"nope"'),
  usage("tune --model vit-z99", "--model", '"vit-z99"'),
  usage("tune --show --clear", "--show and --clear"),
  usage("tune --dry-run --strategies lora-rx", "--strategies", "lora-rx"),
  usage("export --base b.safetensors --finetuned f.safetensors --out o.safetensors --heads 0", "--heads", /positive|>= 1|got 0/),
  usage("export --base b.safetensors --finetuned f.safetensors --out y.pth --merge", "--out", ".safetensors", "y.pth"),
];

// Sizes a command would make on the device or in a typed array, past what one storage binding, V8 or half this
// machine's memory holds: refused up front naming the flag, never with Dawn's validation text or V8's messages.
const INTERNALS = ["Invalid typed array length", "Validation error", "Out of memory", "DeviceNull"];
const tooLarge = (argv: string, ...says: string[]): BadCase => ({ ...usage(argv, ...says), never: INTERNALS });
const sizes: BadCase[] = [
  tooLarge("tune --classes 99999999 --dry-run", "--classes: expected at most", "head's weight", "storage binding", "got 99999999"),
  tooLarge("tune --batch 100000 --dry-run", "--batch: expected at most", "MLP activations", "storage binding", "got 100000"),
  tooLarge("tune --classes 2000000 --dry-run --families rows", "--classes: expected at most", "got 2000000"),
  usage("tune --model default --families knn --dry-run", "--families: a training step of default runs no knn kernel"),
  tooLarge("bench matmul --shapes 100000x100000x100000", "--shapes: expected 100000x100000x100000's a (M, K) within one storage binding"),
  tooLarge("bench knn --dim 100000000", "--queries, --dim: expected the queries (256, 100000000) within one storage binding"),
  tooLarge("bench knn --bank 100000000000", "--bank: expected at most", "got 100000000000"),
  tooLarge("bench knn --bank 30000000 --dim 100000 --queries 1", "--bank, --dim: expected the bank (30000000, 100000) within half this machine's memory"),
  usage("bench knn --bank 100 --k 500", "--k: expected at most the bank's 100 rows, got 500"),
  usage("bench data --synthetic 1 --prefetch -1", "--prefetch: expected an integer >= 0, got -1"),
  tooLarge("bench data --synthetic 1 --size 100000 --batch 1 --batches 1", "--size: expected at most 2048, got 100000"),
  tooLarge("bench data --synthetic 1 --size 2048 --batch 1000", "--batch, --size: expected a batch (1000, 3, 2048, 2048) of at most 2^31 values"),
  tooLarge("bench vit --model vit-s16 --batch 100000", "--batch: expected at most", "MLP activations", "got 100000"),
  // A subject's bad flag is shown with that subject's usage, not bench's list of subjects.
  usage("bench vit --model default --image-size 33", "bench vit: --image-size: expected a multiple of the patch size 7, got 33", "usage: node dist/run.js bench vit ["),
  tooLarge("bench wait --size 100000", "--size: expected the matrix (100000, 100000) within one storage binding"),
];

// Help lists every flag a command takes, the device's included.
const help: BadCase[] = [{ what: "features --help", argv: ["features", "--help"], code: 0, says: ["--backend", "--adapter", "--heads", "--dump-dir"] }];

// `report` takes run folders as positional arguments: a stray word is a folder, which must hold a run.
const reportCases: BadCase[] = [
  usage("report --out o", "expected one or more run folders, got none", "usage"),
  usage("report runs/a", "missing required flag --out"),
  usage("report runs/a --out", "flag --out needs a value"),
  usage("report runs/a --out o --bogus 1", "unknown flag --bogus", "usage"),
  usage("report runs/a --out o -x", 'unexpected argument "-x"'),
  usage("report runs/a --out o --json=yes", "flag --json takes no value"),
  { what: "report of a folder without a run", argv: ["report", "no-such-run", "--out", "o"], code: 1, says: ["expected a run folder holding config.json", "no-such-run", "does not exist"] },
];

describe("command lines", () => runCases(root, [...generic, ...required, ...range, ...sizes, ...help, ...reportCases]));

// The environment and the device's flags, read as the program starts: each case is the program in a process of its
// own (one process opens one device), on Dawn's null backend unless the case sets PEFT_BACKEND, with no PEFT_
// variable but the case's. Each exits 1 naming the variable or flag, never with Dawn's or Node's own words.
describe("the environment and the device's flags", () => {
  let program = "";
  beforeAll(async () => {
    program = await buildProgram("bad-input-cli");
  });
  const start = (argv: string[], vars: Record<string, string>) => {
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("PEFT_")));
    const r = spawnSync(process.execPath, [program, ...argv], { env: { ...env, PEFT_BACKEND: "null", PEFT_TUNE_CACHE: root(), ...vars }, encoding: "utf8" });
    return { code: r.status, text: `${r.stdout}\n${r.stderr}` };
  };
  const cases: [string, Record<string, string>, string[], string[]][] = [
    ["info", { PEFT_TUNE: "false" }, ['PEFT_TUNE: expected 0 or 1, got "false"'], []],
    ["info", { PEFT_BAKEND: "null" }, ["PEFT_BAKEND: unknown variable; expected one of PEFT_BACKEND,", "PEFT_MATMUL"], []],
    ["tune --show", { PEFT_BAKEND: "null" }, ["PEFT_BAKEND: unknown variable"], ["no tuning cache"]],
    // Commands that open no device read the settings too (run.ts).
    ["params", { PEFT_BAKEND: "null" }, ["PEFT_BAKEND: unknown variable"], ["trainable"]],
    ["data --dataset fashion-mnist", { PEFT_TUNE: "yes" }, ['PEFT_TUNE: expected 0 or 1, got "yes"'], []],
    ["info", { PEFT_BACKEND: "nul" }, [`PEFT_BACKEND: expected one of Dawn's backends vulkan, metal, d3d12, d3d11, opengl, opengles, webgpu, null, got "nul"`], ["unrecognised"]],
    ["info", { PEFT_ADAPTER: "nonexistent" }, [`PEFT_ADAPTER: no adapter's name contains "nonexistent"`, "name: 'Null backend'"], ["no adapter with backend"]],
    ["info --adapter nonexistent", {}, [`--adapter: no adapter's name contains "nonexistent"`], []],
    ["info --adapter pci:zz", {}, ['--adapter: expected a PCI address as pci:DDDD:BB:DD.F'], ["device:"]],
    ["info", { PEFT_ADAPTER: "pci:41:00" }, ['PEFT_ADAPTER: expected a PCI address as pci:DDDD:BB:DD.F'], ["device:"]],
    ["bench data --synthetic 1 --batch 1 --batches 1 --size 8", { UV_THREADPOOL_SIZE: "abc" }, ['UV_THREADPOOL_SIZE: expected a number of threads from 1 to 1024, got "abc"'], ["NaN"]],
  ];
  it.each(cases)("%s with %j", (argv, vars, says, never) => {
    const r = start(argv.split(" "), vars);
    expect(r.code, r.text).toBe(1);
    for (const s of says) expect(r.text).toContain(s);
    for (const s of [...never, "    at "]) expect(r.text).not.toContain(s);
  });

  it("passes the adapter's text to Dawn as given: Dawn matches names case-sensitively", () => {
    const r = start(["info", "--adapter", "Null", "--quiet"], {});
    expect(r.code, r.text).toBe(0);
  });
});
