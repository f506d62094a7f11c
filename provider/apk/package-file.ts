import { createHash } from "node:crypto";
import type { PackageRecord } from "./package-record";
import { readSignaturePart } from "./index-archive";
import { bufferSource, type ByteSource } from "./byte-source";
import { EXPANSION_LIMITS, readGzipMember, streamGzipMember } from "./gzip-members";
import { checkSignatures, describeSignatureCheck } from "./signature";
import { readTar } from "./tar-reader";
import { parsePkginfo, pkginfoToRecord, type Pkginfo } from "./pkginfo";
import { InternalError, TrustError } from "../ramroot-error";

/** Script names apk-tools knows, as control entries `.<name>` and as scripts.tar suffixes. */
export const SCRIPT_NAMES = [
  "pre-install",
  "post-install",
  "pre-deinstall",
  "post-deinstall",
  "pre-upgrade",
  "post-upgrade",
  "trigger",
] as const;
export type ScriptName = (typeof SCRIPT_NAMES)[number];

/** A v2 `.apk` read and checked. */
export interface PackageFile {
  /** The index record this file makes (C:, S: and .PKGINFO fields). */
  record: PackageRecord;
  pkginfo: Pkginfo;
  /** "Q1" + base64(SHA-1 of the raw compressed control member): the index C: field. */
  checksum: string;
  /** hex SHA-256 of the raw compressed data member. */
  dataSha256: string;
  /** `.PKGINFO` datahash, when present (checked equal to dataSha256). */
  datahash?: string;
  /** Install scripts from the control member. */
  scripts: Map<ScriptName, Buffer>;
  /** Trigger paths (globs) from .PKGINFO `triggers`. */
  triggers: string[];
  /**
   * Streams the (verified) data member's tar, inflated within the expansion limits, to `sink` in
   * pieces (each awaited, and valid only until then: the memory is reused), re-hashing the raw
   * member on the way. It fails if the member no longer
   * hashes to `dataSha256` (the file changed since it was verified) or something follows it;
   * that is known only at the end, after the sink saw the content, so the caller throws away
   * what it made from it. Readable once; it lets go of the file when done.
   */
  streamDataTar(sink: (piece: Buffer) => void | Promise<void>): Promise<void>;
  /** Lets go of the file (an open descriptor) when the data is never streamed. */
  release(): void;
  /** How the file was trusted: matched a verified index's checksum, or a trusted signature. */
  trust: "index" | "signature" | "untrusted";
  /** Key file name whose signature verified, if one did. */
  signer?: string;
}

export interface ReadPackageOptions {
  /** Names the file in errors (a path or URL). */
  source: string;
  keys: Map<string, Buffer>;
  /**
   * The record of a verified index: the control checksum must equal its C: (apk's identity
   * check), and name/version must match. Without it a trusted signature is required.
   */
  expected?: PackageRecord;
  allowUntrusted?: boolean;
  /** Called once the data was streamed or the package let go of (closes the file behind it). */
  onDone?: () => void;
}

/** Q1 + base64(SHA-1), apk's text form of a SHA-1 checksum. */
export function q1Checksum(bytes: Buffer): string {
  return "Q1" + createHash("sha1").update(bytes).digest("base64");
}

/** How much of a file is read first to find the signature and control members; more only when they are larger. */
const FIRST_HEAD_READ = 256 << 10;
/** The signature and control members can take no more than this (their limits, plus deflate's worst case). */
const MAX_HEAD = EXPANSION_LIMITS.signatureMember + EXPANSION_LIMITS.controlMember + (1 << 20);
/** Raw bytes hashed at a time. */
const HASH_CHUNK = 1 << 20;

/** Reads a v2 `.apk` held in memory; see `readPackage`. */
export function readPackageFile(data: Buffer, opts: ReadPackageOptions): PackageFile {
  return readPackage(bufferSource(data), opts);
}

/** The signature and control members, found in the smallest head of the file that holds them. */
function readHead(src: ByteSource, source: string) {
  for (let length = Math.min(src.size, FIRST_HEAD_READ); ; length = Math.min(src.size, MAX_HEAD)) {
    const head = src.read(0, length);
    try {
      const signature = readSignaturePart(head, source);
      const control = readGzipMember(head, signature.bodyOffset, source, EXPANSION_LIMITS.controlMember);
      return { signature, control, dataOffset: signature.bodyOffset + control.raw.length };
    } catch (err) {
      if (length >= src.size || length >= MAX_HEAD) throw err; // the whole file (or all a head may take) was read
    }
  }
}

/**
 * Reads a v2 `.apk` (signature member, control member, data member; unsigned packages lack the
 * first) and checks it as apk-tools does before anything is unpacked:
 * - against an index record: C: must equal Q1(SHA-1 of the control member), P/V must match;
 * - otherwise: the first signature by a trusted key must verify (over the control member when
 *   .PKGINFO has datahash, over control + data when it has not), unless untrusted is allowed;
 * - .PKGINFO datahash must equal the SHA-256 of the data member. A package without datahash
 *   is only accepted with a verified signature over control + data (or untrusted allowed).
 * A bad signature by a trusted key is always refused.
 * Only the signature and control members are held (and inflated, within limits); the data
 * member is hashed compressed, a chunk at a time, and inflated only by `streamDataTar`.
 */
