import { TrustError } from "../ramroot-error";
/**
 * A tar reader for APK members, written by hand because tar-stream hides or drops what APK needs:
 * a member without end-of-archive blocks (signature and control members), the PAX
 * `APK-TOOLS.checksum.*` records, and a strict header checksum check to tell a corrupt member
 * from a truncated one. Handles ustar (with prefix), PAX `x`/`g` headers and GNU `L`/`K` long
 * names, like apk-tools' tar parser.
 *
 * `TarStreamParser` takes the archive in pieces of any size (a data member as it is inflated)
 * and hands each entry's header, then its content in pieces, to a sink: nothing but the current
 * header and the small PAX / long-name records is held. `readTar` is the same parser over a
 * member held whole in memory (control members, scripts.tar).
 */
export type TarReadType = "file" | "directory" | "symlink" | "hardlink" | "char" | "block" | "fifo";

/** An entry's header, as the sink is told it before its content. */
export interface TarHeader {
  name: string;
  type: TarReadType;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  uname: string;
  gname: string;
  /** Content size of regular files (0 for every other type). */
  size: number;
  linkTarget?: string;
  /** PAX records that applied to this entry. */
  pax: Record<string, string>;
  devmajor: number;
  devminor: number;
}

export interface TarReadEntry extends TarHeader {
  /** Content of regular files (a view into the member). */
  content: Buffer;
}

/** Where the parser sends what it reads; `content` is called zero or more times between the two. */
export interface TarSink {
  entry(header: TarHeader): void;
  /** A piece of the current entry's content (a view into the chunk given to `push`, valid as long as that chunk is). */
  content(piece: Buffer): void;
  entryEnd(): void;
}

const BLOCK = 512;
/** PAX and GNU long-name records are read whole: never more than this. */
const MAX_META_RECORD = 1 << 20;
/** PAX keys an entry may carry (its own and the global ones): real archives use a handful. */
const MAX_PAX_KEYS = 256;

// Header fields are read straight from the block's bytes: a data member has an entry per file
// (~5,000 for a kernel's modules), and slicing and converting each field to a string first made
// ~20 MiB of garbage per install (bench/analysis.md, "Install memory").

function readString(block: Buffer, offset: number, length: number): string {
  if (block[offset] === 0) return "";
  let end = offset;
  while (end < offset + length && block[end] !== 0) end++;
  return block.toString("utf8", offset, end);
}

/** Whitespace `String.prototype.trim` removes, among latin1 bytes. */
const isBlank = (c: number) => c === 0x20 || (c >= 0x09 && c <= 0x0d) || c === 0xa0;

function readNumber(block: Buffer, offset: number, length: number, what: string, fail: (why: string) => never): number {
  if (block[offset]! & 0x80) {
    // GNU base-256: big-endian binary after the marker bit.
    let value = block[offset]! & 0x7f;
    for (let i = 1; i < length; i++) value = value * 256 + block[offset + i]!;
    return value;
  }
  // Octal digits up to the first NUL, blanks around them allowed; an empty field is 0.
  let end = offset;
  while (end < offset + length && block[end] !== 0) end++;
  let start = offset;
  while (start < end && isBlank(block[start]!)) start++;
  while (end > start && isBlank(block[end - 1]!)) end--;
  let value = 0;
  for (let i = start; i < end; i++) {
    const digit = block[i]! - 0x30;
    if (digit < 0 || digit > 7)
      fail(`${what} field is not octal (${JSON.stringify(block.toString("latin1", start, end))})`);
    value = value * 8 + digit;
  }
  return value;
}

function parsePax(body: Buffer, fail: (why: string) => never): Record<string, string> {
  const records: Record<string, string> = Object.create(null) as Record<string, string>;
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
    if (Object.keys(records).length > MAX_PAX_KEYS) fail(`more than ${MAX_PAX_KEYS} PAX keys`);
    pos += len;
  }
  return records;
}

