/**
 * What deleting a boot-side resource does. By default it lets go, as Pulumi's
 * `retainOnDelete` does: the files stay on the boot partition, so a destroy, a resource
 * dropped from the program or a replacement after an identity change never leaves a
 * partition that cannot boot. `wipeOnDelete: true` (set and applied by an `up` before the
 * delete) asks for a real removal; even then nothing is removed that a resource wrote to the
 * same physical place during this run (a replacement's create runs before the old one's delete).
 */
import { z } from "zod";
import type { TargetSpec } from "../boot/target";
import { targetLocation } from "../boot/target-identity";

export const wipeOnDeleteSchema = z
  .boolean()
  .optional()
  .describe(
    "false (default): deleting the resource leaves its files on the boot partition; true: deleting removes them (apply it with an `up` before the delete)",
  );

/** Places (target identity + file) this provider process wrote: one run of the engine. */
const writtenThisRun = new Set<string>();

function place(target: TargetSpec, what: string): string {
  return `${targetLocation(target)}|${what.toLowerCase()}`;
}

export function noteWritten(target: TargetSpec, what: string): void {
  writtenThisRun.add(place(target, what));
}

export function wasWrittenThisRun(target: TargetSpec, what: string): boolean {
  return writtenThisRun.has(place(target, what));
}
