// plot/labels.ts: labels placed greedily clear of the points and of each other, in the points' order.
import { describe, expect, it } from "vitest";
import { LABEL_ANCHORS, type LabelledPoint, placeLabels, strokeBoxes, textWidth } from "../../plot/labels.js";

const FONT = 11;
const RADIUS = 6;

// A label's box as placeLabels reckons it.
function box(p: LabelledPoint, anchor: number) {
  const a = LABEL_ANCHORS[anchor];
  const w = textWidth(p.text, FONT);
  const x0 = a.align === "left" ? p.x + a.dx : a.align === "right" ? p.x + a.dx - w : p.x + a.dx - w / 2;
  const y0 = a.baseline === "top" ? p.y + a.dy : p.y + a.dy - FONT;
  return { x0, y0, x1: x0 + w, y1: y0 + FONT };
}
const disjoint = (a: ReturnType<typeof box>, b: ReturnType<typeof box>) => a.x1 <= b.x0 || b.x1 <= a.x0 || a.y1 <= b.y0 || b.y1 <= a.y0;
const mark = (p: LabelledPoint) => ({ x0: p.x - RADIUS, y0: p.y - RADIUS, x1: p.x + RADIUS, y1: p.y + RADIUS });

describe("plot/labels", () => {
  it("measures text by DejaVu Sans' advance widths", () => {
    expect(textWidth("0.01*", FONT)).toBeCloseTo((3 * 0.636 + 0.318 + 0.5) * FONT, 10);
  });

  it("puts a lone label right of its point and above it", () => {
    expect(placeLabels([{ x: 100, y: 100, text: "0.1*" }], FONT, RADIUS)).toEqual([0]);
  });

  it("places the labels of close points clear of every point and of each other, the earlier first", () => {
    // Three points a few pixels apart, as three rates of a study that fall to the same accuracies.
    const points = [
      { x: 100, y: 100, text: "0.003" },
      { x: 104, y: 103, text: "0.01" },
      { x: 97, y: 96, text: "0.003" },
    ];
    const anchors = placeLabels(points, FONT, RADIUS);
    expect(new Set(anchors).size).toBe(3);
    const boxes = points.map((p, i) => box(p, anchors[i]));
    for (let i = 0; i < 3; i++) {
      for (let j = 0; j < 3; j++) {
        expect(disjoint(boxes[i], mark(points[j])), `label ${i} on point ${j}`).toBe(true);
        if (j !== i) expect(disjoint(boxes[i], boxes[j]), `labels ${i} and ${j}`).toBe(true);
      }
    }
    // The first point keeps the first anchor (right of it, above), clear of the others' marks; the later ones move.
    expect(anchors[0]).toBe(0);
  });

  it("keeps a label off a stroke where an anchor is clear of it, and on it rather than on a point", () => {
    // A horizontal stroke just above the point, through the first anchor's box: the label goes below.
    const point = { x: 100, y: 100, text: "0.03" };
    const stroke = strokeBoxes(60, 92, 140, 92);
    expect(stroke[0]).toEqual({ x0: 59, y0: 91, x1: 61, y1: 93 });
    expect(stroke.at(-1)).toEqual({ x0: 139, y0: 91, x1: 141, y1: 93 });
    expect(LABEL_ANCHORS[placeLabels([point], FONT, RADIUS, stroke)[0]]).toMatchObject({ baseline: "top" });
    // Points below the point on either side: crossing the stroke costs less than covering a point.
    const below = [point, { x: 114, y: 112, text: "" }, { x: 86, y: 112, text: "" }, { x: 100, y: 115, text: "" }];
    expect(LABEL_ANCHORS[placeLabels(below, FONT, RADIUS, stroke)[0]]).toMatchObject({ baseline: "bottom" });
  });

  it("where no anchor is clear, takes the one that overlaps least", () => {
    // A point boxed in by marks on every side but one: below it, to the left, there is room.
    const around = [
      { x: 100, y: 100, text: "1" },
      ...[[110, 92], [90, 92], [110, 108], [100, 88], [100, 112]].map(([x, y]) => ({ x, y, text: "" })),
    ];
    const [first] = placeLabels(around, FONT, RADIUS);
    expect(LABEL_ANCHORS[first]).toMatchObject({ align: "right", baseline: "top" });
  });
});
