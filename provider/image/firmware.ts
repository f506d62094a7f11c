/**
 * Keeps only the firmware the machine needs: files under /lib/firmware that match one of the
 * names or globs are kept (with the symlinks that point at kept files), the rest is dropped.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import picomatch from "picomatch";
import { StagingRoot } from "../apk/staging-root";

export interface FirmwareTrim {
  kept: number;
  dropped: number;
  droppedBytes: number;
}

export function trimFirmware(root: string, keep: string[]): FirmwareTrim {
  const result: FirmwareTrim = { kept: 0, dropped: 0, droppedBytes: 0 };
  // Resolved inside the root: a package's lib/firmware -> /host/dir never leads to the host.
  // Below it only real directories are entered and only their entries are deleted.
  const found = new StagingRoot(root, "firmware").stat("lib/firmware");
  if (!found?.stat.isDirectory()) return result;
  const base = found.host;
  // A bare name keeps that file or that directory's files; globs match paths under /lib/firmware.
  const matchers = keep.map((k) => picomatch(k.replace(/^\/?(lib\/firmware\/)?/, ""), { dot: true }));
  const dirPrefixes = keep
    .filter((k) => !/[*?[\]{}]/.test(k))
    .map((k) => `${k.replace(/^\/?(lib\/firmware\/)?/, "").replace(/\/+$/, "")}/`);
  const wanted = (rel: string) => matchers.some((m) => m(rel)) || dirPrefixes.some((p) => rel.startsWith(p));
  const walk = (relDir: string) => {
    for (const name of fs.readdirSync(path.join(base, relDir)).sort()) {
      const rel = relDir === "" ? name : `${relDir}/${name}`;
      const abs = path.join(base, rel);
      const st = fs.lstatSync(abs);
      if (st.isDirectory()) {
        walk(rel);
        if (fs.readdirSync(abs).length === 0) fs.rmdirSync(abs);
      } else if (
        wanted(rel) ||
        (st.isSymbolicLink() && wanted(path.posix.normalize(path.posix.join(relDir, fs.readlinkSync(abs)))))
      ) {
        result.kept++;
      } else {
        result.dropped++;
        result.droppedBytes += st.size;
        fs.rmSync(abs);
      }
    }
  };
  walk("");
  return result;
}
