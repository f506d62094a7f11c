import type { z } from "zod";
import { fieldFailures, PARSE_OPTIONS } from "../input-error";
import type { CheckOutcome } from "./resource-handler";

/**
 * Validates a resource's inputs with its zod schema: every failure names the property path,
 * the value found there and what is accepted (an unknown key the key it most likely meant), so
 * `pulumi preview` stops with a message that points at the line of the program or stack config to fix.
 */
export function checkInputs<T>(schema: z.ZodType<T>, news: unknown): CheckOutcome<T> {
  const result = schema.safeParse(news, PARSE_OPTIONS);
  return result.success
    ? { ok: true, inputs: result.data }
    : { ok: false, failures: fieldFailures(result.error.issues) };
}
