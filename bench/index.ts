// The benchmark table behind `node dist/run.js bench <subject>`.
import type { Command } from "../cli/command.js";
import { dataBench } from "./data.js";
import { vitBench } from "./vit.js";
import { ops } from "./ops.js";
import { waitBench } from "./wait.js";
import { knnBench } from "./knn.js";
import { matmul } from "./matmul.js";
import { attention } from "./attention.js";

export const BENCHES: Record<string, Command> = { matmul, ops, attention, vit: vitBench, data: dataBench, knn: knnBench, wait: waitBench };
