/**
 * The one place a boot target is opened: the spec is validated here (the edge), relative paths
 * are resolved against the project directory, and the kind picks the implementation. Nothing
 * else in the code base knows the concrete kinds; everything else uses `BootTarget`'s capabilities.
 */
import type { BootTarget } from "./boot-target";
import { ImageTarget } from "./image-target";
import { LocalTarget } from "./local-target";
import { SshTarget } from "./ssh-target";
import { parseTargetSpec, resolveTargetSpec, type TargetSpec } from "./target-spec";

// What callers of the factory use with it, from the modules that define them.
export type { BootTarget } from "./boot-target";
export { parseTargetSpec, targetSpecSchema, type TargetSpec } from "./target-spec";

export interface OpenTargetOptions {
  /** what relative local and image paths are relative to: the project directory (default the current directory) */
  baseDir?: string;
}

/** Opens a target. The spec is validated here, so callers may pass untrusted input. */
export async function openTarget(input: TargetSpec, opts: OpenTargetOptions = {}): Promise<BootTarget> {
  const spec = resolveTargetSpec(parseTargetSpec(input), opts.baseDir ?? process.cwd());
  switch (spec.kind) {
    case "local":
      return LocalTarget.open(spec);
    case "image":
      return ImageTarget.open(spec);
    case "ssh":
      return SshTarget.open(spec);
  }
}

/** Opens a target for the length of `fn`, and closes it whatever happens. */
export async function withTarget<T>(
  spec: TargetSpec,
  fn: (target: BootTarget) => Promise<T>,
  opts: OpenTargetOptions = {},
): Promise<T> {
  const target = await openTarget(spec, opts);
  try {
    return await fn(target);
  } finally {
    await target.close();
  }
}
