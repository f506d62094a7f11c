import * as fs from "node:fs";
import { findFatFile, imageOffsetOf, readFatVolume } from "./fat";
import { TargetError } from "../ramroot-error";

/**
 * Writes `data` at `offset` into the file `rel` of the FAT filesystem that starts `fatOffset`
 * bytes into `image`, in place: the file's clusters are found through the FAT and only those
 * bytes are rewritten, so whatever records where the file lies (syslinux's boot sector records
 * ldlinux.sys's sectors) stays true. Flushed and read back. The caller holds the image lock.
 */
export async function overwriteFatFile(
  image: string,
  fatOffset: number,
  rel: string,
  offset: number,
  data: Buffer,
): Promise<void> {
  const fh = await fs.promises.open(image, "r+");
  try {
    const vol = await readFatVolume(fh, fatOffset);
    const file = await findFatFile(fh, vol, rel);
    if (!file) throw new TargetError(`${image}: no ${rel} to write into in place`);
    if (file.size < offset + data.length)
      throw new TargetError(
        `${image}: ${rel} is ${file.size} bytes, shorter than the ${offset + data.length} an in-place write needs`,
      );
    // Byte by byte would be slow; a run stops where a cluster ends, since the next cluster may lie anywhere.
    const runs: { at: number; from: number; length: number }[] = [];
    for (let done = 0; done < data.length;) {
      const fileAt = offset + done;
      const length = Math.min(data.length - done, vol.clusterBytes - (fileAt % vol.clusterBytes));
      runs.push({ at: imageOffsetOf(vol, file.clusters, fileAt), from: done, length });
      done += length;
    }
    for (const run of runs) await fh.write(data, run.from, run.length, run.at);
    await fh.sync();
    const back = Buffer.alloc(data.length);
    for (const run of runs) await fh.read(back, run.from, run.length, run.at);
    if (!back.equals(data)) throw new TargetError(`${image}: ${rel} reads back differently after an in-place write`);
  } finally {
    await fh.close();
  }
}
