// A --strategies flag of strategies a run folder already has (analyze, compare): each named as the configs write it
// (full-lrd.75 is full-lrd0.75), a bad one a usage error that names the flag.
import { UsageError } from "../util/command.js";
import { parseStrategy, strategyName, strategyTexts } from "../peft/strategy.js";

export function strategiesFlag(list: string[]): string[] {
  return strategyTexts(list).map((text) => {
    try {
      return strategyName(parseStrategy(text));
    } catch (e) {
      throw new UsageError(`--strategies: ${e instanceof Error ? e.message : e}`);
    }
  });
}
