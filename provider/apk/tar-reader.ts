/**
 * A small synchronous tar reader for APK members, which are inflated in memory. Written by hand
 * because tar-stream only parses through an asynchronous stream, and APK needs what tar-stream
 * hides or drops: a member without end-of-archive blocks (signature and control members), the
 * PAX `APK-TOOLS.checksum.*` records, and a strict header checksum check to tell a corrupt
 * member from a truncated one. Handles ustar (with prefix), PAX `x`/`g` headers and GNU `L`/`K`
 * long names, like apk-tools' tar parser.
 */
export type TarReadType = "file" | "directory" | "symlink" | "hardlink" | "char" | "block" | "fifo";

export interface TarReadEntry {
  name: string;
  type: TarReadType;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  uname: string;
  gname: string;
  size: number;
  linkTarget?: string;
  /** Content of regular files (a view into the member). */
  content: Buffer;
  /** PAX records that applied to this entry. */
  pax: Record<string, string>;
  devmajor: number;
  devminor: number;
}

const BLOCK = 512;

function readString(block: Buffer, offset: number, length: number): string {
  const field = block.subarray(offset, offset + length);
  const end = field.indexOf(0);
  return field.subarray(0, end < 0 ? length : end).toString("utf8");
}

function readNumber(block: Buffer, offset: number, length: number, what: string, fail: (why: string) => never): number {
  const field = block.subarray(offset, offset + length);
  if (field[0]! & 0x80) {
    // GNU base-256: big-endian binary after the marker bit.
    let value = field[0]! & 0x7f;
    for (let i = 1; i < length; i++) value = value * 256 + field[i]!;
    return value;
  }
  const text = field.toString("latin1").replace(/\0.*$/s, "").trim();
  if (text === "") return 0;
  if (!/^[0-7]+$/.test(text)) fail(`${what} field is not octal (${JSON.stringify(text)})`);
  return parseInt(text, 8);
}

function parsePax(body: Buffer, fail: (why: string) => never): Record<string, string> {
  const records: Record<string, string> = {};
  let pos = 0;
  while (pos < body.length) {
    const space = body.indexOf(0x20, pos);
    if (space < 0) fail("malformed PAX record (no length)");
    const len = parseInt(body.subarray(pos, space).toString("latin1"), 10);
    if (!Number.isInteger(len) || len <= 0 || pos + len > body.length) fail("malformed PAX record length");
    const record = body.subarray(space + 1, pos + len - 1).toString("utf8");
    const eq = record.indexOf("=");
    if (eq < 0) fail("malformed PAX record (no '=')");
    records[record.slice(0, eq)] = record.slice(eq + 1);
    pos += len;
  }
  return records;
}

/** Reads every entry of a tar held in memory; `source` names it in errors. */
export function readTar(data: Buffer, source: string): TarReadEntry[] {
  const entries: TarReadEntry[] = [];
  let pos = 0;
  let pax: Record<string, string> = {};
  let globalPax: Record<string, string> = {};
  let longName: string | undefined;
  let longLink: string | undefined;
  while (pos < data.length) {
    const fail = (why: string): never => {
      throw new Error(`${source}: tar header at byte ${pos}: ${why}`);
    };
    if (pos + BLOCK > data.length) fail(`truncated (${data.length - pos} bytes left, a header needs 512)`);
    const block = data.subarray(pos, pos + BLOCK);
    if (block.every((b) => b === 0)) break; // end-of-archive
    const stored = readNumber(block, 148, 8, "checksum", fail);
    let sum = 0;
    for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : block[i]!;
    if (sum !== stored) fail(`header checksum ${stored} does not match the computed ${sum} (corrupt)`);
    const size = readNumber(block, 124, 12, "size", fail);
    const typeflag = String.fromCharCode(block[156]!);
    const bodyStart = pos + BLOCK;
    const bodyEnd = bodyStart + size;
    if (bodyEnd > data.length) fail(`truncated: entry needs ${size} bytes, ${data.length - bodyStart} left`);
    const body = data.subarray(bodyStart, bodyEnd);
    pos = bodyStart + Math.ceil(size / BLOCK) * BLOCK;
    if (typeflag === "x") {
      pax = { ...pax, ...parsePax(body, fail) };
      continue;
    }
    if (typeflag === "g") {
      globalPax = { ...globalPax, ...parsePax(body, fail) };
      continue;
    }
    if (typeflag === "L") {
      longName = body.toString("utf8").replace(/\0+$/, "");
      continue;
    }
    if (typeflag === "K") {
      longLink = body.toString("utf8").replace(/\0+$/, "");
      continue;
    }
    const records = { ...globalPax, ...pax };
    const magic = block.subarray(257, 263).toString("latin1");
    const prefix = magic.startsWith("ustar") ? readString(block, 345, 155) : "";
    let name = readString(block, 0, 100);
    if (prefix) name = `${prefix}/${name}`;
    name = records.path ?? longName ?? name;
    const rawLink = readString(block, 157, 100);
    const linkTarget = records.linkpath ?? longLink ?? rawLink;
    let type: TarReadType;
    switch (typeflag) {
      case "0":
      case "\0":
      case "7":
        type = name.endsWith("/") && typeflag === "\0" ? "directory" : "file";
        break;
      case "1":
        type = "hardlink";
        break;
      case "2":
        type = "symlink";
        break;
      case "3":
        type = "char";
        break;
      case "4":
        type = "block";
        break;
      case "5":
        type = "directory";
        break;
      case "6":
        type = "fifo";
        break;
      default:
        return fail(`unsupported entry type ${JSON.stringify(typeflag)} for ${JSON.stringify(name)}`);
    }
    entries.push({
      name,
      type,
      mode: readNumber(block, 100, 8, "mode", fail) & 0o7777,
      uid: records.uid !== undefined ? Number(records.uid) : readNumber(block, 108, 8, "uid", fail),
      gid: records.gid !== undefined ? Number(records.gid) : readNumber(block, 116, 8, "gid", fail),
      mtime: readNumber(block, 136, 12, "mtime", fail),
      uname: readString(block, 265, 32),
      gname: readString(block, 297, 32),
      size: type === "file" ? size : 0,
      linkTarget: type === "symlink" || type === "hardlink" ? linkTarget : undefined,
      content: type === "file" ? body : Buffer.alloc(0),
      pax: records,
      devmajor: readNumber(block, 329, 8, "devmajor", fail),
      devminor: readNumber(block, 337, 8, "devminor", fail),
    });
    pax = {};
    longName = undefined;
    longLink = undefined;
  }
  return entries;
}
