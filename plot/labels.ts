// Where each point's text label stands in a scatter plot, so that labels overwrite neither each other nor the
// points nor the figure's other marks (error bars, lines): greedily, each label in turn on the first of the anchors
// around its point (right above, right below, left above, left below, above, below) whose box is clear of the
// points, the marks and the labels placed before it, or failing all, the anchor whose box overlaps them least. Positions are in the plot's pixels (x right, y down), as
// the figure's scales place the points (render.ts plotScales). Boxes are estimated from DejaVu Sans' advance widths,
// the figures' font (style.ts), which librsvg draws with.

export interface LabelAnchor {
  align: "left" | "right" | "center";
  baseline: "bottom" | "top";
  dx: number; // pixels from the point to the text's anchor
  dy: number;
}

export const LABEL_ANCHORS: readonly LabelAnchor[] = [
  { align: "left", baseline: "bottom", dx: 6, dy: -4 },
  { align: "left", baseline: "top", dx: 6, dy: 4 },
  { align: "right", baseline: "bottom", dx: -6, dy: -4 },
  { align: "right", baseline: "top", dx: -6, dy: 4 },
  { align: "center", baseline: "bottom", dx: 0, dy: -9 },
  { align: "center", baseline: "top", dx: 0, dy: 9 },
];

export interface LabelledPoint {
  x: number; // pixels
  y: number;
  text: string;
}

export interface Box {
  x0: number;
  y0: number;
  x1: number;
  y1: number;
}

// DejaVu Sans' advance widths in em: digits, the decimal point, the star, and a fallback for other characters.
const ADVANCE: Record<string, number> = { ".": 0.318, "*": 0.5, "-": 0.361, e: 0.615 };
const DIGIT = 0.636;
const OTHER = 0.65;

export function textWidth(text: string, fontSize: number): number {
  let em = 0;
  for (const c of text) em += c >= "0" && c <= "9" ? DIGIT : (ADVANCE[c] ?? OTHER);
  return em * fontSize;
}

function labelBox(p: LabelledPoint, a: LabelAnchor, fontSize: number): Box {
  const w = textWidth(p.text, fontSize);
  const x = p.x + a.dx;
  const y = p.y + a.dy;
  const x0 = a.align === "left" ? x : a.align === "right" ? x - w : x - w / 2;
  const y0 = a.baseline === "top" ? y : y - fontSize;
  return { x0, y0, x1: x0 + w, y1: y0 + fontSize };
}

// How much a pixel of stroke under a label counts against a pixel of point or label.
const STROKE_WEIGHT = 0.25;

const overlap = (a: Box, b: Box) => Math.max(0, Math.min(a.x1, b.x1) - Math.max(a.x0, b.x0)) * Math.max(0, Math.min(a.y1, b.y1) - Math.max(a.y0, b.y0));

// The pixels a straight stroke from (x0, y0) to (x1, y1) covers, as small boxes every few pixels along it: an
// obstacle for placeLabels (a line between points, an error bar).
export function strokeBoxes(x0: number, y0: number, x1: number, y1: number, halfWidth = 1): Box[] {
  const steps = Math.max(1, Math.ceil(Math.hypot(x1 - x0, y1 - y0) / 3));
  return Array.from({ length: steps + 1 }, (_, i) => {
    const x = x0 + ((x1 - x0) * i) / steps;
    const y = y0 + ((y1 - y0) * i) / steps;
    return { x0: x - halfWidth, y0: y - halfWidth, x1: x + halfWidth, y1: y + halfWidth };
  });
}

// The index into LABEL_ANCHORS of each point's label, in the points' order. `pointRadius`: the half-width of a
// point's mark, in pixels; `obstacles`: the other marks a label should not cover, which weigh less than a point or
// a label (a label may cross a stroke where every other anchor would cover a point or a label).
export function placeLabels(points: LabelledPoint[], fontSize: number, pointRadius: number, obstacles: Box[] = []): number[] {
  const marks: Box[] = points.map((p) => ({ x0: p.x - pointRadius, y0: p.y - pointRadius, x1: p.x + pointRadius, y1: p.y + pointRadius }));
  const placed: Box[] = [];
  return points.map((p) => {
    let best = 0;
    let least = Infinity;
    for (let i = 0; i < LABEL_ANCHORS.length && least > 0; i++) {
      const box = labelBox(p, LABEL_ANCHORS[i], fontSize);
      const covered = [...marks, ...placed].reduce((sum, other) => sum + overlap(box, other), 0) + STROKE_WEIGHT * obstacles.reduce((sum, other) => sum + overlap(box, other), 0);
      if (covered < least) [best, least] = [i, covered];
    }
    placed.push(labelBox(p, LABEL_ANCHORS[best], fontSize));
    return best;
  });
}
