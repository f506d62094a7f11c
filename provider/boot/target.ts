/**
 * The one place a boot target is opened: the spec is validated here (the edge), relative paths
 * are resolved against the project directory, and the kind picks the implementation. Nothing
 * else in the code base knows the concrete kinds; everything else uses `BootTarget`'s capabilities.
 */
import type { BootTarget } from "./boot-target";
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
  // Each kind's module is loaded when a target of that kind is opened: the provider plugin starts
  // for every preview, and the ssh and local targets bring execa (an ES module graph) with them.
  switch (spec.kind) {
    case "local":
      return (require("./local-target") as typeof import("./local-target")).LocalTarget.open(spec);
    case "image":
      return (require("./image-target") as typeof import("./image-target")).ImageTarget.open(spec);
    case "ssh":
      return (require("./ssh-target") as typeof import("./ssh-target")).SshTarget.open(spec);
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
