/**
 * Input validation at the edge: zod issues turned into errors that name every bad field, the
 * value found there and what is accepted. One formatter for the CLI, the engine and the
 * Pulumi resources' `check`. An unknown key is named with the key the input most likely meant.
 */
import type { z } from "zod";
import { InputError, type FieldFailure } from "./ramroot-error";
import { nearestName } from "./similar-name";

export type { FieldFailure } from "./ramroot-error";

function propertyPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const part of path)
    out += typeof part === "number" ? `[${part}]` : out === "" ? String(part) : `.${String(part)}`;
  return out === "" ? "(input)" : out;
}

/** A value for an error message; a field named like a secret shows its length only. */
export function describeValue(value: unknown, field: string): string {
  if (value === undefined) return "nothing";
  if (/privateKey|password|secret|passphrase/i.test(field) && typeof value === "string")
    return `a secret of ${value.length} characters`;
  const text = JSON.stringify(value);
  if (text === undefined) return String(value);
  return text.length > 120 ? `${text.slice(0, 117)}...` : text;
}

/**
 * The keys each rejected object accepts, by the object the input held there: zod reports an
 * unknown key with the object but not the schema, so the parse's error map notes the schema's
 * keys as it meets them (strict objects only).
 */
const acceptedKeys = new WeakMap<object, string[]>();

/** The per-parse error map that records what a strict object accepts; messages stay zod's. */
function noteAcceptedKeys(issue: z.core.$ZodRawIssue): undefined {
  if (issue.code !== "unrecognized_keys") return undefined;
  const input = issue.input;
  const def = (issue.inst as { _zod?: { def?: { shape?: Record<string, unknown> } } } | undefined)?._zod?.def;
  if (input !== null && typeof input === "object" && def?.shape) {
    const known = acceptedKeys.get(input) ?? [];
    acceptedKeys.set(input, [...new Set([...known, ...Object.keys(def.shape)])]);
  }
  return undefined;
}

/** The parse options every validation here uses: the input kept on each issue, accepted keys noted. */
export const PARSE_OPTIONS = { reportInput: true, error: noteAcceptedKeys } as const;

function unknownKeyFailures(issue: z.core.$ZodIssue & { code: "unrecognized_keys" }): FieldFailure[] {
  const where = propertyPath(issue.path);
  const known = typeof issue.input === "object" && issue.input !== null ? acceptedKeys.get(issue.input) : undefined;
  return issue.keys.map((key) => {
    const property = issue.path.length === 0 ? key : `${where}.${key}`;
    const near = known ? nearestName(key, known) : undefined;
    const accepted = known ? `${issue.path.length === 0 ? "accepted keys" : `${where} accepts`}: ${known.join(", ")}` : "";
    return {
      property,
      reason: near
        ? `${property}: unknown key; did you mean ${JSON.stringify(near)}?`
        : `${property}: unknown key${accepted ? `; ${accepted}` : ""}`,
    };
  });
}

/** Every issue as a field failure; an unknown key is one failure per key, with the key it most likely meant. */
export function fieldFailures(issues: readonly z.core.$ZodIssue[]): FieldFailure[] {
  return issues.flatMap((issue) => {
    if (issue.code === "unrecognized_keys") return unknownKeyFailures(issue);
    const property = propertyPath(issue.path);
    const found = "input" in issue ? describeValue(issue.input, property) : "nothing";
    return [{ property, reason: `${property}: got ${found}; ${issue.message}` }];
  });
}

/** Validates `value` against `schema`, or throws one InputError listing every bad field. `what` names the input. */
export function parseInput<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const result = schema.safeParse(value, PARSE_OPTIONS);
  if (result.success) return result.data;
  throw new InputError(what, fieldFailures(result.error.issues));
}
