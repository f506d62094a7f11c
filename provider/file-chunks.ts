import * as fs from "node:fs";

const CHUNK = 1 << 20;

/**
 * Reads `file` from start to end in 1 MiB chunks through one buffer, handing each to `use`, which
 * must be done with it when it returns or its promise settles (the next read overwrites it);
 * resolves to the bytes read. A read stream allocates a fresh buffer for every chunk: on a 100 MiB file in a new
 * process (every CLI run) that cost 4-5x the hashing of its bytes (page faults on each new
 * buffer, garbage collection).
 */
export async function readChunks(file: string, use: (chunk: Buffer) => void | Promise<void>): Promise<number> {
  const buf = Buffer.allocUnsafe(CHUNK);
  const handle = await fs.promises.open(file, "r");
  let total = 0;
  try {
    for (let n; (n = (await handle.read(buf, 0, CHUNK, null)).bytesRead) > 0; total += n) await use(buf.subarray(0, n));
  } finally {
    await handle.close();
  }
  return total;
}
