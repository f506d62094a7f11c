import type { z } from "zod";
import type { CheckOutcome } from "./resource-handler";

/**
 * Validates a resource's inputs with its zod schema: every failure names the property path,
 * the value found there and what is accepted, so `pulumi preview` stops with a message that
 * points at the line of the program or stack config to fix.
 */
export function checkInputs<T>(schema: z.ZodType<T>, news: unknown): CheckOutcome<T> {
  const result = schema.safeParse(news, { reportInput: true });
  if (result.success) return { ok: true, inputs: result.data };
  return {
    ok: false,
    failures: result.error.issues.map((issue) => {
      const property = propertyPath(issue.path);
      const found = "input" in issue ? describeValue(issue.input, property) : "nothing";
      return { property, reason: `${property}: got ${found}; ${issue.message}` };
    }),
  };
}

function propertyPath(path: PropertyKey[]): string {
  let out = "";
  for (const part of path) out += typeof part === "number" ? `[${part}]` : out === "" ? String(part) : `.${String(part)}`;
  return out === "" ? "(inputs)" : out;
}

/** A value for an error message; secrets show their length only. */
export function describeValue(value: unknown, field: string): string {
  if (value === undefined) return "nothing";
  if (/privateKey|password|secret|passphrase/i.test(field) && typeof value === "string") return `a secret of ${value.length} characters`;
  const text = JSON.stringify(value);
  if (text === undefined) return String(value);
  return text.length > 120 ? `${text.slice(0, 117)}...` : text;
}
