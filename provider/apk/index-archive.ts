import { splitGzipMembers, gzipDeterministic, type GzipMember } from "./gzip-members";
import { checkSignatures, describeSignatureCheck, signatureMember, type Signer } from "./signature";
import { readTar, type TarReadEntry } from "./tar-reader";
import { writeTar } from "./tar-writer";

/** What an `APKINDEX.tar.gz` holds once read and checked. */
export interface IndexArchive {
  /** Key file name of the trusted key whose signature verified. */
  signer?: string;
  /** True when a trusted key's signature verified. */
  verified: boolean;
  apkindexText: string;
  description?: string;
}

/** The signature entries of a leading signature member, and the members it covers. */
export interface SignedMembers {
  signatureEntries: TarReadEntry[];
  /** Members after the signature member (all of them when there is none). */
  members: GzipMember[];
  /** The raw compressed bytes the signature covers. */
  signedBytes: Buffer;
}

/**
 * Splits an APK v2 file (index or package) into its optional leading signature member and the
 * rest. A first member is the signature member when it holds only `.SIGN.*` entries and more
 * members follow, as abuild-sign writes it.
 */
export function splitSignedMembers(data: Buffer, source: string): SignedMembers {
  const members = splitGzipMembers(data, source);
  const first = members[0]!;
  if (members.length > 1) {
    const entries = readTar(first.content, `${source} (signature member)`);
    if (entries.length > 0 && entries.every((e) => e.name.startsWith(".SIGN."))) {
      const rest = members.slice(1);
      return { signatureEntries: entries, members: rest, signedBytes: data.subarray(rest[0]!.offset) };
    }
  }
  return { signatureEntries: [], members, signedBytes: data };
}

/**
 * Reads and checks an `APKINDEX.tar.gz`: gzip member 1 is a tar holding `.SIGN.RSA*.<key>`,
 * member 2 a tar with DESCRIPTION and APKINDEX; the signature covers member 2's raw bytes.
 * Signatures by unknown keys are skipped; the first by a trusted key must verify. Without a
 * trusted signature the index is refused unless `allowUntrusted`; a bad signature by a trusted
 * key is refused always (as apk-tools does).
 */
export function readIndexArchive(data: Buffer, opts: { keys: Map<string, Buffer>; allowUntrusted?: boolean; source: string }): IndexArchive {
  const { source } = opts;
  const split = splitSignedMembers(data, source);
  const check = checkSignatures(split.signatureEntries, split.signedBytes, opts.keys);
  if (check.signer && !check.valid) {
    throw new Error(`${source}: signature does not verify (${describeSignatureCheck(check)}); the index is corrupt or was tampered with`);
  }
  if (!check.valid && !opts.allowUntrusted) {
    const keyList = [...opts.keys.keys()].join(", ") || "none";
    throw new Error(`${source}: not signed by a trusted key (${describeSignatureCheck(check)}; trusted keys: ${keyList}); add the signer's public key to the keys directory or allow untrusted repositories`);
  }
  const tar = Buffer.concat(split.members.map((m) => m.content));
  const entries = readTar(tar, source);
  const apkindex = entries.find((e) => e.name === "APKINDEX" && e.type === "file");
  if (!apkindex) {
    throw new Error(`${source}: no APKINDEX file in the archive (found: ${entries.map((e) => e.name).join(", ") || "nothing"})`);
  }
  const description = entries.find((e) => e.name === "DESCRIPTION" && e.type === "file");
  return {
    signer: check.valid ? check.signer : undefined,
    verified: check.valid,
    apkindexText: apkindex.content.toString("utf8"),
    description: description?.content.toString("utf8"),
  };
}

/**
 * Writes an `APKINDEX.tar.gz` as `apk index` + abuild-sign do: a tar of DESCRIPTION and
 * APKINDEX (mode 0644, root, mtime 0, with end-of-archive), gzipped without name or mtime, and,
 * when a signer is given, a signature member in front. Same input, same bytes.
 */
export function writeIndexArchive(apkindexText: string, description: string, signer?: Signer): Buffer {
  const file = (name: string, text: string) => ({ name, type: "file" as const, mode: 0o644, uid: 0, gid: 0, mtime: 0, content: Buffer.from(text, "utf8") });
  const body = gzipDeterministic(writeTar([file("DESCRIPTION", description), file("APKINDEX", apkindexText)], { endOfArchive: true }));
  if (!signer) return body;
  return Buffer.concat([signatureMember(body, signer), body]);
}
