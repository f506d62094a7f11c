import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { execa } from "execa";
import { renameDurably, replaceFile, syncDirectory } from "../atomic-file";
import { isMissing, sha256File, sha256Hex } from "../file-hash";
import { type BootTarget, tooLarge } from "./boot-target";
import type { PartitionVolume } from "./fat-volume-id";
import { parseVolumeProbe, volumeProbeScript } from "./volume-probe";
import type { TargetSpec } from "./target-spec";
import { targetRelPath } from "./target-path";
import { InternalError, TargetError } from "../ramroot-error";

type LocalSpec = Extract<TargetSpec, { kind: "local" }>;

const CHUNK = 1 << 20;

/** A mounted boot partition (or any directory standing in for one). */
export class LocalTarget implements BootTarget {
  private constructor(
    readonly spec: LocalSpec,
    /** the absolute, resolved root directory */
    readonly root: string,
  ) {}

  static async open(spec: LocalSpec): Promise<LocalTarget> {
    const root = path.resolve(spec.path);
    let stat: fs.Stats;
    try {
      stat = await fs.promises.stat(root);
    } catch (err) {
      if (isMissing(err))
        throw new TargetError(
          `boot target path: "${spec.path}" does not exist; expected a mounted boot partition directory`,
        );
      throw err;
    }
    if (!stat.isDirectory())
      throw new TargetError(
        `boot target path: "${spec.path}" is not a directory; expected a mounted boot partition directory`,
      );
    return new LocalTarget(spec, root);
  }

  describe(): string {
    return `local ${this.root}`;
  }

  /** The absolute local path of a target-relative path. */
  private resolve(rel: string): string {
    return path.join(this.root, targetRelPath(rel));
  }

  async readFile(rel: string, opts: { maxBytes?: number } = {}): Promise<Buffer | undefined> {
    try {
      const handle = await fs.promises.open(this.resolve(rel), "r");
      try {
        const { size } = await handle.stat();
        if (opts.maxBytes !== undefined && size > opts.maxBytes) throw tooLarge(this.describe(), rel, opts.maxBytes);
        return await handle.readFile();
      } finally {
        await handle.close();
      }
    } catch (err) {
      if (isMissing(err) || (err as NodeJS.ErrnoException).code === "EISDIR") return undefined;
      throw err;
    }
  }

  async writeFileAtomic(rel: string, data: Buffer | string): Promise<void> {
    const bytes = typeof data === "string" ? Buffer.from(data, "utf8") : data;
    const expected = sha256Hex(bytes);
    await this.replaceAtomic(rel, async (handle) => {
      await handle.writeFile(bytes);
      return expected;
    });
  }

  async copyInAtomic(
    rel: string,
    localFile: string,
    onProgress?: (done: number, total: number) => void,
  ): Promise<string> {
    const source = await fs.promises.open(localFile, "r");
    try {
      const total = (await source.stat()).size;
      return await this.replaceAtomic(rel, async (handle) => {
        const hash = createHash("sha256");
        const buffer = Buffer.alloc(CHUNK);
        let done = 0;
        onProgress?.(0, total);
        for (;;) {
          const { bytesRead } = await source.read(buffer, 0, CHUNK, null);
          if (bytesRead === 0) break;
          const chunk = buffer.subarray(0, bytesRead);
          hash.update(chunk);
          await handle.write(chunk);
          done += bytesRead;
          onProgress?.(done, total);
        }
        return hash.digest("hex");
      });
    } finally {
      await source.close();
    }
  }

  async sha256(rel: string): Promise<string | undefined> {
    return sha256File(this.resolve(rel));
  }

  async list(relDir: string): Promise<string[]> {
    try {
      return (await fs.promises.readdir(this.resolve(relDir))).sort();
    } catch (err) {
      if (isMissing(err)) return [];
      throw err;
    }
  }

  async rename(fromRel: string, toRel: string): Promise<void> {
    const from = this.resolve(fromRel);
    const to = this.resolve(toRel);
    if (path.dirname(from) !== path.dirname(to))
      throw new InternalError(`rename: ${fromRel} and ${toRel} are in different directories; expected one directory`);
    await renameDurably(from, to);
  }

  async remove(rel: string): Promise<void> {
    const abs = this.resolve(rel);
    if (abs === this.root) throw new InternalError(`remove: refusing to remove the target root ${this.root}`);
    await fs.promises.rm(abs, { recursive: true, force: true });
  }

  async makeDirectoryExclusive(rel: string): Promise<boolean> {
    const abs = this.resolve(rel);
    try {
      await fs.promises.mkdir(abs);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "EEXIST") return false;
      throw err;
    }
    await syncDirectory(path.dirname(abs));
    return true;
  }

  async overwriteInPlace(rel: string, offset: number, data: Buffer): Promise<void> {
    const fh = await fs.promises.open(this.resolve(rel), "r+");
    try {
      if ((await fh.stat()).size < offset + data.length)
        throw new TargetError(
          `${this.describe()}: ${rel} is shorter than the ${offset + data.length} bytes an in-place write needs`,
        );
      await fh.write(data, 0, data.length, offset);
      await fh.sync();
      const back = Buffer.alloc(data.length);
      await fh.read(back, 0, data.length, offset);
      if (!back.equals(data))
        throw new TargetError(`${this.describe()}: ${rel} reads back differently after an in-place write`);
    } finally {
      await fh.close();
    }
  }

  /** The mount holding the directory and its device's first sector, by the script an ssh target runs on its machine. */
  async bootVolume(): Promise<PartitionVolume | undefined> {
    const result = await execa("sh", ["-c", volumeProbeScript(this.root)], {
      encoding: "buffer",
      reject: false,
      stdin: "ignore",
    });
    return parseVolumeProbe(result.exitCode ?? 1, Buffer.from(result.stdout));
  }

  /** A mounted directory says nothing about which machine boots from it. */
  async runningCmdline(): Promise<string | undefined> {
    return undefined;
  }

  async close(): Promise<void> {}

  /**
   * Writes through `fill` into a temporary file beside `rel` (atomic-file.ts), which reads it
   * back and compares the sha256 with what `fill` says it wrote before the rename. Any failure
   * (ENOSPC, I/O error, mismatch) removes the temporary file and leaves the old file as it was.
   */
  private async replaceAtomic(rel: string, fill: (handle: fs.promises.FileHandle) => Promise<string>): Promise<string> {
    const normal = targetRelPath(rel);
    if (normal === "") throw new InternalError("path: got the target root; expected a file path");
    return replaceFile(path.join(this.root, normal), (handle) => fill(handle), {
      verify: async (temp, expected) => {
        const readBack = await sha256File(temp);
        if (readBack !== expected) {
          throw new TargetError(
            `${this.describe()}: ${normal} read back as sha256 ${readBack ?? "(missing)"} but ${expected} was written; the old file is kept`,
          );
        }
      },
    });
  }
}
