/**
 * The on-machine scripts: plain shell files beside this module (provider/machine/*.sh, checked
 * by shellcheck in `npm test`), packed into an image under /usr/libexec/ramroot with the values
 * they need in /etc/ramroot/machine.conf (image/machine-services.ts decides which an image gets).
 * They are read from the package, byte for byte (scriptsDir).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { InternalError } from "../ramroot-error";

/** Where the scripts go in an image (relative to its root). */
export const LIBEXEC = "usr/libexec/ramroot";
/** The values the scripts read (shell assignments), relative to the image's root. */
export const CONF = "etc/ramroot/machine.conf";
/** The health checks the guard runs, one file each, relative to the image's root. */
export const CHECKS_DIR = "etc/ramroot/health.d";
/** The guard's script on the machine: an image that has it reports its health (a deploy waits for that report). */
export const GUARD_PATH = `/${LIBEXEC}/guard`;

/** Each script's file name in this directory. */
const FILES = {
  "image-id": "image-id.sh",
  coldplug: "coldplug.sh",
  mounts: "mounts.sh",
  network: "network.sh",
  "udhcpc.script": "udhcpc.sh",
  "ssh-host-keys": "ssh-host-keys.sh",
  guard: "guard.sh",
} as const;

/** A script, by the name it has on the machine (under /usr/libexec/ramroot). */
export type MachineScript = keyof typeof FILES;

/**
 * The directory the .sh files are in, for a module in `moduleDir`: that directory in the sources;
 * compiled (dist/, or a test's private output directory), the nearest provider/machine above it,
 * the package's own (the .sh files are not compiled and stay where the sources have them).
 */
export function scriptsDirFrom(moduleDir: string): string {
  const looked: string[] = [];
  for (let dir = moduleDir; ; dir = path.dirname(dir)) {
    const candidate = dir === moduleDir ? dir : path.join(dir, "provider", "machine");
    looked.push(candidate);
    if (fs.existsSync(path.join(candidate, FILES.guard))) return candidate;
    if (path.dirname(dir) === dir) break;
  }
  throw new InternalError(
    `the machine scripts (${FILES.guard} and the others) are in none of ${looked.join(", ")}; the ramroot package is incomplete (reinstall it)`,
  );
}

let found: string | undefined;

/** The directory this module reads the scripts from. */
export function scriptsDir(): string {
  return (found ??= scriptsDirFrom(__dirname));
}

const read = new Map<MachineScript, Buffer>();

/** The bytes of a script, as they go into an image. */
export function machineScript(name: MachineScript): Buffer {
  let bytes = read.get(name);
  if (!bytes) {
    const file = path.join(scriptsDir(), FILES[name]);
    try {
      bytes = fs.readFileSync(file);
    } catch (err) {
      throw new InternalError(
        `the machine script ${name} (${file}) cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}; the ramroot package is incomplete (reinstall it)`,
      );
    }
    read.set(name, bytes);
  }
  return bytes;
}
