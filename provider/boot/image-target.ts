import * as fs from "node:fs";
import * as path from "node:path";
import { execFile } from "node:child_process";
import { shortTempNameFor, tempNameFor } from "../atomic-file";
import { openScratchDir } from "../scratch-dir";
import { sha256File, sha256Hex } from "../file-hash";
import { overwriteFatFile } from "./fat-overwrite";
import { type BootTarget, tooLarge } from "./boot-target";
import { blockDeviceAt, describeBlockDevice, devicesOfFat, whyInUse, type BlockDevice } from "./block-device";
import { fatVolumeIdOf, type PartitionVolume } from "./fat-volume-id";
import { fatOffsetOf } from "./mbr";
import { FatDamagedError, hashFatFile, listFatDirectory, readFatFile, readFatVolume, type FatVolume } from "./fat";
import { isMtoolsNotFound, mtools } from "./mtools";
import { ImageLock } from "./image-lock";
import type { TargetSpec } from "./target-spec";
import { targetRelPath } from "./target-path";
import { InternalError, TargetError } from "../ramroot-error";

type ImageSpec = Extract<TargetSpec, { kind: "image" }>;

const SCRATCH_PREFIX = "ramroot-image-";

/** What a read straight from the FAT gives when the reader failed (not when it found nothing): mtools reads then. */
const UNREAD = Symbol("unread");

/** A block device is written only while nothing else uses the FAT's bytes (`claim`: the FAT's own device node). */
function refuseInUse(device: BlockDevice, names: string[], claim?: string): void {
  const use = whyInUse(names, claim);
  if (use.length > 0)
    throw new TargetError(
      `boot target path: ${describeBlockDevice(device)} is in use (${use.join("; ")}); expected a device nothing has mounted: ` +
        "unmount it, or name the directory it is mounted on as a {kind: local} target",
    );
}

/**
 * A FAT disk image file, superfloppy or MBR-partitioned, or the same on a block device (a whole
 * disk such as /dev/sdb, or a partition such as /dev/sdb1), written with mtools and read straight
 * from its FAT (fat.ts): no mount, no loop device, no root needed for a file. A block device is
 * refused while anything uses the FAT's bytes (a mount, swap, a device-mapper/md holder) or when
 * it is the disk of this system's `/` or `/boot`. Every mtools command and every read runs under
 * an exclusive lock of the image file (mtools itself does not lock image files), so two
 * processes never interleave FAT updates and a read never sees half of one. A replace copies
 * to a temporary name, reads it back and compares the sha256, then renames it over the old
 * file (`mren -o`). The local scratch directory is removed on close and on every exit path of
 * the process; those of killed processes are swept at open.
 */
export class ImageTarget implements BootTarget {
  private constructor(
    readonly spec: ImageSpec,
    /** absolute path of the image file */
    readonly image: string,
    /** byte offset of the FAT filesystem in the image */
    readonly offset: number,
    /** a block device, not a file: its node's times say nothing about writes */
    private readonly isDevice: boolean,
    private readonly scratch: string,
    private readonly dropScratch: () => void,
  ) {
    this.lock = new ImageLock(image);
  }

  /** The image's lock, held for each read straight from the FAT. */
  private readonly lock: ImageLock;

  static async open(spec: ImageSpec): Promise<ImageTarget> {
    const image = path.resolve(spec.path);
    const device = blockDeviceAt(image);
    // A device in use is refused before its bytes are looked at (the disk holding / has no FAT to find).
    if (device) {
      refuseInUse(device, [device.name]);
      // The kernel caches each device node's blocks on its own: what was read through this node
      // earlier (a blkid probe of /dev/sdb1) may be older than what was written through another
      // (/dev/sdb). Drop this node's clean cache so the FAT is read as it is now.
      await new Promise<void>((resolve) => execFile("blockdev", ["--flushbufs", image], () => resolve()));
    }
    let fh: fs.promises.FileHandle;
    try {
      fh = await fs.promises.open(image, "r");
    } catch (err) {
      const missing = (err as NodeJS.ErrnoException).code === "ENOENT";
      throw new TargetError(
        `boot target path: "${spec.path}" cannot be opened (${(err as Error).message}); expected a FAT disk image file or block device` +
          (missing ? `; make one with \`npx ramroot disk create --size 64 ${spec.path}\`` : ""),
      );
    }
    let offset: number;
    try {
      const sector0 = Buffer.alloc(512);
      await fh.read(sector0, 0, 512, 0);
      offset = fatOffsetOf(sector0, spec.partition, `${device ? "block device" : "disk image"} ${spec.path}`);
      if (device) {
        const fat = devicesOfFat(device, offset);
        refuseInUse(device, fat, `/dev/${fat[fat.length - 1]}`);
      }
      await readFatVolume(fh, offset);
    } finally {
      await fh.close();
    }
    const scratch = await openScratchDir(SCRATCH_PREFIX);
    return new ImageTarget(spec, image, offset, device !== undefined, scratch.dir, scratch.drop);
  }