function entryType(typeflag: string, name: string, fail: (why: string) => never): TarReadType {
  switch (typeflag) {
    case "0":
    case "\0":
    case "7":
      return name.endsWith("/") && typeflag === "\0" ? "directory" : "file";
    case "1":
      return "hardlink";
    case "2":
      return "symlink";
    case "3":
      return "char";
    case "4":
      return "block";
    case "5":
      return "directory";
    case "6":
      return "fifo";
    default:
      return fail(`unsupported entry type ${JSON.stringify(typeflag)} for ${JSON.stringify(name)}`);
  }
}

/** The body being read: an entry's content (given to the sink or skipped) or a PAX / long-name record. */
interface Body {
  kind: "content" | "skip" | "meta";
  /** For a record: its type flag. */
  typeflag: string;
  headerAt: number;
  size: number;
  left: number;
  padding: number;
  closed: boolean;
  pieces: Buffer[];
}

/** An incremental tar parser: `push` pieces of the archive in order, then `end`. */
export class TarStreamParser {
  /** Offset in the archive of the next byte `push` gets. */
  private offset = 0;
  /** A header's bytes gathered across pieces. */
  private readonly header = Buffer.alloc(BLOCK);
  private headerFill = 0;
  private body: Body | undefined;
  private pax: Record<string, string> = {};
  private globalPax: Record<string, string> = {};
  private longName: string | undefined;
  private longLink: string | undefined;
  private done = false;

  constructor(
    private readonly source: string,
    private readonly sink: TarSink,
  ) {}

  push(chunk: Buffer): void {
    let at = 0;
    while (!this.done) {
      const body = this.body;
      if (body) {
        if (body.left > 0) {
          if (at >= chunk.length) return;
          const n = Math.min(body.left, chunk.length - at);
          const piece = chunk.subarray(at, at + n);
          if (body.kind === "content") this.sink.content(piece);
          // A record may span pieces, and a piece's memory may be reused once `push` returns.
          else if (body.kind === "meta") body.pieces.push(Buffer.from(piece));
          body.left -= n;
          at += n;
          this.offset += n;
          if (body.left > 0) return;
        }
        if (!body.closed) {
          body.closed = true;
          if (body.kind === "meta") this.meta(body);
          else this.sink.entryEnd();
        }
        if (body.padding > 0) {
          if (at >= chunk.length) return;
          const skip = Math.min(body.padding, chunk.length - at);
          body.padding -= skip;
          at += skip;
          this.offset += skip;
          if (body.padding > 0) return;
        }
        this.body = undefined;
        continue;
      }
      if (at >= chunk.length) return;
      const n = Math.min(BLOCK - this.headerFill, chunk.length - at);
      chunk.copy(this.header, this.headerFill, at, at + n);
      this.headerFill += n;
      at += n;
      this.offset += n;
      if (this.headerFill === BLOCK) {
        this.headerFill = 0;
        this.readHeader(this.offset - BLOCK);
      }
    }
  }

  /** The archive ended: a header or an entry cut short is an error (an archive may lack the end-of-archive blocks). */
  end(): void {
    if (this.done) return;
    if (this.headerFill > 0)
      throw new TrustError(
        `${this.source}: tar header at byte ${this.offset - this.headerFill}: truncated (${this.headerFill} bytes left, a header needs 512)`,
        undefined,
        "repositories",
      );
    const body = this.body;
    if (body && body.left > 0)
      throw new TrustError(
        `${this.source}: tar header at byte ${body.headerAt}: truncated: entry needs ${body.size} bytes, ${body.size - body.left} left`,
        undefined,
        "repositories",
      );
  }

