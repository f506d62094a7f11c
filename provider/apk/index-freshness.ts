/**
 * Replay and downgrade protection for remote indexes, as TUF's timestamp/snapshot checks do
 * for its metadata: per repository URL the newest index seen is remembered (its newest build
 * time, and the highest version seen of every package) in the cache. A later index that is
 * older (its newest build time went down) or that offers a package at a lower version than
 * one seen before is refused, unless the config asks for it (allowDowngrade); a signed but
 * stale index replayed by a mirror or an attacker then cannot roll a machine back silently.
 */
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { writeFileAtomicSync } from "../atomic-file";
import type { PackageRecord } from "./package-record";
import { compareVersions } from "./version";

export interface IndexSeen {
  url: string;
  /** the newest `t:` (build time) in the newest index seen */
  newestBuildTime: number;
  /** package name -> the highest version any index of this repository offered */
  versions: Record<string, string>;
  /** when that was recorded (ISO time), to say so in the error */
  recordedAt: string;
}

export class IndexDowngradeError extends Error {
  constructor(
    readonly url: string,
    message: string,
  ) {
    super(message);
    this.name = "IndexDowngradeError";
  }
}

function stateFile(cacheDir: string, url: string): string {
  return path.join(cacheDir, `${crypto.createHash("sha256").update(url).digest("hex").slice(0, 40)}.seen.json`);
}

function readSeen(cacheDir: string, url: string): IndexSeen | undefined {
  try {
    const seen = JSON.parse(fs.readFileSync(stateFile(cacheDir, url), "utf8")) as IndexSeen;
    return seen.url === url ? seen : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Checks `records` (a verified index of `url`) against what was seen before and records the
 * newer state. Throws IndexDowngradeError naming what went back unless `allowDowngrade`; with
 * it, the served index becomes the reference and the returned notes say what went back.
 */
export function checkIndexFreshness(
  cacheDir: string,
  url: string,
  records: readonly PackageRecord[],
  opts: { allowDowngrade?: boolean } = {},
): string[] {
  const newestBuildTime = records.reduce((max, r) => Math.max(max, r.buildTime ?? 0), 0);
  const seen = readSeen(cacheDir, url);
  const offered = new Map<string, string>();
  for (const r of records) {
    const have = offered.get(r.name);
    if (have === undefined || compareVersions(r.version, have) === ">") offered.set(r.name, r.version);
  }
  const back: string[] = [];
  if (seen) {
    if (newestBuildTime < seen.newestBuildTime) {
      back.push(
        `its newest build time ${new Date(newestBuildTime * 1000).toISOString()} is older than the ${new Date(seen.newestBuildTime * 1000).toISOString()} of the index seen on ${seen.recordedAt}`,
      );
    }
    for (const [name, version] of offered) {
      const before = seen.versions[name];
      if (before !== undefined && compareVersions(version, before) === "<")
        back.push(`${name} ${version} is lower than the ${before} seen on ${seen.recordedAt}`);
    }
  }
  if (back.length > 0 && !opts.allowDowngrade) {
    throw new IndexDowngradeError(
      url,
      `${url}: refused as a replayed or downgraded index: ${back.join("; ")}. If the repository really went back, set allowDowngrade: true to accept it`,
    );
  }
  const versions: Record<string, string> = back.length > 0 ? {} : { ...(seen?.versions ?? {}) };
  for (const [name, version] of offered) {
    const before = versions[name];
    if (before === undefined || compareVersions(version, before) === ">") versions[name] = version;
  }
  const next: IndexSeen = {
    url,
    newestBuildTime: back.length > 0 ? newestBuildTime : Math.max(newestBuildTime, seen?.newestBuildTime ?? 0),
    versions,
    recordedAt: new Date().toISOString(),
  };
  fs.mkdirSync(cacheDir, { recursive: true });
  writeFileAtomicSync(stateFile(cacheDir, url), JSON.stringify(next, null, 2) + "\n");
  return back.map((b) => `${url}: accepted although ${b} (allowDowngrade)`);
}
