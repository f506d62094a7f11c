/**
 * The overlay: every file under the stack's `root/` directory (and every inline file) lands at
 * the same path in the image, with its mode and symlinks kept and root ownership. Its digest
 * (paths, types, modes, contents) is part of the plan, so a changed file changes the planId.
 */
import { sha256Hex as sha256 } from "../file-hash";
import * as fs from "node:fs";
import * as path from "node:path";
import { didYouMean } from "../similar-name";
import { StagingRoot } from "../apk/staging-root";
import { FieldError } from "../ramroot-error";

export interface OverlayEntry {
  /** path in the image, relative, "/" separated */
  path: string;
  type: "file" | "dir" | "symlink";
  /** permission bits (0o7777) */
  mode: number;
  /** sha256 of the content (files) or of the link target (symlinks) */
  sha256?: string;
  size?: number;
  /** files: where the content is, or the content itself (inline files) */
  source?: string | Buffer;
  linkTarget?: string;
}

export interface InlineFile {
  path: string;
  content: string;
  mode?: number;
}

/** Reads the overlay directory. Devices, sockets and FIFOs are refused: git cannot hold them either. */
export function scanOverlay(dir: string): OverlayEntry[] {
  let top: fs.Stats;
  try {
    top = fs.statSync(dir);
  } catch {
    const siblings = fs.existsSync(path.dirname(dir)) ? fs.readdirSync(path.dirname(dir)) : [];
    throw new FieldError(
      "overlay",
      `directory "${dir}" does not exist; expected a directory whose files land at the same paths in the image${didYouMean(path.basename(dir), siblings)}`,
    );
  }
  if (!top.isDirectory()) throw new FieldError("overlay", `"${dir}" is not a directory`);
  const entries: OverlayEntry[] = [];
  const walk = (rel: string) => {
    const abs = path.join(dir, rel);
    for (const name of fs.readdirSync(abs).sort()) {
      const childRel = rel === "" ? name : `${rel}/${name}`;
      const childAbs = path.join(dir, childRel);
      const st = fs.lstatSync(childAbs);
      // Group and other write bits follow the umask a checkout was made with (git records only
      // 644 or 755): dropped, so two clones of one repository give the same image.
      const mode = st.mode & 0o7755;
      if (st.isSymbolicLink()) {
        const linkTarget = fs.readlinkSync(childAbs);
        entries.push({ path: childRel, type: "symlink", mode: 0o777, linkTarget, sha256: sha256(linkTarget) });
      } else if (st.isDirectory()) {
        entries.push({ path: childRel, type: "dir", mode });
        walk(childRel);
      } else if (st.isFile()) {
        entries.push({
          path: childRel,
          type: "file",
          mode,
          size: st.size,
          source: childAbs,
          sha256: sha256(fs.readFileSync(childAbs)),
        });
      } else {
        throw new FieldError("overlay", `"${childAbs}" is not a file, directory or symlink`);
      }
    }
  };
  walk("");
  return entries;
}

/** An inline file's path relative to the root ("/etc/x", "./etc//x" -> "etc/x"); "" for the root itself. */
export function inlinePath(p: string): string {
  return p
    .split("/")
    .filter((part) => part !== "" && part !== ".")
    .join("/");
}

/** Inline files as overlay entries (with their parent directories implied). */
export function inlineEntries(files: InlineFile[]): OverlayEntry[] {
  return files.map((f) => {
    const rel = inlinePath(f.path);
    const content = Buffer.from(f.content, "utf8");
    return {
      path: rel,
      type: "file" as const,
      mode: f.mode ?? 0o644,
      size: content.length,
      source: content,
      sha256: sha256(content),
    };
  });
}

/** Overlay entries merged in order: a later entry for the same path wins. Sorted by path. */
export function mergeOverlays(...layers: OverlayEntry[][]): OverlayEntry[] {
  const byPath = new Map<string, OverlayEntry>();
  for (const layer of layers) for (const e of layer) byPath.set(e.path, e);
  return [...byPath.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** One line per entry: what the plan records and previews compare. */
export function overlaySummary(entries: OverlayEntry[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of entries) {
    out[e.path] = e.type === "dir" ? `dir ${e.mode.toString(8)}` : `${e.type} ${e.mode.toString(8)} ${e.sha256}`;
  }
  return out;
}

/** sha256 over the sorted summary lines. */
export function overlayDigest(entries: OverlayEntry[]): string {
  const summary = overlaySummary(entries);
  const lines = Object.keys(summary)
    .sort()
    .map((p) => `${p}\t${summary[p]}\n`);
  return sha256(lines.join(""));
}

/**
 * Lays overlay entries (sorted by path) on the staging root, inside it only: directories get
 * their mode, files replace whatever stood at their path, symlinks are copied as symlinks and
 * never followed; a symlink already in the tree is followed only inside the root.
 */
export function writeOverlay(root: string, entries: OverlayEntry[]): void {
  const staging = new StagingRoot(root, "overlay");
  for (const e of entries) {
    if (e.type === "dir") staging.directory(e.path, e.mode);
    else if (e.type === "symlink") staging.symlink(e.path, e.linkTarget!, { replaceDirectory: true });
    else if (Buffer.isBuffer(e.source)) staging.writeFile(e.path, e.source, e.mode, { replaceDirectory: true });
    else staging.copyIn(e.source!, e.path, e.mode, { replaceDirectory: true });
  }
}
