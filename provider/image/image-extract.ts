/**
 * `ramroot image extract`: writes an image's final tree (or some paths of it) into a new
 * directory. The image is untrusted input: every path is checked to stay inside the
 * destination, symbolic links are made last (so no write goes through a link the image made),
 * and device nodes, FIFOs and sockets are listed instead of made (that needs root and is not
 * what an inspection wants). Modes are applied; owners only when running as root.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { ImageEntry } from "./initramfs-reader";
import { readImageBytes } from "./image-read";
import { FieldError, TrustError } from "../ramroot-error";

export interface ExtractResult {
  files: number;
  dirs: number;
  symlinks: number;
  /** paths not made: device nodes, FIFOs, sockets */
  skipped: string[];
}

function checkedPath(dest: string, rel: string): string {
  const parts = rel.split("/");
  if (rel.startsWith("/") || parts.some((p) => p === ".." || p === ""))
    throw new TrustError(
      `image entry ${JSON.stringify(rel)} would leave the destination; refused`,
      undefined,
      "repositories",
    );
  return path.join(dest, ...parts);
}

/** Whether `rel` is one of `wanted` or lies under one of them (all when `wanted` is empty). */
function selected(rel: string, wanted: string[]): boolean {
  return wanted.length === 0 || wanted.some((w) => rel === w || rel.startsWith(`${w}/`));
}

/** Extracts an initramfs (read by `bytes` once `dest` is known to be new or empty; `description` names it in errors) into `dest`. */
export async function extractImage(
  bytes: () => Promise<Buffer>,
  description: string,
  dest: string,
  wantedPaths: string[] = [],
): Promise<ExtractResult> {
  const wanted = wantedPaths.map((p) => p.replace(/^\/+|\/+$/g, "")).filter((p) => p !== "");
  if (fs.existsSync(dest) && fs.readdirSync(dest).length > 0)
    throw new FieldError("extract", `${dest} is not empty; give a new or empty directory`);
  const contents = new Map<string, Buffer>();
  const image = await readImageBytes(await bytes(), description, (entry, content) => {
    if (selected(entry.path, wanted)) contents.set(entry.path, content);
  });
  const entries = [...image.entries.values()]
    .filter((e) => selected(e.path, wanted))
    .sort((a, b) => (a.path < b.path ? -1 : 1));
  if (wanted.length > 0 && entries.length === 0)
    throw new FieldError(
      "extract",
      `no path ${wanted.map((w) => JSON.stringify(w)).join(", ")} in the image; see \`ramroot image ls\``,
    );
  // The extracted tree is private to whoever extracts it (it may hold setuid files and secrets).
  fs.mkdirSync(dest, { recursive: true, mode: 0o700 });
  fs.chmodSync(dest, 0o700);
  const asRoot = process.getuid?.() === 0;
  const result: ExtractResult = { files: 0, dirs: 0, symlinks: 0, skipped: [] };
  const own = (p: string, e: ImageEntry) => {
    if (asRoot) fs.lchownSync(p, e.uid, e.gid);
  };
  const dirs: ImageEntry[] = [];
  for (const e of entries) {
    const p = checkedPath(dest, e.path);
    if (e.type === "dir") {
      fs.mkdirSync(p, { recursive: true, mode: 0o700 });
      dirs.push(e);
      result.dirs++;
    } else if (e.type === "file") {
      fs.mkdirSync(path.dirname(p), { recursive: true, mode: 0o755 });
      fs.writeFileSync(p, contents.get(e.path) ?? Buffer.alloc(0), { flag: "wx", mode: 0o600 });
      own(p, e); // before chmod: chown clears setuid/setgid
      fs.chmodSync(p, e.mode);
      result.files++;
    } else if (e.type !== "symlink") result.skipped.push(`${e.path} (${e.type})`);
  }
  for (const e of entries.filter((x) => x.type === "symlink")) {
    const p = checkedPath(dest, e.path);
    // A link made before (sorted: its parent) is never gone through: it may point anywhere.
    const parts = e.path.split("/");
    const through = parts
      .slice(0, -1)
      .map((_, i) => parts.slice(0, i + 1).join("/"))
      .find((dir) => fs.lstatSync(path.join(dest, dir), { throwIfNoEntry: false })?.isSymbolicLink());
    if (through) {
      result.skipped.push(`${e.path} (symlink under the symlink ${through}; not made)`);
      continue;
    }
    fs.mkdirSync(path.dirname(p), { recursive: true, mode: 0o755 });
    if (fs.lstatSync(p, { throwIfNoEntry: false })) {
      result.skipped.push(`${e.path} (symlink; paths below it were extracted into a directory)`);
      continue;
    }
    fs.symlinkSync(e.linkTarget ?? "", p);
    own(p, e);
    result.symlinks++;
  }
  // Directory modes last, deepest first, so a read-only directory does not stop its own contents.
  for (const e of dirs.reverse()) {
    const p = checkedPath(dest, e.path);
    own(p, e);
    fs.chmodSync(p, e.mode);
  }
  return result;
}