export function readPackage(src: ByteSource, opts: ReadPackageOptions): PackageFile {
  const { source } = opts;
  const { signature, control, dataOffset } = readHead(src, source);
  if (dataOffset >= src.size)
    throw new TrustError(
      `${source}: expected a control and a data gzip member after the signature, found 1 member(s); not a v2 .apk`,
      undefined,
      "repositories",
    );
  const controlEntries = readTar(control.content, `${source} (control member)`);
  const pkginfoEntry = controlEntries.find((e) => e.name === ".PKGINFO" && e.type === "file");
  if (!pkginfoEntry)
    throw new TrustError(
      `${source}: control member has no .PKGINFO (found: ${controlEntries.map((e) => e.name).join(", ") || "nothing"})`,
      undefined,
      "repositories",
    );
  const pkginfo = parsePkginfo(pkginfoEntry.content.toString("utf8"), source);
  const checksum = q1Checksum(control.raw);
  const record = pkginfoToRecord(pkginfo, { checksum, fileSize: src.size }, source);
  const hashData = createHash("sha256");
  const chunk = Buffer.allocUnsafe(Math.min(HASH_CHUNK, src.size - dataOffset));
  for (let pos = dataOffset; pos < src.size; pos += HASH_CHUNK)
    hashData.update(src.read(pos, Math.min(HASH_CHUNK, src.size - pos), chunk));
  const dataSha256 = hashData.digest("hex");
  const datahash = pkginfo.get("datahash")?.at(-1);

  if (datahash !== undefined && datahash.toLowerCase() !== dataSha256) {
    throw new TrustError(
      `${source}: data member SHA-256 is ${dataSha256} but .PKGINFO datahash says ${datahash}; the package is corrupt or was tampered with`,
      undefined,
      "repositories",
    );
  }
  // Without datahash the signature covers control + data: read whole (only such old packages are).
  const signedBytes =
    datahash !== undefined ? control.raw : src.read(signature.bodyOffset, src.size - signature.bodyOffset);
  const check = checkSignatures(signature.signatureEntries, signedBytes, opts.keys);
  if (check.signer && !check.valid) {
    throw new TrustError(
      `${source}: package signature does not verify (${describeSignatureCheck(check)}); the package is corrupt or was tampered with`,
      "fetch it again from the repository you trust; do not add keys to make it pass",
    );
  }

  let trust: PackageFile["trust"];
  if (opts.expected) {
    const want = opts.expected;
    if (want.checksum !== undefined && want.checksum !== checksum) {
      throw new TrustError(
        `${source}: control checksum is ${checksum} but the index says ${want.checksum} for ${want.name}-${want.version}; the download is corrupt or not the indexed package`,
        "fetch it again (the package cache keeps only what matched its index)",
      );
    }
    if (want.name !== record.name || want.version !== record.version) {
      throw new TrustError(
        `${source}: the file is ${record.name}-${record.version} but the index record is ${want.name}-${want.version}`,
        undefined,
        "repositories",
      );
    }
    if (want.checksum !== undefined && datahash !== undefined) trust = "index";
    else trust = check.valid ? "signature" : "untrusted";
  } else {
    trust = check.valid ? "signature" : "untrusted";
  }
  if (trust === "untrusted" && !opts.allowUntrusted) {
    const why =
      datahash === undefined
        ? "it has no datahash, so only a signature over control and data can vouch for its data"
        : "no index checksum to compare with";
    throw new TrustError(
      `${source}: not signed by a trusted key (${describeSignatureCheck(check)}) and ${why}`,
      "add the signer's public key to the keys directory or allow untrusted packages",
    );
  }

  const dataLimit = Math.min(
    EXPANSION_LIMITS.dataMax,
    Math.max(EXPANSION_LIMITS.dataFloor, (src.size - dataOffset) * EXPANSION_LIMITS.dataRatio),
  );
  let streamed = false;
  const streamDataTar = async (sink: (piece: Buffer) => void | Promise<void>): Promise<void> => {
    if (streamed) throw new InternalError(`${source}: the package's data was already read`);
    streamed = true;
    const again = createHash("sha256");
    try {
      const member = await streamGzipMember(src, dataOffset, {
        source,
        maxOutput: dataLimit,
        onRaw: (raw) => again.update(raw),
        sink,
      });
      const rehashed = again.digest("hex");
      if (rehashed !== dataSha256)
        throw new TrustError(
          `${source}: changed since it was verified (data member SHA-256 ${rehashed}, verified ${dataSha256}); refused`,
          undefined,
          "repositories",
        );
      if (member.trailing > 0)
        throw new TrustError(
          `${source}: expected a control and a data gzip member after the signature, found more after the data member (${member.trailing} bytes); not a v2 .apk`,
          undefined,
          "repositories",
        );
    } finally {
      opts.onDone?.();
    }
  };

  const scripts = new Map<ScriptName, Buffer>();
  for (const entry of controlEntries) {
    const name = entry.name.startsWith(".") ? entry.name.slice(1) : "";
    if (entry.type === "file" && (SCRIPT_NAMES as readonly string[]).includes(name))
      scripts.set(name as ScriptName, entry.content);
  }
  const triggers = (pkginfo.get("triggers") ?? []).flatMap((v) => v.split(/\s+/)).filter((t) => t !== "");
  return {
    record,
    pkginfo,
    checksum,
    dataSha256,
    datahash,
    scripts,
    triggers,
    streamDataTar,
    release: () => opts.onDone?.(),
    trust,
    signer: check.valid ? check.signer : undefined,
  };
}
