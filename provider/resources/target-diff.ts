/**
 * The target's part of a resource diff. Which partition the target is (its identity,
 * `boot/target-identity.ts`: the FAT volume, else the place) decides a replacement; how it is
 * reached (ssh user, port, private key, known hosts, ssh config, host key checking), and even
 * the kind of transport (the disk image a stick was written from, then ssh to the machine that
 * booted the stick), is the connection: changing it is an in-place update that touches nothing
 * on the disk.
 */
import { z } from "zod";
import type { PartitionVolume } from "../boot/fat-volume-id";
import type { TargetSpec } from "../boot/target";
import { samePartition } from "../boot/target-identity";
import { diffProperties } from "./property-diff";
import type { PropertyChange } from "./resource-handler";

/** The partition's FAT volume as a resource's state keeps it (an output): what identifies it across transports. */
export const partitionVolumeSchema = z
  .object({
    serial: z.string().describe('the FAT volume serial, as blkid shows it ("5241-4D52")'),
    label: z.string().describe("the FAT volume label"),
    dir: z.string().describe('the target\'s directory inside the volume ("" = its root)'),
  })
  .nullable()
  .optional()
  .describe(
    "the FAT volume the target is on (serial and label from its boot sector): the partition's identity, whatever reaches it; null when it is on none (a plain directory)",
  );

/**
 * Every changed field by its path (`target.port`), and whether the change moves the resource to
 * another partition (a replacement) or only changes how the same partition is reached or spelled
 * (an in-place update that writes nothing). `oldVolume` is what the state recorded: null when the
 * target showed no volume, undefined when the state is older than volumes.
 */
export async function diffTarget(
  olds: TargetSpec | undefined,
  oldVolume: PartitionVolume | null | undefined,
  news: TargetSpec,
): Promise<{ changes: Record<string, PropertyChange>; replace: boolean }> {
  const changes = diffProperties(olds, news, "target");
  if (Object.keys(changes).length === 0) return { changes, replace: false };
  const same = olds !== undefined && (await samePartition({ target: olds, volume: oldVolume }, news));
  return { changes, replace: !same };
}
