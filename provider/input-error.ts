import type { z } from "zod";

/**
 * Validates `value` against `schema` and, when it does not fit, throws one error that names
 * every bad field, the value found there and what is accepted (zod's message). `what` says
 * which input this is, e.g. "boot target".
 */
export function parseInput<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const result = schema.safeParse(value, { reportInput: true });
  if (result.success) return result.data;
  const lines = result.error.issues.map((issue) => {
    const field = issue.path.length === 0 ? "(input)" : issue.path.map(String).join(".");
    const found = "input" in issue ? describeValue(issue.input, field) : "missing";
    return `${field}: got ${found}; ${issue.message}`;
  });
  throw new Error(`invalid ${what}:\n  ${lines.join("\n  ")}`);
}

/** Shows a value in an error without leaking secrets: a field named like a key shows its length only. */
function describeValue(value: unknown, field: string): string {
  if (value === undefined) return "nothing";
  if (/privateKey|password|secret/i.test(field) && typeof value === "string") return `a secret of ${value.length} characters`;
  const text = JSON.stringify(value);
  if (text === undefined) return String(value);
  return text.length > 120 ? `${text.slice(0, 117)}...` : text;
}
