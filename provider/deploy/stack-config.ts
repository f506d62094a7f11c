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
import { userAppendSchema } from "../machine/kernel-append";
import { imageConfigSchema } from "../image/image-config";
import { fieldFailures, PARSE_OPTIONS } from "../input-error";
import { InputError } from "../ramroot-error";
import {
  bootTestInputSchema,
  PIN_CONFIG_KEY,
  pinSchema,
  schemeSchema,
  secureBootSchema,
  strategySchema,
  trialSchema,
} from "./ab-system-inputs";
import { PINS_CONFIG_KEY, pinsSchema } from "./machine-pins";

const NAMESPACE = "ramroot:";

/**
 * Every key a stack may set under `ramroot:`: what components/machine-program.ts reads, the
 * rollback pins (per machine, and the stack's one from before machines had names), and the
 * twin's disk `ramroot vm --stack` reads.
 */
const stackConfigSchema = z.strictObject({
  target: targetSpecSchema.optional(),
  scheme: schemeSchema.optional(),
  image: imageConfigSchema.optional(),
  strategy: strategySchema.optional(),
  trial: trialSchema.optional(),
  bootTest: bootTestInputSchema,
  append: userAppendSchema.optional(),
  wipeOnDelete: z.boolean({ error: "expected true or false" }).optional(),
  secureBoot: secureBootSchema.optional(),
  [PIN_CONFIG_KEY.slice(NAMESPACE.length)]: pinSchema.optional(),
  [PINS_CONFIG_KEY.slice(NAMESPACE.length)]: pinsSchema.optional(),
  twin: z.strictObject({ disk: z.string().min(1, "expected the twin's boot disk image file") }).optional(),
});

/** Keys whose values are text as they are; every other value is JSON (objects, lists, booleans, numbers). */
const TEXT_KEYS = new Set(["strategy", "scheme", "append"]);

function valueOf(key: string, text: string): unknown {
  if (TEXT_KEYS.has(key)) return text;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/**
 * Where a stack's config lives, relative to its project: `stacks/Pulumi.<stack>.yaml` (Pulumi.yaml's
 * stackConfigDir), when `projectDir` holds the project named `project`; else the file's name only.
 */
export function stackConfigFile(projectDir: string, project: string, stack: string): string {
  const file = `Pulumi.${stack}.yaml`;
  try {
    const settings = parse(fs.readFileSync(path.join(projectDir, "Pulumi.yaml"), "utf8")) as {
      name?: unknown;
      stackConfigDir?: unknown;
    };
    if (settings?.name !== project) return file;
    return typeof settings.stackConfigDir === "string" ? path.join(settings.stackConfigDir, file) : file;
  } catch {
    return file; // no Pulumi.yaml there (an inline program's work directory)
  }
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
