import { EXPANSION_LIMITS, GzipLimitError, gzipDeterministic, readGzipMember, splitGzipMembers } from "./gzip-members";
import { checkSignatures, describeSignatureCheck, signatureMember, type Signer } from "./signature";
import { readTar, type TarReadEntry } from "./tar-reader";
import { writeTar } from "./tar-writer";
import { TrustError } from "../ramroot-error";

/** What an `APKINDEX.tar.gz` holds once read and checked. */
export interface IndexArchive {
  /** Key file name of the trusted key whose signature verified. */
  signer?: string;
  /** True when a trusted key's signature verified. */
  verified: boolean;
  apkindexText: string;
  description?: string;
}

/** A leading signature member's entries, and where the bytes it signs start. */
export interface SignaturePart {
  signatureEntries: TarReadEntry[];
  /** Offset of the first member after the signature member (0 when there is none). */
  bodyOffset: number;
}

/**
 * Reads an APK v2 file's (index or package) optional leading signature member, inflating at
 * most EXPANSION_LIMITS.signatureMember bytes of it. A first member is the signature member
 * when it holds only `.SIGN.*` entries and more bytes follow, as abuild-sign writes it; a
 * first member that expands beyond the limit is no signature member (it is the content).
 */
export function readSignaturePart(data: Buffer, source: string): SignaturePart {
  if (data.length === 0)
    throw new TrustError(`${source}: empty file, expected concatenated gzip members`, undefined, "repositories");
  let first;
  try {
    first = readGzipMember(data, 0, source, EXPANSION_LIMITS.signatureMember);
  } catch (err) {
    if (err instanceof GzipLimitError) return { signatureEntries: [], bodyOffset: 0 };
    throw err;
  }
  if (first.raw.length < data.length) {
    const entries = readTar(first.content, `${source} (signature member)`);
    if (entries.length > 0 && entries.every((e) => e.name.startsWith(".SIGN.")))
      return { signatureEntries: entries, bodyOffset: first.raw.length };
  }
  return { signatureEntries: [], bodyOffset: 0 };
}

/**
 * Reads and checks an `APKINDEX.tar.gz`: gzip member 1 is a tar holding `.SIGN.RSA*.<key>`,
 * member 2 a tar with DESCRIPTION and APKINDEX; the signature covers member 2's raw bytes.
 * Signatures by unknown keys are skipped; the first by a trusted key must verify. Without a
 * trusted signature the index is refused unless `allowUntrusted`; a bad signature by a trusted
 * key is refused always (as apk-tools does). The signature is checked over the compressed
 * bytes before the index is inflated, and inflating stops at EXPANSION_LIMITS.index.
 */
export function readIndexArchive(
  data: Buffer,
  opts: { keys: Map<string, Buffer>; allowUntrusted?: boolean; source: string },
): IndexArchive {
  const { source } = opts;
  const signature = readSignaturePart(data, source);
  const check = checkSignatures(signature.signatureEntries, data.subarray(signature.bodyOffset), opts.keys);
  if (check.signer && !check.valid) {
    throw new TrustError(
      `${source}: signature does not verify (${describeSignatureCheck(check)}); the index is corrupt or was tampered with`,
      "fetch it again from the repository you trust; do not add keys to make it pass",
    );
  }
  if (!check.valid && !opts.allowUntrusted) {
    const keyList = [...opts.keys.keys()].join(", ") || "none";
    throw new TrustError(
      `${source}: not signed by a trusted key (${describeSignatureCheck(check)}; trusted keys: ${keyList})`,
      "add the signer's public key to the keys directory or allow untrusted repositories",
    );
  }
  const members = splitGzipMembers(data.subarray(signature.bodyOffset), source, EXPANSION_LIMITS.index);
  const tar = Buffer.concat(members.map((m) => m.content));
  const entries = readTar(tar, source);
  const apkindex = entries.find((e) => e.name === "APKINDEX" && e.type === "file");
  if (!apkindex) {
    throw new TrustError(
      `${source}: no APKINDEX file in the archive (found: ${entries.map((e) => e.name).join(", ") || "nothing"})`,
      undefined,
      "repositories",
    );
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
  const file = (name: string, text: string) => ({
    name,
    type: "file" as const,
    mode: 0o644,
    uid: 0,
    gid: 0,
    mtime: 0,
    content: Buffer.from(text, "utf8"),
  });
  const body = gzipDeterministic(
    writeTar([file("DESCRIPTION", description), file("APKINDEX", apkindexText)], { endOfArchive: true }),
  );
  if (!signer) return body;
  return Buffer.concat([signatureMember(body, signer), body]);
}
