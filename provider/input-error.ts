/**
 * Input validation at the edge: zod issues turned into errors that name every bad field, the
 * value found there and what is accepted. One formatter for the CLI, the engine and the
 * Pulumi resources' `check`.
 */
import type { z } from "zod";

export interface FieldFailure {
  /** the property path, e.g. "entries[1].label" or "packages[3]" */
  property: string;
  /** "<property>: got <value>; <what is accepted>" */
  reason: string;
}

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

/** Every issue as a field failure. */
export function fieldFailures(issues: readonly z.core.$ZodIssue[]): FieldFailure[] {
  return issues.map((issue) => {
    const property = propertyPath(issue.path);
    const found = "input" in issue ? describeValue(issue.input, property) : "nothing";
    return { property, reason: `${property}: got ${found}; ${issue.message}` };
  });
}

/** Validates `value` against `schema`, or throws one error listing every bad field. `what` names the input. */
export function parseInput<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const result = schema.safeParse(value, { reportInput: true });
  if (result.success) return result.data;
  throw new Error(
    `invalid ${what}:\n  ${fieldFailures(result.error.issues)
      .map((f) => f.reason)
      .join("\n  ")}`,
  );
}
