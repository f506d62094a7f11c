/**
 * An SPDX 2.3 JSON software bill of materials for an image: one package per locked APK, with
 * its version, license, origin, index checksum and the repository it came from. Deterministic:
 * the creation time is the image's epoch and the namespace is derived from the planId.
 */
import type { LockEntry } from "../apk/solver";

export interface SbomInput {
  imageName: string;
  planId: string;
  epoch: number;
  packages: LockEntry[];
}

function spdxId(name: string, version: string): string {
  return `SPDXRef-Package-${`${name}-${version}`.replace(/[^A-Za-z0-9.-]/g, "-")}`;
}

/** A license expression SPDX accepts, or NOASSERTION (Alpine writes e.g. "GPL-2.0-only AND MIT"). */
function licenseOf(license: string | undefined): string {
  if (!license || license.trim() === "") return "NOASSERTION";
  return /^[A-Za-z0-9.+\-() ]+$/.test(license) ? license : "NOASSERTION";
}

export function buildSbom(input: SbomInput): Record<string, unknown> {
  const packages = [...input.packages].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return {
    spdxVersion: "SPDX-2.3",
    dataLicense: "CC0-1.0",
    SPDXID: "SPDXRef-DOCUMENT",
    name: input.imageName,
    documentNamespace: `https://ramroot.invalid/spdx/${input.planId}`,
    creationInfo: {
      created: new Date(input.epoch * 1000).toISOString().replace(/\.\d{3}Z$/, "Z"),
      creators: ["Tool: ramroot"],
    },
    documentDescribes: packages.map((p) => spdxId(p.name, p.version)),
    packages: packages.map((p) => ({
      name: p.name,
      SPDXID: spdxId(p.name, p.version),
      versionInfo: p.version,
      supplier: "NOASSERTION",
      downloadLocation: p.repository
        ? `${p.repository.replace(/\/+$/, "")}/${p.arch ?? p.record.arch ?? "noarch"}/${p.name}-${p.version}.apk`
        : "NOASSERTION",
      filesAnalyzed: false,
      licenseConcluded: "NOASSERTION",
      licenseDeclared: licenseOf(p.record.license),
      copyrightText: "NOASSERTION",
      ...(p.record.description ? { description: p.record.description } : {}),
      ...(p.record.url ? { homepage: p.record.url } : {}),
      sourceInfo: `origin ${p.record.origin ?? p.name}, repository ${p.repository}`,
      ...(p.checksum ? { checksums: [{ algorithm: "SHA1", checksumValue: q1ToHex(p.checksum) }] } : {}),
      externalRefs: [
        {
          referenceCategory: "PACKAGE-MANAGER",
          referenceType: "purl",
          referenceLocator: `pkg:apk/alpine/${encodeURIComponent(p.name)}@${encodeURIComponent(p.version)}?arch=${p.arch ?? p.record.arch ?? "noarch"}`,
        },
      ],
    })),
    relationships: packages.map((p) => ({
      spdxElementId: "SPDXRef-DOCUMENT",
      relationshipType: "DESCRIBES",
      relatedSpdxElement: spdxId(p.name, p.version),
    })),
  };
}

/** The index checksum "Q1<base64 sha1>" as hex, the form SPDX wants. */
function q1ToHex(checksum: string): string {
  return checksum.startsWith("Q1") ? Buffer.from(checksum.slice(2), "base64").toString("hex") : checksum;
}
