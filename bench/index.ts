// The benchmark table behind `node dist/run.js bench <subject>`.
import type { Command } from "../cli/command.js";
import { dataBench } from "./data.js";
import { vitBench } from "./vit.js";

export const BENCHES: Record<string, Command> = { vit: vitBench, data: dataBench };
