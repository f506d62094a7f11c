import { createHash } from "node:crypto";
import { RamrootError } from "../ramroot-error";

/**
 * A small synchronous ustar/pax writer. Written by hand because tar-stream only packs through
 * an asynchronous stream and does not export its header encoder, while APK members must be
 * built as exact bytes in memory: no end-of-archive blocks in signature and control members
 * (abuild-tar --cut), and a PAX `APK-TOOLS.checksum.SHA1` record plus abuild's legacy "APK2"
 * checksum in front of every hashed entry of the data member (abuild-tar --hash).
 */
export type TarEntryType = "file" | "directory" | "symlink" | "hardlink";

export interface TarEntry {
  /** Path inside the archive, without a leading "/" ("usr/bin/x", directories "etc/"). */
  name: string;
  type: TarEntryType;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  uname?: string;
  gname?: string;
  /** Content of regular files. */
  content?: Buffer;
  /** Target of symlinks and hard links. */
  linkTarget?: string;
  /** Extra PAX records (key -> value) written in an `x` header before the entry. */
  pax?: Record<string, string>;
}

const BLOCK = 512;
const TYPEFLAG: Record<TarEntryType, string> = { file: "0", hardlink: "1", symlink: "2", directory: "5" };

function putString(block: Buffer, offset: number, length: number, value: string): void {
  const bytes = Buffer.from(value, "utf8");
  // (a name, link or owner name too long for its header field: an owner's user or group name can be)
  if (bytes.length > length)
    throw new RamrootError("input", `tar field too long: ${value} (at most ${length} bytes)`, "use a shorter name");
  bytes.copy(block, offset);
}

function putOctal(block: Buffer, offset: number, length: number, value: number): void {
  if (!Number.isInteger(value) || value < 0 || value >= 8 ** (length - 1)) {
    throw new RamrootError(
      "input",
      `tar numeric field out of range: ${value} does not fit ${length - 1} octal digits`,
      "use a smaller id (a uid or gid below 2097152) or mtime",
    );
  }
  putString(block, offset, length, value.toString(8).padStart(length - 1, "0") + "\0");
}

function setChecksum(block: Buffer): void {
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of block) sum += byte;
  putString(block, 148, 8, sum.toString(8).padStart(6, "0") + "\0 ");
}

function header(fields: {
  name: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  typeflag: string;
  linkname?: string;
  uname?: string;
  gname?: string;
}): Buffer {
  const block = Buffer.alloc(BLOCK);
  putString(block, 0, 100, fields.name);
  putOctal(block, 100, 8, fields.mode & 0o7777);
  putOctal(block, 108, 8, fields.uid);
  putOctal(block, 116, 8, fields.gid);
  putOctal(block, 124, 12, fields.size);
  putOctal(block, 136, 12, fields.mtime);
  block.write(fields.typeflag, 156, "latin1");
  if (fields.linkname) putString(block, 157, 100, fields.linkname);
  putString(block, 257, 6, "ustar\0");
  putString(block, 263, 2, "00");
  putString(block, 265, 32, fields.uname ?? "root");
  putString(block, 297, 32, fields.gname ?? "root");
  putOctal(block, 329, 8, 0);
  putOctal(block, 337, 8, 0);
  setChecksum(block);
  return block;
}

/** One PAX record, "<len> key=value\n", where len counts the whole record including itself. */
function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  let len = Buffer.byteLength(body) + 1;
  while (String(len).length + Buffer.byteLength(body) !== len) len = String(len).length + Buffer.byteLength(body);
  return `${len}${body}`;
}

function pad(data: Buffer): Buffer[] {
  const rest = data.length % BLOCK;
  return rest === 0 ? [data] : [data, Buffer.alloc(BLOCK - rest)];
}

/** The blocks of one entry, with a PAX header first when it has records or a long name. */
export function tarEntryBlocks(entry: TarEntry): Buffer[] {
  const pax: Record<string, string> = { ...(entry.pax ?? {}) };
  let name = entry.name;
  let linkname = entry.linkTarget ?? "";
  if (Buffer.byteLength(name) > 100) {
    pax.path = name;
    name = Buffer.from(name)
      .subarray(0, 99)
      .toString("latin1")
      .replace(/[^\x20-\x7e]/g, "_");
  }
  if (Buffer.byteLength(linkname) > 100) {
    pax.linkpath = linkname;
    linkname = linkname.slice(0, 99);
  }
  const size = entry.type === "file" ? (entry.content?.length ?? 0) : 0;
  const blocks: Buffer[] = [];
  const keys = Object.keys(pax).sort();
  if (keys.length > 0) {
    const body = Buffer.from(keys.map((k) => paxRecord(k, pax[k]!)).join(""), "utf8");
    const base = entry.name.replace(/\/$/, "").split("/").pop() ?? "";
    blocks.push(
      header({
        name: `PaxHeaders/${base}`.slice(0, 99),
        mode: 0o644,
        uid: 0,
        gid: 0,
        size: body.length,
        mtime: entry.mtime,
        typeflag: "x",
      }),
      ...pad(body),
    );
  }
  const block = header({
    name,
    mode: entry.mode,
    uid: entry.uid,
    gid: entry.gid,
    size,
    mtime: entry.mtime,
    typeflag: TYPEFLAG[entry.type],
    linkname,
    uname: entry.uname,
    gname: entry.gname,
  });
  if (entry.type === "file" && entry.pax?.["APK-TOOLS.checksum.SHA1"]) {
    // abuild-tar also hides the digest in the linkname field of regular files: "APK2",
    // the OpenSSL NID of SHA-1 (64) and the digest length (20) as little-endian uint16s, then the digest.
    block.write("APK2", 157 + 3, "latin1");
    block.writeUInt16LE(64, 157 + 7);
    block.writeUInt16LE(20, 157 + 9);
    Buffer.from(entry.pax["APK-TOOLS.checksum.SHA1"], "hex").copy(block, 157 + 11);
    setChecksum(block);
  }
  blocks.push(block);
  if (size > 0) blocks.push(...pad(entry.content!));
  return blocks;
}

/**
 * A tar archive of the entries in the order given. `endOfArchive: false` leaves out the two
 * zero blocks, as abuild does for signature and control members so the members can be chained.
 */
export function writeTar(entries: TarEntry[], opts: { endOfArchive: boolean }): Buffer {
  const blocks = entries.flatMap(tarEntryBlocks);
  if (opts.endOfArchive) blocks.push(Buffer.alloc(BLOCK * 2));
  return Buffer.concat(blocks);
}

/** SHA-1 hex of what apk hashes for an entry: file content, or the link target of a symlink. */
export function apkEntrySha1(entry: Pick<TarEntry, "type" | "content" | "linkTarget">): string | undefined {
  if (entry.type === "file")
    return createHash("sha1")
      .update(entry.content ?? Buffer.alloc(0))
      .digest("hex");
  if (entry.type === "symlink")
    return createHash("sha1")
      .update(entry.linkTarget ?? "")
      .digest("hex");
  return undefined;
}
