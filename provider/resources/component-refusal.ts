/**
 * How a component built on the provider's side (Construct) refuses its inputs: not by failing
 * Construct, but as the failed `check` of a child that carries the refusal, under the
 * component's own type and name ("ramroot:index:AbSystem resource 'machine' has a problem: ...").
 *
 * A failed Construct reaches the program as "resource monitor shut down" while the engine is
 * already stopping: the program's harness then logs it as an unhandled exception with a stack
 * trace, or fails to ("failed to deliver log message"), racing the engine's shutdown (issue #22
 * saw it in 3 of 4 previews). A failed check is the way the engine stops a preview for any
 * resource's bad input: it stops first, and everything waiting on it is told the monitor is
 * terminating, which the program and this plugin take quietly.
 */
import * as pulumi from "../../components/pulumi-sdk";
import type { ResourceHandler } from "./resource-handler";
import { InternalError } from "../ramroot-error";

interface RefusalInputs {
  refusal: string;
}

/** The check that always fails with the carried reason; nothing else is ever asked of it. */
export function refusalHandler(token: string): ResourceHandler<RefusalInputs, RefusalInputs> {
  const never = (): never => {
    throw new InternalError(`${token}: a refusal is never created, read, updated or deleted`);
  };
  return {
    token,
    check(news) {
      const reason = (news as Partial<RefusalInputs> | undefined)?.refusal;
      return { ok: false, failures: [{ property: "", reason: reason ?? "refused" }] };
    },
    diff: never,
    create: never,
    read: never,
    update: never,
    delete: never,
  };
}

class Refusal extends pulumi.CustomResource {
  constructor(token: string, name: string, refusal: string, opts: pulumi.CustomResourceOptions) {
    super(token, name, { refusal }, opts);
  }
}

/** Declares the component with only the refusal under it; the engine stops at the refusal's check. */
export function refuse(
  token: string,
  name: string,
  err: unknown,
  options: pulumi.ComponentResourceOptions,
): { urn: pulumi.Output<string>; state: Record<string, unknown> } {
  const component = new pulumi.ComponentResource(token, name, {}, options);
  new Refusal(token, name, err instanceof Error ? err.message : String(err), { parent: component });
  return { urn: component.urn, state: {} };
}
