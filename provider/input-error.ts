/**
 * Input validation at the edge: zod issues turned into errors that name every bad field, the
 * value found there and what is accepted. One formatter for the CLI, the engine and the
 * Pulumi resources' `check`. An unknown key is named with the key the input most likely meant.
 */
import type { z } from "zod";
import { InputError, type FieldFailure } from "./ramroot-error";
import { didYouMean, nearestName } from "./similar-name";

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

/** One failure per unknown key, with the key it most likely meant (`meant`: that key's property path). */
function unknownKeyFailures(
  issue: z.core.$ZodIssue & { code: "unrecognized_keys" },
): (FieldFailure & { issue: z.core.$ZodIssue; meant?: string })[] {
  const where = propertyPath(issue.path);
  const known = typeof issue.input === "object" && issue.input !== null ? acceptedKeys.get(issue.input) : undefined;
  return issue.keys.map((key) => {
    const at = (k: string) => (issue.path.length === 0 ? k : `${where}.${k}`);
    const property = at(key);
    const near = known ? nearestName(key, known) : undefined;
    const accepted = known
      ? `${issue.path.length === 0 ? "accepted keys" : `${where} accepts`}: ${known.join(", ")}`
      : "";
    return {
      issue,
      property,
      ...(near !== undefined ? { meant: at(near) } : {}),
      reason: near
        ? `${property}: unknown key; did you mean ${JSON.stringify(near)}?`
        : `${property}: unknown key${accepted ? `; ${accepted}` : ""}`,
    };
  });
}

/**
 * The value an issue is about and what it most likely meant: a discriminated union that matched
 * no option reports the whole object at the discriminator's path, so its value is the
 * discriminator's; a value outside a list of choices gets the nearest choice.
 */
function valueAndHint(issue: z.core.$ZodIssue): { value: unknown; hint: string } {
  const raw = issue as { input?: unknown; discriminator?: string; options?: unknown[]; values?: unknown[] };
  let value = raw.input;
  let choices = issue.code === "invalid_value" ? raw.values : undefined;
  if (issue.code === "invalid_union" && raw.discriminator && value !== null && typeof value === "object") {
    value = (value as Record<string, unknown>)[raw.discriminator];
    choices = raw.options;
  }
  const hint = typeof value === "string" && choices ? didYouMean(value, choices.map(String)) : "";
  return { value, hint };
}

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === "object" && !Array.isArray(v);

/**
 * An object that matched no option of a union, said as what is wrong inside it: for a union of
 * an object and something else (`{marker, ...} | false`), the object option's own failures; for
 * a discriminated union whose discriminator is missing, the key that most likely meant it.
 */
function unionFailures(issue: z.core.$ZodIssue & { code: "invalid_union" }): FieldFailure[] | undefined {
  const input = (issue as { input?: unknown }).input;
  if (!isObject(input)) return undefined;
  const discriminator = (issue as { discriminator?: string }).discriminator;
  if (discriminator !== undefined) {
    if (discriminator in input) return undefined;
    const typo = Object.keys(input).find((k) => nearestName(k, [discriminator]) !== undefined);
    if (typo === undefined) return undefined;
    // zod reports it at the discriminator's path; the typo sits beside it, in the object.
    const parent = issue.path[issue.path.length - 1] === discriminator ? issue.path.slice(0, -1) : issue.path;
    const property = parent.length === 0 ? typo : `${propertyPath(parent)}.${typo}`;
    return [{ property, reason: `${property}: unknown key; did you mean ${JSON.stringify(discriminator)}?` }];
  }
  // The option that took the value as an object: its failures are not about the value's type.
  const rootTypeError = (i: z.core.$ZodIssue) =>
    i.path.length === 0 && (i.code === "invalid_type" || i.code === "invalid_value");
  const objectOption = issue.errors.find((option) => option.length > 0 && !option.some(rootTypeError));
  if (!objectOption) return undefined;
  return fieldFailures(objectOption.map((i) => ({ ...i, path: [...issue.path, ...i.path] }) as z.core.$ZodIssue));
}

/** zod's own wording for a wrong type ("Invalid input: expected array, received undefined"), said plainly. */
function messageOf(issue: z.core.$ZodIssue): string {
  if (issue.code === "invalid_type" && /^Invalid input/.test(issue.message))
    return `expected ${issue.expected === "array" ? "a list" : issue.expected === "object" ? "an object {...}" : `a ${issue.expected}`}`;
  // A message written for the field's parent may name the field again ("kind: expected ...").
  const last = issue.path[issue.path.length - 1];
  return typeof last === "string" ? issue.message.replace(new RegExp(`^${last}: `), "") : issue.message;
}

/**
 * Every issue as a field failure; an unknown key is one failure per key, with the key it most
 * likely meant (and a required key missing because it was misspelt is said once, as the typo).
 */
export function fieldFailures(issues: readonly z.core.$ZodIssue[]): FieldFailure[] {
  const unknown = issues.flatMap((issue) => (issue.code === "unrecognized_keys" ? unknownKeyFailures(issue) : []));
  const meant = new Set(unknown.flatMap((f) => (f.meant === undefined ? [] : [f.meant])));
  return issues.flatMap((issue): FieldFailure[] => {
    if (issue.code === "unrecognized_keys")
      return unknown.filter((f) => f.issue === issue).map(({ property, reason }) => ({ property, reason }));
    const inside = issue.code === "invalid_union" ? unionFailures(issue) : undefined;
    if (inside) return inside;
    const property = propertyPath(issue.path);
    const { value, hint } = valueAndHint(issue);
    if (value === undefined && meant.has(property)) return [];
    const found = "input" in issue ? describeValue(value, property) : "nothing";
    return [{ property, reason: `${property}: got ${found}; ${messageOf(issue)}${hint}` }];
  });
}

/** Validates `value` against `schema`, or throws one InputError listing every bad field. `what` names the input. */
export function parseInput<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const result = schema.safeParse(value, PARSE_OPTIONS);
  if (result.success) return result.data;
  throw new InputError(what, fieldFailures(result.error.issues));
}
