import * as path from "node:path";
import { FieldError } from "../ramroot-error";

/**
 * Checks a path relative to a boot target's root ("a/vmlinuz", "syslinux.cfg") and returns it
 * normalised; "" (or "/" or ".") is the root itself. Absolute paths and paths that climb out
 * with ".." are refused: a target never reads or writes outside its root.
 */
export function targetRelPath(rel: string, field = "path"): string {
  if (typeof rel !== "string")
    throw new FieldError(field, `got ${JSON.stringify(rel)}; expected a path relative to the target root`);
  if (rel.includes("\0") || rel.includes("\n"))
    throw new FieldError(field, `got ${JSON.stringify(rel)}; NUL and newline are not accepted in a path`);
  const trimmed = rel.replace(/^\/+/, "");
  const normal = path.posix.normalize(trimmed === "" ? "." : trimmed);
  if (normal === ".." || normal.startsWith("../")) {
    throw new FieldError(field, `got ${JSON.stringify(rel)}; expected a path inside the target root (no "..")`);
  }
  return normal === "." ? "" : normal.replace(/\/+$/, "");
}