  describe(): string {
    return `${this.isDevice ? "disk" : "image"} ${this.image}${this.offset === 0 ? "" : ` (FAT at byte ${this.offset})`}`;
  }

  /** The FAT's boot sector, where its serial and label are. */
  async bootVolume(): Promise<PartitionVolume | undefined> {
    const fh = await fs.promises.open(this.image, "r");
    try {
      const sector = Buffer.alloc(512);
      const { bytesRead } = await fh.read(sector, 0, 512, this.offset);
      const id = bytesRead === 512 ? fatVolumeIdOf(sector) : undefined;
      return id ? { ...id, dir: "" } : undefined;
    } finally {
      await fh.close();
    }
  }

  private rel(rel: string): string {
    const normal = targetRelPath(rel);
    if (/[*?[\]]/.test(normal))
      throw new InternalError(
        `path: got ${JSON.stringify(rel)}; mtools treats * ? [ ] as wildcards, expected a plain name`,
      );
    return normal;
  }

  private async run(command: Parameters<typeof mtools>[0], args: string[], what: string) {
    const result = await mtools(command, this.image, this.offset, args);
    if (result.exitCode !== 0) {
      throw new TargetError(
        `${this.describe()}: ${what} failed: ${result.stderr.trim() || `${command} exited ${result.exitCode}`}`,
      );
    }
    return result;
  }

  /** "file", "dir", or undefined when the path does not exist. */
  async kind(rel: string): Promise<"file" | "dir" | undefined> {
    const normal = this.rel(rel);
    if (normal === "") return "dir";
    const parent = path.posix.dirname(normal) === "." ? "" : path.posix.dirname(normal);
    const base = path.posix.basename(normal).toLowerCase();
    for (const line of await this.listRaw(parent)) {
      const isDir = line.endsWith("/");
      if (path.posix.basename(line.replace(/\/$/, "")).toLowerCase() === base) return isDir ? "dir" : "file";
    }
    return undefined;
  }

  private async listRaw(dir: string): Promise<string[]> {
    const direct = await this.readDirect((fh, vol) => listFatDirectory(fh, vol, dir));
    if (direct !== UNREAD && direct !== undefined)
      return direct.map((e) => `::/${dir === "" ? "" : `${dir}/`}${e.name}${e.isDir ? "/" : ""}`);
    const result = await mtools("mdir", this.image, this.offset, ["-a", "-b", `::/${dir}`]);
    if (result.exitCode !== 0 && !isMtoolsNotFound(result.stderr))
      throw new TargetError(`${this.describe()}: listing ${dir || "/"} failed: ${result.stderr.trim()}`);
    return result.exitCode !== 0
      ? []
      : result.stdout
          .toString("utf8")
          .split("\n")
          .map((l) => l.trim())
          .filter((l) => l.startsWith("::/"));
  }

  async readFile(rel: string, opts: { maxBytes?: number } = {}): Promise<Buffer | undefined> {
    const normal = this.rel(rel);
    if (normal === "") return undefined;
    const direct = await this.readDirect((fh, vol) => readFatFile(fh, vol, normal, opts.maxBytes));
    if (direct === undefined) return undefined;
    const data =
      direct !== UNREAD
        ? direct
        : (await this.kind(normal)) !== "file"
          ? undefined
          : Buffer.from((await this.run("mcopy", ["-n", `::/${normal}`, "-"], `reading ${normal}`)).stdout);
    if (data === undefined) return undefined;
    if (opts.maxBytes !== undefined && data.length > opts.maxBytes)
      throw tooLarge(this.describe(), normal, opts.maxBytes);
    return data;
  }

  /**
   * What `read` finds straight in the image (fat.ts), read under the image's lock (image-lock.ts):
   * every mtools command here holds the same lock and its writes are in the file when it exits,
   * so these are the bytes mtools would read, without starting mtools for each (a deploy reads
   * ~40 times; an mdir costs ~15-30 ms, a turn of the lock ~7 ms). Damage is reported as it is;
   * UNREAD when the reader fails otherwise: mtools reads it then.
   */
  private async readDirect<T>(
    read: (fh: fs.promises.FileHandle, vol: FatVolume) => Promise<T>,
  ): Promise<T | typeof UNREAD> {
    return this.lock.hold(async () => {
      const fh = await fs.promises.open(this.image, "r");
      try {
        return await read(fh, await readFatVolume(fh, this.offset));
      } catch (err) {
        if (err instanceof FatDamagedError) throw new TargetError(`${this.describe()}: ${err.message}`);
        return UNREAD;
      } finally {
        await fh.close();
      }
    });
  }

  async sha256(rel: string): Promise<string | undefined> {
    const normal = this.rel(rel);
    const direct = normal === "" ? undefined : await this.readDirect((fh, vol) => hashFatFile(fh, vol, normal));
    if (direct !== UNREAD) return direct;
    const data = await this.readFile(normal);
    return data === undefined ? undefined : sha256Hex(data);
  }

  async list(relDir: string): Promise<string[]> {
    const normal = this.rel(relDir);
    if ((await this.kind(normal)) !== "dir") return [];
    return (await this.listRaw(normal)).map((l) => path.posix.basename(l.replace(/\/$/, ""))).sort();
  }

