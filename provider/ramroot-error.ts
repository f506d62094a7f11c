/**
 * The errors a user meets, by class, each carrying what fixes it. The message already holds the
 * fix, so the CLI (`ramroot: <message>`) and the provider (the engine's `error:` line) print the
 * same text; `fix` keeps it as data for whoever wants it alone.
 *
 * - input: a config value or flag is wrong (the field, the value, what is accepted);
 * - trust: a signature does not verify, or nothing trusted vouches for an index or a package;
 * - target: the boot target cannot be read or is not what it must be (not a boot partition);
 * - conflict: what the target holds now forbids the operation (the A/B rule, a lease);
 * - machine: the machine did not come up as it must (a failed trial);
 * - host: the machine ramroot runs on lacks a tool it needs, or the tool failed (the setup installs them);
 * - internal: an invariant of ramroot's own broke (a bug): no input reaches it, so no fix but a report.
 *
 * An error about one input field carries that field as data (`property`), so whoever reports
 * it (the provider's check, the AbSystem's refusal) names the field without reading the text.
 */

export interface FieldFailure {
  /** the property path, e.g. "entries[1].label" or "packages[3]" */
  property: string;
  /** "<property>: got <value>; <what is accepted>" */
  reason: string;
}

export type ErrorKind = "input" | "trust" | "target" | "conflict" | "machine" | "host" | "internal";

export class RamrootError extends Error {
  constructor(
    readonly kind: ErrorKind,
    /** what is wrong */
    readonly problem: string,
    /** what to do about it, when there is something to do */
    readonly fix?: string,
    /** the input field it is about (e.g. "packages", "keys"), when it is about one */
    readonly property?: string,
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

/** One input field is wrong: the message starts with the field ("overlay: ..."), as the field's check names it. */
export class FieldError extends RamrootError {
  constructor(property: string, problem: string, fix?: string) {
    super("input", `${property}: ${problem}`, fix, property);
  }
}

/**
 * Nothing trusted vouches for what was read (an index, a package, a key), or what was read is not
 * what it claims (a corrupt archive, a hash that does not match); it is not used. The field is
 * `keys` when no key vouches, `repositories` when what a repository served is broken.
 */
export class TrustError extends RamrootError {
  constructor(problem: string, fix?: string, property: "keys" | "repositories" = "keys") {
    super("trust", problem, fix, property);
  }
}

/** The boot target cannot be read or is not what it must be; nothing was written to it. */
export class TargetError extends RamrootError {
  constructor(problem: string, fix?: string) {
    super("target", problem, fix, "target");
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

/** The host lacks a tool ramroot runs (mtools, zstd, bwrap, ...) or the tool failed; the fix installs it. */
export class HostError extends RamrootError {
  constructor(problem: string, fix?: string) {
    super("host", problem, fix);
  }
}

/**
 * An invariant of ramroot's own broke: what a caller inside ramroot promised did not hold (a slot
 * that must exist, a value the schema already checked). No input a user gives reaches it, so it
 * carries no fix for the user but says it is a bug. Every other failure is one of the classes above
 * (test/unit/shared/typed-errors.test.ts keeps plain `throw new Error` out of provider/).
 */
export class InternalError extends RamrootError {
  constructor(problem: string) {
    super(
      "internal",
      `internal error (a bug in ramroot): ${problem}`,
      "please report it with the command that led here",
    );
  }
}
