/**
 * What a process must undo however it ends: temporary key files, ssh master connections,
 * scratch directories. A registered cleanup runs once, synchronously, on normal exit and on
 * SIGINT, SIGTERM and SIGHUP, after which the process ends with 128 + the signal's number.
 * Ending is not left to other listeners: signal-exit (under execa) defers to any other listener
 * and would let a "killed" deploy go on writing. SIGKILL cannot be caught: whatever is
 * registered here must also be harmless or self-expiring when it is left behind.
 */
import { constants } from "node:os";

type Cleanup = () => void;

const pending = new Set<Cleanup>();
const SIGNALS: NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP"];
let installed = false;

function runAll(): void {
  for (const cleanup of [...pending]) {
    pending.delete(cleanup);
    try {
      cleanup();
    } catch {
      // One failing cleanup must not stop the others.
    }
  }
}

function onSignal(signal: NodeJS.Signals): void {
  runAll();
  // process.exit still runs the 'exit' listeners (execa's kills its subprocesses there).
  process.exit(128 + (constants.signals[signal] ?? 0));
}

function install(): void {
  if (installed) return;
  installed = true;
  process.on("exit", runAll);
  for (const s of SIGNALS) process.on(s, onSignal);
}

/** Registers a synchronous cleanup; the returned function runs it now (once) and unregisters it. */
export function onProcessExit(cleanup: Cleanup): () => void {
  install();
  pending.add(cleanup);
  return () => {
    if (!pending.delete(cleanup)) return;
    cleanup();
  };
}

/** True when process `pid` exists on this machine (signal 0 probes without sending anything). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}
