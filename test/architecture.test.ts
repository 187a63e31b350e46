// The house rules, read off the source: no import circle between files; every import between folders allowed by
// the layout table in README.md (its "may import" column); process.env read only where the settings are parsed;
// only the command line prints; WGSL only in kernels/. The checkers run first on small made-up inputs, so that a
// broken checker cannot pass the repository by accident.
import { describe, expect, it } from "vitest";
import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

const ROOT = resolve(__dirname, "..");
const SKIP = new Set(["node_modules", "dist", "test", ".git", ".cache", ".scratch", ".portable", "runs"]);

// Every .ts source file of the project (not the tests), relative to the root.
function sourceFiles(dir = ROOT): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    if (name.startsWith(".") || SKIP.has(name)) continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...sourceFiles(path));
    else if (name.endsWith(".ts") && !name.endsWith(".d.ts") && name !== "vitest.config.ts") out.push(relative(ROOT, path));
  }
  return out.sort();
}

// The project files a file imports (static, type-only and dynamic imports alike; JSON too), relative to the root.
export function importsOf(file: string, text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(/(?:from|import)\s*\(?\s*["'](\.{1,2}\/[^"']+)["']/g)) {
    out.push(relative(ROOT, resolve(ROOT, dirname(file), m[1].replace(/\.js$/, ".ts"))));
  }
  return out;
}

// The import circles of a graph: its strongly connected components of more than one file, or one file importing
// itself (Tarjan).
export function circles(graph: Map<string, string[]>): string[][] {
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string) => {
    index.set(v, counter);
    low.set(v, counter++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1 || (graph.get(v) ?? []).includes(v)) found.push(component.sort());
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return found;
}

// The layout table of README.md: each row's folder (`engine/`, or `run.ts`) and the folders it may import.
export function layoutTable(readme: string): Map<string, string[]> {
  const section = readme.split(/^## /m).find((s) => s.startsWith("Layout"));
  if (!section) throw new Error("README.md: expected a '## Layout' section");
  const table = new Map<string, string[]>();
  for (const line of section.split("\n")) {
    const cells = line.split("|").map((c) => c.trim());
    if (cells.length < 4) continue;
    const folder = /^`([^`]+)`$/.exec(cells[1])?.[1];
    if (!folder) continue;
    const allowed = [...cells[cells.length - 2].matchAll(/`([^`]+)`/g)].map((m) => m[1]);
    table.set(folder, allowed);
  }
  if (table.size === 0) throw new Error("README.md: expected rows like | `engine/` | ... | `util/` | in the Layout table");
  return table;
}

// The folder (table key) a file belongs to: its first path segment with a slash, or the file itself at the root.
export function floorOf(file: string): string {
  const i = file.indexOf("/");
  return i < 0 ? file : file.slice(0, i + 1);
}

// Imports that break the table: a file importing another floor that its floor's row does not list.
export function forbiddenImports(graph: Map<string, string[]>, table: Map<string, string[]>): string[] {
  const bad: string[] = [];
  for (const [file, targets] of graph) {
    const from = floorOf(file);
    const allowed = table.get(from);
    if (!allowed) {
      bad.push(`${file}: its folder ${from} has no row in the README's layout table`);
      continue;
    }
    for (const t of targets) {
      const to = floorOf(t);
      if (to !== from && !allowed.includes(to)) bad.push(`${file} imports ${t}: ${from} may import ${allowed.join(", ") || "nothing"}`);
    }
  }
  return bad;
}

// The repository paths a text cites (`kernels/knn.ts`, `docs/STUDY.md`: a top folder of the project, then a file
// with an extension) that do not exist, by `exists`: a comment that points the reader to a file that was renamed or
// merged away.
export function missingPaths(text: string, exists: (path: string) => boolean): string[] {
  const cited = text.matchAll(/(?<![\w./-])((?:util|engine|kernels|autograd|data|vit|peft|train|eval|plot|study|cli|bench|configs|backbones|scripts|docs|test)\/[\w./-]*\w\.(?:ts|json|md|sh|py|mjs))/g);
  return [...new Set([...cited].map((m) => m[1]))].filter((p) => !exists(p));
}

