/**
 * The errors a user meets, by class, each carrying what fixes it. The message already holds the
 * fix, so the CLI (`ramroot: <message>`) and the provider (the engine's `error:` line) print the
 * same text; `fix` keeps it as data for whoever wants it alone.
 *
 * - input: a config value or flag is wrong (the field, the value, what is accepted);
 * - conflict: what the target holds now forbids the operation (the A/B rule, a lease);
 * - machine: the machine did not come up as it must (a failed trial).
 */

export interface FieldFailure {
  /** the property path, e.g. "entries[1].label" or "packages[3]" */
  property: string;
  /** "<property>: got <value>; <what is accepted>" */
  reason: string;
}

export type ErrorKind = "input" | "conflict" | "machine";

export class RamrootError extends Error {
  constructor(
    readonly kind: ErrorKind,
    /** what is wrong */
    readonly problem: string,
    /** what to do about it, when there is something to do */
    readonly fix?: string,
  ) {
    super(fix === undefined ? problem : `${problem}${problem.includes("\n") ? "\n" : "; "}${fix}`);
    this.name = new.target.name;
  }
}

/** Input that does not validate: every bad field with its value and what is accepted. */
export class InputError extends RamrootError {
  constructor(
    /** what the input is, e.g. "AbSystem inputs" or "stack config" */
    readonly what: string,
    readonly failures: readonly FieldFailure[],
    fix?: string,
  ) {
    super("input", `invalid ${what}:\n  ${failures.map((f) => f.reason).join("\n  ")}`, fix);
  }
}

/** What the target holds now forbids the operation; nothing was written. */
export class ConflictError extends RamrootError {
  constructor(problem: string, fix?: string) {
    super("conflict", problem, fix);
  }
}

/** The machine did not come up as it must (a trial that failed); DEFAULT did not change. */
export class MachineError extends RamrootError {
  constructor(problem: string, fix?: string) {
    super("machine", problem, fix);
  }
}
