// Trainable-parameter counts from a config alone (no weights needed), for the paper's Table 1 column.
// test/peft/count.test.ts checks these against the tensors applyStrategy really marks trainable.
import { type VitConfig, parameterCount } from "../vit/config.js";
import { defaultPositions } from "./block-expansion.js";
import type { Strategy } from "./strategy.js";

export function blockParameters(c: VitConfig): number {
  const C = c.width;
  return 4 * C + 3 * C * C + 3 * C + C * C + C + 2 * c.mlpHidden * C + c.mlpHidden + C;
}

function loraParameters(c: VitConfig, rank: number, targets: string[]): number {
  const C = c.width;
  let perBlock = 0;
  for (const t of targets) {
    if (t === "q" || t === "k" || t === "v" || t === "proj") perBlock += rank * C + C * rank;
    else if (t === "fc1") perBlock += rank * C + c.mlpHidden * rank;
    else if (t === "fc2") perBlock += rank * c.mlpHidden + C * rank;
  }
  return perBlock * c.depth;
}

export interface Counts {
  trainable: number; // exact count of trainable tensors' elements
  total: number; // every parameter of the model after the strategy (new blocks and adapters included)
  paper: number; // as the paper's Table 1 reports it (differs for LoRA: see headCountedTwice)
  headCountedTwice: boolean;
}

// `c.classes` is the head's class count.
export function countFor(c: VitConfig, s: Strategy): Counts {
  const head = c.classes * c.width + c.classes;
  const base = parameterCount(c);
  let trainable: number;
  let added = 0;
  switch (s.kind) {
    case "full":
      trainable = base;
      break;
    case "linear":
      trainable = head;
      break;
    case "top-k":
      trainable = s.k * blockParameters(c) + (s.frozenNorm ? 0 : 2 * c.width) + head; // blocks, final norm, head
      break;
    case "lora":
      added = loraParameters(c, s.rank, s.targets ?? ["q", "v"]);
      trainable = added + head;
      break;
    case "block": {
      const p = s.positions?.length ?? defaultPositions(c.depth, s.p).length;
      added = p * blockParameters(c);
      trainable = added + head;
      break;
    }
  }
  // The paper's LoRA figures count the classifier twice: the peft version the authors used marked both the
  // original head and its saved copy (modules_to_save) as trainable.
  const headCountedTwice = s.kind === "lora";
  return { trainable, total: base + added, paper: trainable + (headCountedTwice ? head : 0), headCountedTwice };
}
