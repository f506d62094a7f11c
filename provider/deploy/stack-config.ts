/**
 * The stack config under `ramroot:` (stacks/Pulumi.<stack>.yaml), validated as a whole, once, in
 * the provider's Construct of the AbSystem: an unknown key anywhere, top level or nested, is
 * refused naming the key, the file it is in and the key it most likely meant. A program reads
 * only the keys it knows, so without this a typo (`ramroot:bootTst`) would drop a setting, or a
 * gate, without a word.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { z } from "zod";
import { parse } from "yaml";
import { targetSpecSchema } from "../boot/target-spec";
import { userAppendSchema } from "../boot/kernel-append";
import { imageConfigSchema } from "../image/image-config";
import { fieldFailures, PARSE_OPTIONS } from "../input-error";
import { InputError } from "../ramroot-error";
import { bootTestInputSchema, PIN_CONFIG_KEY, pinSchema, strategySchema, trialSchema } from "./ab-system-inputs";

const NAMESPACE = "ramroot:";

/** Every key a stack may set under `ramroot:`: what components/machine-program.ts reads, and the rollback pin. */
const stackConfigSchema = z.strictObject({
  target: targetSpecSchema.optional(),
  image: imageConfigSchema.optional(),
  strategy: strategySchema.optional(),
  trial: trialSchema.optional(),
  bootTest: bootTestInputSchema,
  append: userAppendSchema.optional(),
  wipeOnDelete: z.boolean({ error: "expected true or false" }).optional(),
  [PIN_CONFIG_KEY.slice(NAMESPACE.length)]: pinSchema.optional(),
});

/** Keys whose values are text as they are; every other value is JSON (objects, lists, booleans, numbers). */
const TEXT_KEYS = new Set(["strategy", "append"]);

function valueOf(key: string, text: string): unknown {
  if (TEXT_KEYS.has(key)) return text;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** Where a stack's config lives, relative to the project: `stacks/Pulumi.<stack>.yaml` (Pulumi.yaml's stackConfigDir). */
export function stackConfigFile(projectDir: string, stack: string): string {
  let dir = "";
  try {
    const project = parse(fs.readFileSync(path.join(projectDir, "Pulumi.yaml"), "utf8")) as { stackConfigDir?: unknown };
    if (typeof project?.stackConfigDir === "string") dir = project.stackConfigDir;
  } catch {
    // no Pulumi.yaml here (an inline program): the stack's file is beside the program
  }
  return path.join(dir, `Pulumi.${stack}.yaml`);
}

/** Throws an InputError naming every bad `ramroot:` key of the stack config (`config`: key -> value text). */
export function checkStackConfig(config: ReadonlyMap<string, string>, file: string): void {
  const values: Record<string, unknown> = {};
  for (const [key, text] of config) {
    if (!key.startsWith(NAMESPACE)) continue;
    const name = key.slice(NAMESPACE.length);
    values[name] = valueOf(name, text);
  }
  const result = stackConfigSchema.safeParse(values, PARSE_OPTIONS);
  if (result.success) return;
  const failures = fieldFailures(result.error.issues).map((f) => ({
    property: `${NAMESPACE}${f.property}`,
    reason: `${NAMESPACE}${f.reason}`,
  }));
  throw new InputError(`stack config (${file})`, failures);
}
