/**
 * What a process must undo however it ends: temporary key files, ssh master connections,
 * scratch directories. A registered cleanup runs once, synchronously, on normal exit and on
 * SIGINT, SIGTERM and SIGHUP (after which the signal's default action is taken again, so the
 * exit status still says which signal ended the process). SIGKILL cannot be caught: whatever is
 * registered here must also be harmless or self-expiring when it is left behind.
 */

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
  // Others may handle the signal too (the provider server closes gracefully on SIGTERM); when
  // nobody else does, end the way the signal would have.
  if (process.listenerCount(signal) <= 1) {
    for (const s of SIGNALS) process.removeListener(s, onSignal);
    process.kill(process.pid, signal);
  }
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
