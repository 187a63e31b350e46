// The documents against the code, so that what an audit of README.md and docs/*.md fixed stays fixed: every relative
// link reaches a file and its #anchor a heading there; every PEFT_ name is a setting engine/settings.ts takes; every
// `node dist/run.js ...` names a command (and bench subject) that exists and only flags it takes, read off the
// commands' own parseArgs specs; every commit cited is in this repository's history. The checkers run first on
// small made-up inputs, so that a broken checker cannot pass the documents by accident.
import { describe, expect, it, vi } from "vitest";
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import type { FlagSpec } from "../util/args.js";
import { readSettings } from "../engine/settings.js";
import { main } from "../run.js";
import { FLAGS as analyzeFlags } from "../cli/analyze.js";
import { FLAGS as dataFlags } from "../cli/data.js";
import { FLAGS as experimentFlags } from "../cli/experiment.js";
import { FLAGS as exportFlags } from "../cli/export.js";
import { FLAGS as featuresFlags } from "../cli/features.js";
import { FLAGS as infoFlags } from "../cli/info.js";
import { FLAGS as knnFlags } from "../cli/knn.js";
import { FLAGS as paramsFlags } from "../cli/params.js";
import { FLAGS as pretrainFlags } from "../cli/pretrain.js";
import { FLAGS as reportFlags } from "../cli/report.js";
import { FLAGS as compareFlags } from "../cli/compare.js";
import { FLAGS as tuneFlags } from "../cli/tune.js";
import { BENCHES } from "../bench/index.js";
import { FLAGS as attentionBenchFlags } from "../bench/attention.js";
import { FLAGS as dataBenchFlags } from "../bench/data.js";
import { FLAGS as knnBenchFlags } from "../bench/knn.js";
import { FLAGS as matmulBenchFlags } from "../bench/matmul.js";
import { FLAGS as opsBenchFlags } from "../bench/ops.js";
import { FLAGS as vitBenchFlags } from "../bench/vit.js";
import { FLAGS as waitBenchFlags } from "../bench/wait.js";

const ROOT = resolve(__dirname, "..");

// The flags of each command and bench subject; "the tables" below hold them to run.ts's commands and BENCHES.
const COMMAND_FLAGS: Record<string, FlagSpec> = {
  experiment: experimentFlags,
  report: reportFlags,
  compare: compareFlags,
  analyze: analyzeFlags,
  pretrain: pretrainFlags,
  info: infoFlags,
  params: paramsFlags,
  features: featuresFlags,
  data: dataFlags,
  export: exportFlags,
  knn: knnFlags,
  tune: tuneFlags,
  bench: {},
};
const BENCH_FLAGS: Record<string, FlagSpec> = {
  matmul: matmulBenchFlags,
  ops: opsBenchFlags,
  attention: attentionBenchFlags,
  vit: vitBenchFlags,
  data: dataBenchFlags,
  knn: knnBenchFlags,
  wait: waitBenchFlags,
};
// The commands that take arguments besides flags: report's run folders, compare's two, analyze's run folder (bench's
// subject is read apart).
const POSITIONAL = new Set(["report", "compare", "analyze"]);

// docs/RUNNING.md's example of a typo the settings refuse; "the settings" below holds that it is refused.
const TYPO_EXAMPLES = new Set(["PEFT_BAKEND"]);

interface Piece {
  text: string;
  line: number; // 1-based, where the piece starts
}

interface Doc {
  file: string; // relative to the root
  text: string;
  prose: string; // the text with code blocks and code spans blanked out, offsets kept
  code: Piece[]; // every code span, and every line of a code block (a line ending in \ joined with the next)
}

const lineAt = (text: string, offset: number) => text.slice(0, offset).split("\n").length;
const blank = (s: string) => s.replace(/[^\n]/g, " ");

