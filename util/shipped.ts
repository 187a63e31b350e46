// Files that ship with the tool (backbones/), found from any working directory. The tool's folder is the one above
// this module's: above dist/run.js in the bundle (and in the portable bundle's payload), above util/ under vitest.
import { existsSync } from "node:fs";
import { isAbsolute, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const TOOL_ROOT = fileURLToPath(new URL("..", import.meta.url));

// The file a path names: an absolute one as it is; a relative one in the working directory where it is there, else
// in the tool's folder. So the embedded default study finds its shipped backbone wherever it runs, and a user's
// file of the same name still comes first. `what` names the key or flag the path came from, for the error.
export function resolveShipped(path: string, what: string): string {
  const here = resolve(path);
  if (existsSync(here)) return here;
  const shipped = resolve(TOOL_ROOT, path);
  if (!isAbsolute(path) && existsSync(shipped)) return shipped;
  throw new Error(`${what}: ${here} does not exist${isAbsolute(path) ? "" : ` (nor ${shipped}, in the tool's folder)`}`);
}
