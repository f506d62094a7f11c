/**
 * The Pulumi project a command works on: the nearest directory, from the given one upwards,
 * that holds Pulumi.yaml. Relative paths in a stack's config (targets, overlays, repositories)
 * mean paths in that directory, wherever the shell is (`npx ramroot status` from `root/`).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { RamrootError } from "./ramroot-error";

const PROJECT_FILES = ["Pulumi.yaml", "Pulumi.yml"];

/** The directory holding Pulumi.yaml at or above `from`; an error saying where it looked when there is none. */
export function findProjectDir(from: string = process.cwd()): string {
  const start = path.resolve(from);
  for (let dir = start; ; dir = path.dirname(dir)) {
    if (PROJECT_FILES.some((f) => fs.existsSync(path.join(dir, f)))) return dir;
    if (path.dirname(dir) === dir) break;
  }
  throw new RamrootError(
    "input",
    `no Pulumi project at or above ${start} (no Pulumi.yaml)`,
    "run ramroot inside the project, or give --cwd <project dir>",
  );
}

/** The project at or above `from`, or `from` itself when there is none (an inline program's work dir). */
export function projectDirOr(from: string): string {
  try {
    return findProjectDir(from);
  } catch {
    return path.resolve(from);
  }
}