// Splits a Markdown text into prose and code: fenced blocks, indented blocks (4 spaces after a blank line) and
// code spans, which never cross a paragraph.
function parseDoc(file: string, text: string): Doc {
  const code: Piece[] = [];
  const addLines = (block: string, first: number) => {
    const lines = block.split("\n");
    for (let i = 0; i < lines.length; i++) {
      let joined = lines[i];
      const start = i;
      while (joined.endsWith("\\") && i + 1 < lines.length) joined = joined.slice(0, -1) + " " + lines[++i];
      if (joined.trim() !== "") code.push({ text: joined, line: first + start });
    }
  };
  let prose = text.replace(/^```[^\n]*\n([\s\S]*?)^```[^\n]*$/gm, (block, inner: string, offset: number) => {
    addLines(inner, lineAt(text, offset) + 1);
    return blank(block);
  });
  prose = prose.replace(/(?<=^[ \t]*\n)(?:(?: {4}|\t)[^\n]*(?:\n|$))+/gm, (block, offset: number) => {
    addLines(block, lineAt(text, offset));
    return blank(block);
  });
  const spans: [number, number][] = [];
  let offset = 0;
  for (const paragraph of prose.split(/(\n[ \t]*\n)/)) {
    const ticks = [...paragraph.matchAll(/`/g)];
    if (ticks.length % 2 !== 0) throw new Error(`${file}:${lineAt(text, offset + ticks[0].index)}: a paragraph with an unmatched backtick`);
    for (const m of paragraph.matchAll(/`([^`]+)`/g)) {
      code.push({ text: m[1].replace(/\s*\n\s*/g, " "), line: lineAt(text, offset + m.index) });
      spans.push([offset + m.index, m[0].length]);
    }
    offset += paragraph.length;
  }
  for (const [at, length] of spans) prose = prose.slice(0, at) + blank(prose.slice(at, at + length)) + prose.slice(at + length);
  return { file, text, prose, code };
}

// GitHub's heading anchors: the heading's text (links as their text, code spans as their content, markup
// dropped), lower case, every character but letters, digits, _, - and spaces dropped, each space a hyphen; a
// repeated anchor gets -1, -2, ...
function headingAnchors(doc: Doc): Set<string> {
  const out = new Set<string>();
  const seen = new Map<string, number>();
  for (const m of doc.prose.matchAll(/^ {0,3}#{1,6}[ \t]+.*$/gm)) {
    // The heading as written, read from the text: prose has its code spans blanked.
    const heading = doc.text.slice(m.index, m.index + m[0].length).replace(/^ {0,3}#{1,6}[ \t]+/, "").replace(/[ \t]+#+[ \t]*$/, "");
    const textOnly = heading.replace(/!?\[([^\]]*)\]\([^)]*\)/g, "$1").replace(/<[^>]+>/g, "");
    const base = textOnly.trim().toLowerCase().replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, "").replace(/ /g, "-");
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

// Every relative link's problem: a target outside the repository or missing, an anchor no heading of the target
// makes (a non-Markdown file takes GitHub's line anchors only).
function linkProblems(doc: Doc, readDoc: (file: string) => Doc | undefined, exists: (file: string) => boolean): string[] {
  const out: string[] = [];
  for (const m of doc.prose.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) {
    const link = m[1];
    if (/^[a-z][a-z0-9+.-]*:/i.test(link)) continue; // https:, mailto:
    const where = `${doc.file}:${lineAt(doc.text, m.index)}: link ${link}`;
    const hash = link.indexOf("#");
    const path = decodeURI(hash < 0 ? link : link.slice(0, hash));
    const anchor = hash < 0 ? undefined : link.slice(hash + 1);
    const target = path === "" ? doc.file : path.startsWith("/") ? path.slice(1) : join(dirname(doc.file), path);
    if (target.startsWith("..") || !exists(target)) {
      out.push(`${where}: no file ${target} in the repository`);
      continue;
    }
    if (anchor === undefined) continue;
    if (target.endsWith(".md")) {
      const targetDoc = readDoc(target);
      if (targetDoc === undefined || !headingAnchors(targetDoc).has(anchor)) out.push(`${where}: no heading of ${target} makes the anchor #${anchor}`);
    } else if (!/^L\d+(-L\d+)?$/.test(anchor)) out.push(`${where}: expected a line anchor (#L12) into ${target}, got #${anchor}`);
  }
  return out;
}

// A PEFT_ name is a setting where readSettings does not refuse it as an unknown variable (a value it does not take
// is another error).
function isSetting(name: string): boolean {
  try {
    readSettings({ [name]: "1" });
    return true;
  } catch (e) {
    return !(e instanceof Error && e.message.startsWith(`${name}: unknown variable`));
  }
}

function settingProblems(doc: Doc): string[] {
  const out: string[] = [];
  for (const m of doc.text.matchAll(/\bPEFT_[A-Z0-9_]+/g)) {
    if (!TYPO_EXAMPLES.has(m[0]) && !isSetting(m[0])) out.push(`${doc.file}:${lineAt(doc.text, m.index)}: ${m[0]} is no setting engine/settings.ts takes`);
  }
  return out;
}

// Where the shell's command ends: a pipe, a list, a redirection, a comment.
const SHELL_END = /^(\||\|\||&&|&|;|#.*|\d?>.*|<.*)$/;
const isPlaceholder = (word: string) => /^<[^>]+>$|^[A-Z][A-Z_]*$|^\.\.\.$/.test(word);

// The problems of one command line's arguments after `node dist/run.js`.
function commandProblems(args: string[], commands: Record<string, FlagSpec>, benches: Record<string, FlagSpec>): string[] {
  const words = args.map((a) => a.replace(/^\[+|[\],]+$/g, "")).filter((a) => a !== "" && a !== "|");
  const [name, ...rest] = words;
  // Alternatives, as in `bench matmul|ops [--json]`: each must hold.
  const alternatives = (i: number) => words[i].split("|").map((w) => [...words.slice(0, i), w, ...words.slice(i + 1)]);
  if (name?.includes("|")) return alternatives(0).flatMap((w) => commandProblems(w, commands, benches));
  if (name === "bench" && rest[0]?.includes("|")) return alternatives(1).flatMap((w) => commandProblems(w, commands, benches));
  if (name === undefined || name === "--help" || name === "-h") return [];
  if (name.startsWith("-")) return [`flag ${name} before any command: run.js reads the first argument as the command`];
  let what = name;
  // A placeholder (SUBJECT, <command>, ...) stands for any of them: a flag one of them takes.
  const anyOf = (specs: Record<string, FlagSpec>): FlagSpec => Object.assign({}, ...Object.values(specs));
  let spec: FlagSpec | undefined = isPlaceholder(name) ? anyOf(commands) : commands[name];
  if (spec === undefined) return [`unknown command "${name}"`];
  if (name === "bench") {
    const subject = rest.shift();
    if (subject === undefined || subject === "--help" || subject === "-h") return [];
    what = `bench ${subject}`;
    spec = isPlaceholder(subject) ? anyOf(benches) : benches[subject];
    if (spec === undefined) return [`unknown bench subject "${subject}"`];
  }
  const out: string[] = [];
  for (let i = 0; i < rest.length; i++) {
    const word = rest[i];
    if (!word.startsWith("--")) {
      if (!POSITIONAL.has(name) && word !== "...") out.push(`${what}: unexpected argument "${word}"`);
      continue;
    }
    const flag = word.slice(2).split("=")[0];
    if (flag === "help") continue;
    const type = spec[flag];
    if (type === undefined) out.push(`${what}: unknown flag --${flag}`);
    // Its value; an unknown flag's too, as the text meant it.
    if (type !== "boolean" && !word.includes("=") && i + 1 < rest.length && !rest[i + 1].startsWith("--")) i++;
  }
  return out;
}

// Every `node [node flags] dist/run.js ...` in a piece of code, as its arguments up to the end of the shell command;
// else the piece itself where it reads as a command line without `node dist/run.js` (`tune --model vit-s16`,
// `bench vit`): a command's name and a flag, or bench and a subject.
function runCommands(code: string, commands: Record<string, FlagSpec>): string[][] {
  const words = code.split(/\s+/).filter((w) => w !== "");
  const out: string[][] = [];
  for (let i = 0; i < words.length; i++) {
    if (words[i] !== "node") continue;
    let j = i + 1;
    while (j < words.length && words[j].startsWith("-")) j++;
    if (!/^(\.\/)?dist\/run\.js$/.test(words[j] ?? "")) continue;
    const args: string[] = [];
    for (j++; j < words.length && !SHELL_END.test(words[j]); j++) args.push(words[j]);
    out.push(args);
    i = j;
  }
  const bare = words[0] !== undefined && Object.hasOwn(commands, words[0]) && (words[0] === "bench" ? words.length > 1 : words.some((w) => w.startsWith("--")));
  if (out.length === 0 && bare) {
    const end = words.findIndex((w) => SHELL_END.test(w));
    out.push(end < 0 ? words : words.slice(0, end));
  }
  return out;
}

function commandLineProblems(doc: Doc): string[] {
  return doc.code.flatMap((piece) =>
    runCommands(piece.text, COMMAND_FLAGS).flatMap((args) =>
      commandProblems(args, COMMAND_FLAGS, BENCH_FLAGS).map((p) => `${doc.file}:${piece.line}: \`node dist/run.js ${args.join(" ")}\`: ${p}`),
    ),
  );
}

// The commits a document cites: words of 7 to 40 hex digits with a letter and a digit, outside paths and
// addresses. The documents cite them in many forms ("commit 623b30e", "build 7ce5209", "(2026-12-04, 4d5981a)",
// "1f810e9's", table cells), and nothing else in them looks like that: a number has no letter, a word no digit.
function citedCommits(text: string): { hash: string; offset: number }[] {
  const out: { hash: string; offset: number }[] = [];
  for (const m of text.matchAll(/(?<![\w./:#=@-])[0-9a-f]{7,40}(?![\w/-])/g)) {
    if (/[a-f]/.test(m[0]) && /\d/.test(m[0])) out.push({ hash: m[0], offset: m.index });
  }
  return out;
}

// Why the commit check cannot run here, or undefined: it needs git and this repository's full history.
function noHistory(): string | undefined {
  let lines: string[];
  try {
    lines = execFileSync("git", ["rev-parse", "--show-toplevel", "--is-shallow-repository"], { cwd: ROOT, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).trim().split("\n");
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    return err.code === "ENOENT" ? "git is not installed: the cited commits cannot be looked up" : `${ROOT} is not a git checkout (a bundle's tests): the cited commits cannot be looked up`;
  }
  if (resolve(lines[0]) !== ROOT) return `${ROOT} is not the top of a git checkout (that is ${lines[0]}): the cited commits cannot be looked up`;
  if (lines[1] === "true") return "the clone is shallow: a cited commit older than its history would look missing";
  return undefined;
}

// The hashes that name no commit of this repository, each with what git says of it ("missing", "ambiguous"); one
// git process for all.
function unknownCommits(hashes: string[]): Map<string, string> {
  const input = hashes.map((h) => `${h}^{commit}\n`).join("");
  const lines = execFileSync("git", ["cat-file", "--batch-check"], { cwd: ROOT, input, encoding: "utf8" }).trimEnd().split("\n");
  return new Map(hashes.flatMap((h, i) => (/^[0-9a-f]{40,64} commit /.test(lines[i]) ? [] : [[h, lines[i].split(" ").pop() ?? ""]])));
}

const DOC_FILES = ["README.md", ...readdirSync(join(ROOT, "docs")).filter((f) => f.endsWith(".md")).sort().map((f) => `docs/${f}`)];
const docCache = new Map<string, Doc>();
function readDoc(file: string): Doc | undefined {
  if (!docCache.has(file)) {
    if (!existsSync(join(ROOT, file))) return undefined;
    docCache.set(file, parseDoc(file, readFileSync(join(ROOT, file), "utf8")));
  }
  return docCache.get(file);
}
const existsInRoot = (file: string) => existsSync(join(ROOT, file));

describe("the checkers", () => {
  const made = (text: string, file = "docs/X.md") => parseDoc(file, text);

  it("make GitHub's anchors: markup and punctuation dropped, repeats numbered, headings in code left out", () => {
    const doc = made("# Replay (engine/replay.ts)\n## Pre-training: `pretrain`, and [DINO](DINO.md)\n## The default study's sizes\n## Notes\n## Notes\n```sh\n# not a heading\n```\n");
    expect([...headingAnchors(doc)]).toEqual(["replay-enginereplayts", "pre-training-pretrain-and-dino", "the-default-studys-sizes", "notes", "notes-1"]);
  });

  it("flag a missing file, an anchor no heading makes and a link out of the repository; pass links in code", () => {
    const target = made("# Where it forgets\n", "docs/T.md");
    const doc = made("[a](T.md#where-it-forgets) [b](T.md#where-it-forgot) [c](U.md) [d](../../x.md) [e](https://x.org/#y) `[f](V.md)`\n\n![g](figures/f.png)\n");
    const problems = linkProblems(doc, (f) => (f === "docs/T.md" ? target : undefined), (f) => f === "docs/T.md" || f === "docs/figures/f.png");
    expect(problems).toEqual([
      "docs/X.md:1: link T.md#where-it-forgot: no heading of docs/T.md makes the anchor #where-it-forgot",
      "docs/X.md:1: link U.md: no file docs/U.md in the repository",
      "docs/X.md:1: link ../../x.md: no file ../x.md in the repository",
    ]);
  });

  it("find code spans across lines, code block lines and indented blocks; refuse an unmatched backtick", () => {
    const doc = made("a `node dist/run.js params\n--json` b\n\n```sh\nnode dist/run.js info \\\n  --json  # x\n```\n\nc:\n\n    node dist/run.js tune\n");
    expect(doc.code).toEqual([
      { text: "node dist/run.js info    --json  # x", line: 5 },
      { text: "    node dist/run.js tune", line: 11 },
      { text: "node dist/run.js params --json", line: 1 },
    ]);
    expect(() => made("a `b\n\nc")).toThrow("docs/X.md:1: a paragraph with an unmatched backtick");
  });

  it("know the settings and refuse a typo", () => {
    expect(["PEFT_WAIT", "PEFT_TUNE", "PEFT_MATMUL", "PEFT_IMAGE_CACHE_MB"].filter((n) => !isSetting(n))).toEqual([]);
    expect(isSetting("PEFT_BAKEND")).toBe(false);
    expect(settingProblems(made("`PEFT_BACKEND=null`, `PEFT_<FAMILY>`, a `PEFT_` name\nPEFT_MATMULL=reg8x8\n"))).toEqual([
      "docs/X.md:2: PEFT_MATMULL is no setting engine/settings.ts takes",
    ]);
  });

  it("read each `node dist/run.js` command to the end of its shell command, and a command line without it", () => {
    const commands = { info: {}, tune: {}, bench: {} };
    expect(runCommands("PEFT_BACKEND=null node --cpu-prof dist/run.js bench vit --reps 3 | tail -1; node x.js --y", commands)).toEqual([["bench", "vit", "--reps", "3"]]);
    expect(runCommands("node dist/run.js info --json > info.json  # the adapter", commands)).toEqual([["info", "--json"]]);
    expect(runCommands("node dist/run.js && node dist/run.js tune --show", commands)).toEqual([[], ["tune", "--show"]]);
    expect(runCommands("tune --model vit-s16 --batch 8 # x", commands)).toEqual([["tune", "--model", "vit-s16", "--batch", "8"]]);
    expect(runCommands("bench vit", commands)).toEqual([["bench", "vit"]]);
    expect([runCommands("tune", commands), runCommands("bench", commands), runCommands("npm run setup -- --slurm", commands)]).toEqual([[], [], []]);
  });

  it("flag an unknown command, subject, flag or argument, and pass values, placeholders and --help", () => {
    const commands = { experiment: { config: "string", force: "boolean" }, report: { out: "string" }, bench: {} } as Record<string, FlagSpec>;
    const benches = { vit: { reps: "int" } } as Record<string, FlagSpec>;
    const problems = (line: string) => commandProblems(line.split(" ").filter((w) => w), commands, benches);
    expect(problems("experiment --config FILE.json [--force] --help")).toEqual([]);
    expect(problems("experiment --config=a.json")).toEqual([]);
    expect(problems("report RUN_DIR... --out DIR")).toEqual([]);
    expect(problems("bench SUBJECT")).toEqual([]);
    expect(problems("bench ... --reps 3")).toEqual([]);
    expect(problems("bench SUBJECT --force")).toEqual(["bench SUBJECT: unknown flag --force"]);
    expect(problems("experiment --config ... --force")).toEqual([]);
    expect(problems("<command> --help")).toEqual([]);
    expect(problems("experiments --config a.json")).toEqual(['unknown command "experiments"']);
    expect(problems("--config a.json")).toEqual(["flag --config before any command: run.js reads the first argument as the command"]);
    expect(problems("experiment --confg a.json")).toEqual(["experiment: unknown flag --confg"]);
    expect(problems("experiment --force a.json")).toEqual(['experiment: unexpected argument "a.json"']);
    expect(problems("bench vit --reps 3 --rep 3")).toEqual(["bench vit: unknown flag --rep"]);
    expect(problems("bench vits")).toEqual(['unknown bench subject "vits"']);
    expect(problems("bench vit|matmul [--reps 3]")).toEqual(['unknown bench subject "matmul"']);
  });

  it("find cited commits in their forms, not numbers, words, addresses or paths", () => {
    const text = "commit 623b30e; at a250469, (2026-12-04, 4d5981a). 1f810e9's | cbd6fee | 1000000 deadbeef crbug.com/4225a15 x/abc1234d";
    expect(citedCommits(text).map((c) => c.hash)).toEqual(["623b30e", "a250469", "4d5981a", "1f810e9", "cbd6fee"]);
  });
});

describe("README.md and docs/*.md", () => {
  const docs = DOC_FILES.map((f) => readDoc(f)!);

  it("hold every command and bench subject in the tables above, and no other", async () => {
    // run.ts's command table, as its usage lists it.
    const log = vi.spyOn(console, "log").mockImplementation(() => undefined);
    let usage: string;
    try {
      expect(await main(["--help"])).toBe(0);
      usage = log.mock.calls.map((c) => String(c[0])).join("\n");
    } finally {
      log.mockRestore();
    }
    const listed = [...usage.split("commands:\n")[1].matchAll(/^ {2}(\S+)/gm)].map((m) => m[1]);
    expect(listed.sort()).toEqual(Object.keys(COMMAND_FLAGS).sort());
    expect(Object.keys(BENCHES).sort()).toEqual(Object.keys(BENCH_FLAGS).sort());
  });

  it("link only to files of the repository and to headings that exist", () => {
    expect(docs.flatMap((d) => linkProblems(d, readDoc, existsInRoot))).toEqual([]);
  });

  it("name only PEFT_ settings that engine/settings.ts takes", () => {
    expect(docs.flatMap(settingProblems)).toEqual([]);
    expect([...TYPO_EXAMPLES].filter(isSetting)).toEqual([]);
  });

  it("show only commands, bench subjects and flags that exist", () => {
    expect(docs.flatMap(commandLineProblems)).toEqual([]);
  });

  const why = noHistory();
  it("cite only commits of this repository's history", (ctx) => {
    ctx.skip(why !== undefined, why);
    const cited = docs.flatMap((d) => citedCommits(d.text).map((c) => ({ ...c, where: `${d.file}:${lineAt(d.text, c.offset)}` })));
    expect(cited.length).toBeGreaterThan(0);
    const unknown = unknownCommits([...new Set(cited.map((c) => c.hash))]);
    expect(cited.filter((c) => unknown.has(c.hash)).map((c) => `${c.where}: ${c.hash} is no commit of this repository (git: ${unknown.get(c.hash)})`)).toEqual([]);
  });
});
