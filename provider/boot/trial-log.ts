/**
 * The failed trials of a boot partition: one record each time a trial boot did not end healthy
 * (which image, which slot, when, why, after how long), kept beside the deployment journal in
 * `ramroot/trials.json`. `ramroot status` lists them; the A/B decision does not try an image
 * again in a slot where its trial failed (provider/deploy/ab-decision.ts).
 */
import type { BootTarget } from "./boot-target";

export const TRIAL_LOG_PATH = "ramroot/trials.json";
const KEEP = 100;

/**
 * Why a trial failed: the image panicked (it never answered and the machine came back on DEFAULT),
 * hung (it answered, then stopped and came back: its watchdog), was unhealthy (its guard's checks
 * failed in time), or the time ran out (no answer, or no verdict, within trial.timeoutSeconds).
 */
export type TrialCause = "panic" | "hung" | "unhealthy" | "timeout";

export interface FailedTrial {
  /** ISO time the failure was seen */
  when: string;
  slot: string;
  imageId: string;
  cause: TrialCause;
  /** seconds from the trial's reboot to the failure being seen */
  seconds: number;
  /** what was seen, e.g. the failed checks' output */
  detail: string;
}

function isFailedTrial(value: unknown): value is FailedTrial {
  const t = value as Partial<FailedTrial> | null;
  return (
    typeof t === "object" &&
    t !== null &&
    typeof t.when === "string" &&
    typeof t.slot === "string" &&
    typeof t.imageId === "string" &&
    typeof t.cause === "string"
  );
}

/** The failed trials, oldest first; a missing or unreadable log reads as none (it only informs). */
export async function readFailedTrials(target: BootTarget): Promise<FailedTrial[]> {
  const raw = await target.readFile(TRIAL_LOG_PATH).catch(() => undefined);
  if (raw === undefined) return [];
  try {
    const trials = (JSON.parse(raw.toString("utf8")) as { trials?: unknown }).trials;
    return Array.isArray(trials) ? trials.filter(isFailedTrial) : [];
  } catch {
    return [];
  }
}

/** Adds a failed trial to the log (atomically replaced; the newest KEEP are kept). */
export async function recordFailedTrial(target: BootTarget, trial: FailedTrial): Promise<void> {
  const trials = [...(await readFailedTrials(target)), trial].slice(-KEEP);
  await target.writeFileAtomic(TRIAL_LOG_PATH, JSON.stringify({ trials }, null, 2) + "\n");
}
