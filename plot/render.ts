// Figures as Vega-Lite specs (https://vega.github.io/vega-lite/), rendered without a browser or a canvas: vega-lite
// compiles a spec to Vega, a vega View without a renderer lays the scene out, toSVG serialises it, and sharp
// (librsvg) rasterises the SVG to PNG. A spec is plain JSON with its data inline, so a web page can show it
// unchanged (vega-embed) and a figure can be redrawn from its .vl.json alone.
//
// The same spec gives the same bytes: text is sized by vega's estimate (0.8 em a character) even where node-canvas
// is installed, whose measurements would depend on the fonts it finds, and the ids of the SVG's definitions (clip
// paths, gradients), which vega counts per process, restart at every figure. A warning of vega-lite or vega (a field
// that is not there, a scale that cannot show its data) is an error: a figure that silently lost marks is worse
// than none.
import sharp from "sharp";
import * as vega from "vega";
import { type TopLevelSpec, compile } from "vega-lite";

export type FigureSpec = TopLevelSpec;
// One layer of a layered figure (a unit spec: data, mark, encoding; or a layer of layers).
export type FigureLayer = Extract<FigureSpec, { layer: unknown }>["layer"][number];

type Logger = NonNullable<vega.ViewOptions["logger"]>;

// vega's text measurer, which vega's typings leave out.
const textMetrics = (vega as unknown as { textMetrics: { canvas(use: boolean): void } }).textMetrics;

// A logger (vega-util's interface, which vega-lite and vega share) that keeps warnings and errors in `messages`.
function collecting(messages: string[]): Logger {
  let level = 0;
  const keep = (...args: unknown[]) => {
    messages.push(args.map(String).join(" "));
    return logger;
  };
  const logger = {
    level: (l?: number) => {
      if (l === undefined) return level;
      level = l;
      return logger;
    },
    error: keep,
    warn: keep,
    info: () => logger,
    debug: () => logger,
  };
  return logger as Logger;
}

// The figure as SVG text; `name` (e.g. "figure2") is named in errors.
export async function renderSvg(spec: FigureSpec, name: string): Promise<string> {
  const messages: string[] = [];
  const logger = collecting(messages);
  textMetrics.canvas(false);
  vega.resetSVGDefIds();
  const view = new vega.View(vega.parse(compile(spec, { logger }).spec), { renderer: "none", logger });
  try {
    const svg = await view.toSVG();
    if (messages.length > 0) throw new Error(`plot: ${name}: expected a spec that draws without warnings, got: ${messages.join("; ")}`);
    return svg;
  } finally {
    view.finalize();
  }
}

// The x and y scales of a single-view figure (one plot, layered or not) as vega lays it out: a value to its pixel
// in the plot, x from the left and y from the top. What depends on where marks land (labels.ts) reads them here.
export async function plotScales(spec: FigureSpec): Promise<{ x: (v: number) => number; y: (v: number) => number }> {
  const logger = collecting([]); // render's own pass reports what is wrong with the spec
  textMetrics.canvas(false);
  const view = new vega.View(vega.parse(compile(spec, { logger }).spec), { renderer: "none", logger });
  try {
    await view.runAsync();
    return { x: view.scale("x") as (v: number) => number, y: view.scale("y") as (v: number) => number };
  } finally {
    view.finalize();
  }
}

// The SVG as PNG at `scale` times its size (librsvg reads SVG pixels at 72 dpi).
export async function renderPng(svg: string, scale = 2): Promise<Buffer> {
  return sharp(Buffer.from(svg), { density: 72 * scale }).png().toBuffer();
}

// The three files figureFiles writes of a figure NAME.
export const figureFileNames = (name: string): string[] => [`${name}.vl.json`, `${name}.svg`, `${name}.png`];

// Each figure's three files, as (file name, contents): NAME.vl.json, NAME.svg and NAME.png, in the figures' order.
// The SVGs are drawn one after another (vega lays them out on this thread); each PNG is rasterised on libuv's pool
// while the next SVG is drawn, not awaited in turn (the default study's report and analysis waited ~0.3 s for them).
export async function figureFiles(figures: readonly (readonly [string, FigureSpec])[]): Promise<[string, string | Uint8Array][]> {
  const drawn: { name: string; spec: FigureSpec; svg: string; png: Promise<Buffer> }[] = [];
  for (const [name, spec] of figures) {
    const svg = await renderSvg(spec, name);
    const png = renderPng(svg);
    png.catch(() => undefined); // awaited below; until then a failure must not count as unhandled
    drawn.push({ name, spec, svg, png });
  }
  const pngs = await Promise.all(drawn.map((d) => d.png));
  return drawn.flatMap(({ name, spec, svg }, i) => {
    const [json, svgFile, pngFile] = figureFileNames(name);
    return [
      [json, JSON.stringify(spec, null, 2) + "\n"],
      [svgFile, svg],
      [pngFile, pngs[i]],
    ] as [string, string | Uint8Array][];
  });
}