  private readHeader(pos: number): void {
    const fail = (why: string): never => {
      throw new TrustError(`${this.source}: tar header at byte ${pos}: ${why}`, undefined, "repositories");
    };
    const block = this.header;
    if (block.every((b) => b === 0)) {
      this.done = true; // end-of-archive: what follows is not read
      return;
    }
    const stored = readNumber(block, 148, 8, "checksum", fail);
    let sum = 0;
    for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : block[i]!;
    if (sum !== stored) fail(`header checksum ${stored} does not match the computed ${sum} (corrupt)`);
    const size = readNumber(block, 124, 12, "size", fail);
    const padding = Math.ceil(size / BLOCK) * BLOCK - size;
    const typeflag = String.fromCharCode(block[156]!);
    const body = (kind: Body["kind"]): Body => ({
      kind,
      typeflag,
      headerAt: pos,
      size,
      left: size,
      padding,
      closed: false,
      pieces: [],
    });
    if (typeflag === "x" || typeflag === "g" || typeflag === "L" || typeflag === "K") {
      if (size > MAX_META_RECORD)
        fail(`a ${JSON.stringify(typeflag)} record of ${size} bytes; at most ${MAX_META_RECORD} are read`);
      this.body = body("meta");
      return;
    }
    const records = { ...this.globalPax, ...this.pax };
    const magic = block.toString("latin1", 257, 263);
    const prefix = magic.startsWith("ustar") ? readString(block, 345, 155) : "";
    let name = readString(block, 0, 100);
    if (prefix) name = `${prefix}/${name}`;
    name = records.path ?? this.longName ?? name;
    const rawLink = readString(block, 157, 100);
    const linkTarget = records.linkpath ?? this.longLink ?? rawLink;
    const type = entryType(typeflag, name, fail);
    const header: TarHeader = {
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
      pax: records,
      devmajor: readNumber(block, 329, 8, "devmajor", fail),
      devminor: readNumber(block, 337, 8, "devminor", fail),
    };
    this.pax = {};
    this.longName = undefined;
    this.longLink = undefined;
    this.sink.entry(header);
    // Only a regular file's body is content; any other entry's (tar gives them none) is skipped.
    this.body = body(type === "file" ? "content" : "skip");
  }

  /** Every later entry copies the PAX keys: their number stays small, however many records there are. */
  private checkPaxKeys(fail: (why: string) => never): void {
    if (Object.keys(this.pax).length + Object.keys(this.globalPax).length > MAX_PAX_KEYS)
      fail(`more than ${MAX_PAX_KEYS} PAX keys for one entry`);
  }

  private meta(body: Body): void {
    const pos = body.headerAt;
    const fail = (why: string): never => {
      throw new TrustError(`${this.source}: tar header at byte ${pos}: ${why}`, undefined, "repositories");
    };
    const data = Buffer.concat(body.pieces);
    body.pieces = [];
    switch (body.typeflag) {
      case "x":
        this.pax = { ...this.pax, ...parsePax(data, fail) };
        this.checkPaxKeys(fail);
        break;
      case "g":
        this.globalPax = { ...this.globalPax, ...parsePax(data, fail) };
        this.checkPaxKeys(fail);
        break;
      case "L":
        this.longName = data.toString("utf8").replace(/\0+$/, "");
        break;
      case "K":
        this.longLink = data.toString("utf8").replace(/\0+$/, "");
        break;
    }
  }
}

/** Reads every entry of a tar held in memory; `source` names it in errors. */
export function readTar(data: Buffer, source: string): TarReadEntry[] {
  const entries: TarReadEntry[] = [];
  let pieces: Buffer[] = [];
  let current: TarHeader | undefined;
  const parser = new TarStreamParser(source, {
    entry: (header) => {
      current = header;
      pieces = [];
    },
    content: (piece) => pieces.push(piece),
    entryEnd: () => {
      const content = pieces.length === 1 ? pieces[0]! : pieces.length === 0 ? Buffer.alloc(0) : Buffer.concat(pieces);
      entries.push({ ...current!, content });
    },
  });
  parser.push(data);
  parser.end();
  return entries;
}
