/**
 * What one resource type implements. The provider server maps the Pulumi resource provider
 * protocol onto these calls one to one; the handlers call the engine and hold no protocol code.
 */

export interface CheckFailure {
  /** the input property, e.g. "entries[1].label" */
  property: string;
  reason: string;
}

export type CheckOutcome<I> = { ok: true; inputs: I } | { ok: false; failures: CheckFailure[] };

/** How one property changes, as `pulumi preview` shows it. */
export type PropertyChange = "add" | "delete" | "update";

export interface DiffOutcome {
  /** property path -> change, e.g. { "entries[0].append": "update" } */
  changes: Record<string, PropertyChange>;
  /** top-level properties whose change forces a replacement */
  replaces?: string[];
  deleteBeforeReplace?: boolean;
}

export interface OperationContext {
  urn: string;
  /** true during `pulumi preview`: compute, never write */
  preview: boolean;
  /**
   * progress and notes, shown by the engine next to the resource; "info" is transient
   * (progress), "note" stays in the update's output (e.g. what a build changed)
   */
  log(message: string, severity?: "info" | "note" | "warning" | "debug"): void;
}

export interface ResourceHandler<I, O> {
  /** the Pulumi type token, e.g. "ramroot:index:SyslinuxConfig" */
  readonly token: string;
  check(news: unknown): CheckOutcome<I> | Promise<CheckOutcome<I>>;
  diff(id: string, olds: O, news: I, ctx: OperationContext): Promise<DiffOutcome>;
  create(inputs: I, ctx: OperationContext): Promise<{ id: string; outs: O }>;
  /** undefined means the resource is gone */
  read(id: string, olds: O, ctx: OperationContext): Promise<{ outs: O; inputs: I } | undefined>;
  update(id: string, olds: O, news: I, ctx: OperationContext): Promise<O>;
  delete(id: string, olds: O, ctx: OperationContext): Promise<void>;
}

/** A handler whose input and output types are erased, as the server stores them. */
export type AnyResourceHandler = ResourceHandler<any, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
