/**
 * The file-level change a build made, on one screen: what `pulumi up` prints after it builds an
 * image (through the provider's engine log), from the previous image to the new one.
 */
import * as fs from "node:fs";
import { diffImages, renderDiff, summarizeDiff } from "./image-diff";
import { readImageFile } from "./image-read";

/** Lines that fit a screen: the diff from `before` (when that image is still on this machine) to `after`. */
export async function imageChangeSummary(after: string, before: string | undefined, maxLines = 20): Promise<string> {
  const next = await readImageFile(after);
  if (before === undefined || !fs.existsSync(before)) {
    const files = [...next.entries.values()].filter((e) => e.type === "file").length;
    return `image holds ${next.entries.size} paths (${files} file${files === 1 ? "" : "s"}) from ${next.packages.version.size} packages in ${next.layers.length} archive${next.layers.length === 1 ? "" : "s"}; \`ramroot image ls\` lists them`;
  }
  const previous = await readImageFile(before);
  const diff = diffImages(previous, next);
  return [
    `files changed from the previous image: ${summarizeDiff(diff)}`,
    ...renderDiff(diff, previous, next, { maxLines }),
  ].join("\n");
}
