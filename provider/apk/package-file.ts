import { createHash } from "node:crypto";
import type { PackageRecord } from "./package-record";
import { readSignaturePart } from "./index-archive";
import { EXPANSION_LIMITS, readGzipMember } from "./gzip-members";
import { checkSignatures, describeSignatureCheck } from "./signature";
import { readTar } from "./tar-reader";
import { parsePkginfo, pkginfoToRecord, type Pkginfo } from "./pkginfo";

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
   * Inflates the (verified) data member within the expansion limits: one package's data tar in
   * memory at a time, when it is unpacked. With `bytes` (the same .apk read again, e.g. from
   * the cache), their data member must hash to `dataSha256` first.
   */
  readDataTar(bytes?: Buffer): Buffer;
  /** Lets go of what `readDataTar` would have read (an open cache file) when it is never called. */
  release?: () => void;
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
  /** Keep the file's bytes for readDataTar() (default true); false when the caller can read them again. */
  retainData?: boolean;
}

/** Q1 + base64(SHA-1), apk's text form of a SHA-1 checksum. */
export function q1Checksum(bytes: Buffer): string {
  return "Q1" + createHash("sha1").update(bytes).digest("base64");
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
 */
export function readPackageFile(data: Buffer, opts: ReadPackageOptions): PackageFile {
  const { source } = opts;
  // Only what must be inflated to find the members' ends is, within limits; the data member is
  // hashed compressed and inflated only once the package is verified.
  const signature = readSignaturePart(data, source);
  const control = readGzipMember(data, signature.bodyOffset, source, EXPANSION_LIMITS.controlMember);
  const dataOffset = signature.bodyOffset + control.raw.length;
  if (dataOffset >= data.length)
    throw new Error(
      `${source}: expected a control and a data gzip member after the signature, found 1 member(s); not a v2 .apk`,
    );
  const dataRaw = data.subarray(dataOffset);
  const controlEntries = readTar(control.content, `${source} (control member)`);
  const pkginfoEntry = controlEntries.find((e) => e.name === ".PKGINFO" && e.type === "file");
  if (!pkginfoEntry)
    throw new Error(
      `${source}: control member has no .PKGINFO (found: ${controlEntries.map((e) => e.name).join(", ") || "nothing"})`,
    );
  const pkginfo = parsePkginfo(pkginfoEntry.content.toString("utf8"), source);
  const checksum = q1Checksum(control.raw);
  const record = pkginfoToRecord(pkginfo, { checksum, fileSize: data.length }, source);
  const dataSha256 = createHash("sha256").update(dataRaw).digest("hex");
  const datahash = pkginfo.get("datahash")?.at(-1);

  if (datahash !== undefined && datahash.toLowerCase() !== dataSha256) {
    throw new Error(
      `${source}: data member SHA-256 is ${dataSha256} but .PKGINFO datahash says ${datahash}; the package is corrupt or was tampered with`,
    );
  }
  const signedBytes = datahash !== undefined ? control.raw : data.subarray(signature.bodyOffset);
  const check = checkSignatures(signature.signatureEntries, signedBytes, opts.keys);
  if (check.signer && !check.valid) {
    throw new Error(
      `${source}: package signature does not verify (${describeSignatureCheck(check)}); the package is corrupt or was tampered with`,
    );
  }

  let trust: PackageFile["trust"];
  if (opts.expected) {
    const want = opts.expected;
    if (want.checksum !== undefined && want.checksum !== checksum) {
      throw new Error(
        `${source}: control checksum is ${checksum} but the index says ${want.checksum} for ${want.name}-${want.version}; the download is corrupt or not the indexed package`,
      );
    }
    if (want.name !== record.name || want.version !== record.version) {
      throw new Error(
        `${source}: the file is ${record.name}-${record.version} but the index record is ${want.name}-${want.version}`,
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
    throw new Error(
      `${source}: not signed by a trusted key (${describeSignatureCheck(check)}) and ${why}; add the signer's public key to the keys directory or allow untrusted packages`,
    );
  }

  const dataLimit = Math.min(
    EXPANSION_LIMITS.dataMax,
    Math.max(EXPANSION_LIMITS.dataFloor, dataRaw.length * EXPANSION_LIMITS.dataRatio),
  );
  // Only the small head (signature and control members) is kept to compare a re-read with; the
  // whole file only when the caller cannot read it again.
  const head = Buffer.from(data.subarray(0, dataOffset));
  const held = opts.retainData === false ? undefined : data;
  const readDataTar = (given?: Buffer): Buffer => {
    const bytes = given ?? held;
    if (!bytes) throw new Error(`${source}: the package bytes were not kept; read the file again and pass them`);
    if (bytes !== held) {
      const again = createHash("sha256").update(bytes.subarray(dataOffset)).digest("hex");
      if (again !== dataSha256 || !bytes.subarray(0, dataOffset).equals(head)) {
        throw new Error(
          `${source}: changed since it was verified (data member SHA-256 ${again}, verified ${dataSha256}); refused`,
        );
      }
    }
    const dataMember = readGzipMember(bytes, dataOffset, source, dataLimit);
    if (dataOffset + dataMember.raw.length !== bytes.length) {
      throw new Error(
        `${source}: expected a control and a data gzip member after the signature, found more after the data member (${bytes.length - dataOffset - dataMember.raw.length} bytes); not a v2 .apk`,
      );
    }
    return dataMember.content;
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
    readDataTar,
    trust,
    signer: check.valid ? check.signer : undefined,
  };
}
