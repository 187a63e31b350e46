// study/figures/panels.ts: a panel's title in lines short enough not to widen its panel past the plot (a long
// title stood the panels of Figure 4 a plot's width apart), broken after commas but never inside parentheses.
import { describe, expect, it } from "vitest";
import { titleLines } from "../../../study/figures/panels.js";

describe("titleLines", () => {
  it("breaks after commas outside parentheses, into lines of at most the limit", () => {
    expect(titleLines("ViT (patch 7, width 64, depth 4), backbone 6def1581, fashion-mnist")).toEqual(["ViT (patch 7, width 64, depth 4),", "backbone 6def1581, fashion-mnist"]);
    expect(titleLines("ViT-S/16, cifar100")).toEqual(["ViT-S/16, cifar100"]);
    expect(titleLines("a, b, c", 4)).toEqual(["a,", "b, c"]);
  });

  it("keeps a part longer than the limit on a line of its own, and a title without commas whole", () => {
    expect(titleLines("ViT (patch 7, width 64, depth 4), x", 10)).toEqual(["ViT (patch 7, width 64, depth 4),", "x"]);
    expect(titleLines("Transfer accuracy")).toEqual(["Transfer accuracy"]);
  });
});