describe("the checkers", () => {
  it("find a circle of three files and a file importing itself, and no circle in a chain", () => {
    const g = new Map([
      ["a.ts", ["b.ts"]],
      ["b.ts", ["c.ts"]],
      ["c.ts", ["a.ts"]],
      ["d.ts", ["d.ts"]],
      ["e.ts", ["a.ts"]],
    ]);
    expect(circles(g)).toEqual([["a.ts", "b.ts", "c.ts"], ["d.ts"]]);
    expect(circles(new Map([["x.ts", ["y.ts"]], ["y.ts", []]]))).toEqual([]);
  });

  it("read the layout table and flag an import its row does not allow", () => {
    const readme = "# x\n## Layout\n| folder | holds | may import |\n|---|---|---|\n| `util/` | helpers | nothing |\n| `engine/` | device | `util/` |\n## Next\n";
    const table = layoutTable(readme);
    expect([...table]).toEqual([["util/", []], ["engine/", ["util/"]]]);
    const g = new Map([
      ["engine/a.ts", ["util/b.ts", "engine/c.ts"]],
      ["util/b.ts", ["engine/a.ts"]],
    ]);
    expect(forbiddenImports(g, table)).toEqual(["util/b.ts imports engine/a.ts: util/ may import nothing"]);
    expect(forbiddenImports(new Map([["cli/x.ts", []]]), table)[0]).toContain("has no row");
  });

  it("find the cited paths that do not exist, not those that do nor those inside others", () => {
    const text = "// engine/ops.ts (merged into autograd/ops.ts); see docs/STUDY.md and node_modules/x/engine/y.ts";
    const exists = (p: string) => p === "autograd/ops.ts" || p === "docs/STUDY.md";
    expect(missingPaths(text, exists)).toEqual(["engine/ops.ts"]);
  });

  it("resolve relative imports, type-only and dynamic ones too", () => {
    const text = 'import { a } from "./a.js";\nimport type { B } from "../util/b.js";\nconst c = await import("./c.js");';
    expect(importsOf("engine/x.ts", text)).toEqual(["engine/a.ts", "util/b.ts", "engine/c.ts"]);
  });
});

describe("the repository", () => {
  const files = sourceFiles();
  const texts = new Map(files.map((f) => [f, readFileSync(join(ROOT, f), "utf8")]));
  const graph = new Map(files.map((f) => [f, importsOf(f, texts.get(f)!)]));

  it("has source files in every floor of the table, and imports only files that exist", () => {
    expect(files.length).toBeGreaterThan(50);
    const missing = [...graph].flatMap(([f, ts]) => ts.filter((t) => !existsSync(join(ROOT, t))).map((t) => `${f} -> ${t}`));
    expect(missing).toEqual([]);
  });

  it("cites, in its sources, only repository files that exist", () => {
    const missing = files.flatMap((f) => missingPaths(texts.get(f)!, (p) => existsSync(join(ROOT, p))).map((p) => `${f}: ${p}`));
    expect(missing).toEqual([]);
  });

  it("has no import circle between files", () => {
    expect(circles(graph)).toEqual([]);
  });

  it("imports across folders only as the README's layout table allows", () => {
    const table = layoutTable(readFileSync(join(ROOT, "README.md"), "utf8"));
    for (const floor of new Set(files.map(floorOf))) expect(table.has(floor), `${floor} in the layout table`).toBe(true);
    expect(forbiddenImports(graph, table)).toEqual([]);
  });

  it("reads process.env only in engine/settings.ts and run.ts", () => {
    // engine/device.ts writes the two variables drivers read as Dawn loads them.
    const readers = files.filter((f) => /process\.env\b(?!\.(LP_NUM_THREADS|DRI_PRIME) = )/.test(strip(texts.get(f)!)));
    expect(readers).toEqual(["engine/settings.ts", "run.ts"]);
  });

  it("prints only from the command line (cli/, bench/, run.ts), DEBUG's dispatch log aside", () => {
    const printing = files.filter((f) => /\bconsole\.|process\.std(out|err)/.test(strip(texts.get(f)!)));
    const allowed = (f: string) => f.startsWith("cli/") || f.startsWith("bench/") || f === "run.ts" || f === "engine/runtime.ts";
    expect(printing.filter((f) => !allowed(f))).toEqual([]);
  });

  it("has WGSL only in kernels/", () => {
    const wgsl = files.filter((f) => /@compute|@group\(0\)|var<storage/.test(texts.get(f)!));
    expect(wgsl.filter((f) => !f.startsWith("kernels/"))).toEqual([]);
    expect(wgsl.length).toBeGreaterThan(5);
  });
});

// The text without its comments, so that a comment naming process.env or console does not count.
function strip(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, "").replace(/(^|[^:"'`])\/\/.*$/gm, "$1");
}
