/**
 * The target's part of a resource diff. Where the partition is (its identity,
 * `boot/target-identity.ts`) decides a replacement; how it is reached (ssh user, port, private
 * key, known hosts, ssh config, host key checking) is the connection: changing it is an in-place
 * update that touches nothing on the disk.
 */
import type { TargetSpec } from "../boot/target";
import { sameTarget } from "../boot/target-identity";
import { diffProperties } from "./property-diff";
import type { PropertyChange } from "./resource-handler";

/**
 * Every changed field by its path (`target.port`), and whether the change moves the resource to
 * another partition (a replacement) or only changes how the same partition is reached or spelled
 * (an in-place update that writes nothing).
 */
export function diffTarget(
  olds: TargetSpec | undefined,
  news: TargetSpec,
): { changes: Record<string, PropertyChange>; replace: boolean } {
  const changes = diffProperties(olds, news, "target");
  return { changes, replace: Object.keys(changes).length > 0 && !sameTarget(olds, news) };
}