  async writeFileAtomic(rel: string, data: Buffer | string): Promise<void> {
    const local = path.join(this.scratch, `data-${Math.random().toString(36).slice(2)}`);
    await fs.promises.writeFile(local, data);
    try {
      await this.copyInAtomic(rel, local);
    } finally {
      await fs.promises.rm(local, { force: true });
    }
  }

  async copyInAtomic(
    rel: string,
    localFile: string,
    onProgress?: (done: number, total: number) => void,
  ): Promise<string> {
    const normal = this.rel(rel);
    if (normal === "") throw new InternalError("path: got the target root; expected a file path");
    const total = (await fs.promises.stat(localFile)).size;
    const expected = await sha256File(localFile);
    onProgress?.(0, total);
    await this.makeParents(normal);
    // A lower-case 8.3 name (a layer's) is staged under an 8.3 name too, so mren keeps its case.
    const temp = /^[a-z0-9_-]{1,8}(\.[a-z0-9_-]{1,3})?$/.test(path.posix.basename(normal))
      ? shortTempNameFor(normal)
      : tempNameFor(normal);
    try {
      // mtools writes through to the image file; an fsync of the image follows the copy.
      await this.run("mcopy", ["-o", localFile, `::/${temp}`], `copying ${localFile} to ${temp}`);
      const readBack = await this.sha256(temp);
      if (readBack !== expected) {
        throw new TargetError(
          `${this.describe()}: ${temp} read back as sha256 ${readBack ?? "(missing)"} but ${expected} was copied; the old ${normal} is kept`,
        );
      }
      await this.syncImage();
      if ((await this.kind(normal)) === "dir")
        throw new TargetError(`${this.describe()}: ${normal} is a directory; expected a file path`);
      await this.run("mren", ["-o", `::/${temp}`, `::/${normal}`], `renaming ${temp} over ${normal}`);
      await this.syncImage();
    } catch (err) {
      await mtools("mdel", this.image, this.offset, [`::/${temp}`]);
      throw err;
    }
    onProgress?.(total, total);
    return expected as string;
  }

  private async makeParents(normal: string): Promise<void> {
    const parts = normal.split("/").slice(0, -1);
    for (let i = 1; i <= parts.length; i++) {
      const dir = parts.slice(0, i).join("/");
      const kind = await this.kind(dir);
      if (kind === "file") throw new TargetError(`${this.describe()}: ${dir} is a file; expected a directory`);
      if (kind === undefined) await this.run("mmd", [`::/${dir}`], `creating ${dir}`);
    }
  }

  private async syncImage(): Promise<void> {
    const fh = await fs.promises.open(this.image, "r+");
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  }

  async rename(fromRel: string, toRel: string): Promise<void> {
    const from = this.rel(fromRel);
    const to = this.rel(toRel);
    if (path.posix.dirname(from) !== path.posix.dirname(to))
      throw new InternalError(`rename: ${fromRel} and ${toRel} are in different directories; expected one directory`);
    const kind = await this.kind(from);
    if (kind === undefined) throw new TargetError(`${this.describe()}: rename: ${from} does not exist`);
    if ((await this.kind(to)) === "dir") throw new TargetError(`${this.describe()}: rename: ${to} is a directory`);
    await this.run(
      "mren",
      [...(kind === "file" ? ["-o"] : []), `::/${from}`, `::/${to}`],
      `renaming ${from} over ${to}`,
    );
    await this.syncImage();
  }

  async remove(rel: string): Promise<void> {
    const normal = this.rel(rel);
    if (normal === "") throw new InternalError(`remove: refusing to remove the root of ${this.describe()}`);
    const kind = await this.kind(normal);
    if (kind === "dir") await this.run("mdeltree", [`::/${normal}`], `removing ${normal}`);
    if (kind === "file") await this.run("mdel", [`::/${normal}`], `removing ${normal}`);
    if (kind !== undefined) await this.syncImage();
  }

  async makeDirectoryExclusive(rel: string): Promise<boolean> {
    const normal = this.rel(rel);
    if (normal === "") return false;
    // mmd fails on an existing name; under the image lock the look and the create are one step.
    const made = await mtools("mmd", this.image, this.offset, [`::/${normal}`]);
    if (made.exitCode === 0) {
      await this.syncImage();
      return true;
    }
    if ((await this.kind(normal)) !== undefined) return false;
    throw new TargetError(
      `${this.describe()}: creating ${normal} failed: ${made.stderr.trim() || `mmd exited ${made.exitCode}`}`,
    );
  }

  /** The file's clusters are found through the FAT and only the bytes asked for are rewritten, under the image lock. */
  async overwriteInPlace(rel: string, offset: number, data: Buffer): Promise<void> {
    await this.lock.hold(() => overwriteFatFile(this.image, this.offset, this.rel(rel), offset, data));
  }

  /** An image file is not running anywhere. */
  async runningCmdline(): Promise<string | undefined> {
    return undefined;
  }

  async close(): Promise<void> {
    this.lock.close();
    this.dropScratch();
  }
}
