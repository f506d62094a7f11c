import { createHash } from "node:crypto";
import { readChunks } from "./file-chunks";

/** sha256 (hex) of bytes. */
export function sha256Hex(data: Buffer | string): string {
  return createHash("sha256").update(data).digest("hex");
}

/** sha256 (hex) of a local file, read in chunks; undefined when it does not exist. */
export async function sha256File(file: string): Promise<string | undefined> {
  const hash = createHash("sha256");
  try {
    await readChunks(file, (chunk) => {
      hash.update(chunk);
    });
  } catch (err) {
    if (isMissing(err)) return undefined;
    throw err;
  }
  return hash.digest("hex");
}

/** True for the errors that mean "no such file" (ENOENT, or a path component that is a file). */
export function isMissing(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === "ENOENT" || code === "ENOTDIR";
}
