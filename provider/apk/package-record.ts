/**
 * One package as an APKINDEX record (and the header of /lib/apk/db/installed) describes it.
 * Field letters follow apk-tools: C P V A S I T U L o m t c k D p i, plus r (replaces) and q
 * (replaces_priority). The parsed record keeps the raw text of dependency fields; the
 * dependency module turns them into structured constraints.
 */
export interface PackageRecord {
  /** C: "Q1" + base64(SHA-1 of the raw compressed control member) */
  checksum?: string;
  /** P */
  name: string;
  /** V */
  version: string;
  /** A */
  arch?: string;
  /** S: size of the .apk file in bytes */
  size?: number;
  /** I: installed size in bytes */
  installedSize?: number;
  /** T */
  description?: string;
  /** U */
  url?: string;
  /** L */
  license?: string;
  /** o */
  origin?: string;
  /** m */
  maintainer?: string;
  /** t: build time, seconds since the epoch */
  buildTime?: number;
  /** c: the aports commit */
  commit?: string;
  /** k: provider_priority */
  providerPriority?: number;
  /** D: dependencies, space separated in the index */
  depends: string[];
  /** p: provides */
  provides: string[];
  /** i: install_if */
  installIf: string[];
  /** r: replaces */
  replaces: string[];
  /** q: replaces_priority */
  replacesPriority?: number;
  /** Unknown upper-case fields make a package uninstallable, as in apk-tools. */
  unknownUpperFields?: string[];
}

/** Where a record came from: which repository, and its position in the configured order. */
export interface RepositoryPackage extends PackageRecord {
  /** The repository URL or directory, as configured. */
  repository: string;
  /** Index of the repository in the configured list; earlier is preferred. */
  repositoryOrder: number;
  /** The repository's tag (`@testing` in /etc/apk/repositories, without the "@"); untagged when absent. */
  repositoryTag?: string;
}
