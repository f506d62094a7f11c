/**
 * The machine's health report, as its guard (guard.sh) writes it (/run/ramroot/health, and on a
 * failed trial the copy on the boot partition):
 *
 *   image <id>
 *   trial yes|no
 *   status checking|healthy|unhealthy
 *   uptime <seconds>
 *   check <name> ok|failed (exit N)
 *     <the check's output, each line indented by two spaces>
 */

/** The guard's report on the running machine: the image id, whether this boot is a trial, the status and each check's output. */
export const HEALTH_PATH = "/run/ramroot/health";
/**
 * Where a trial boot that failed leaves its last report before it reboots: the boot partition's
 * root (relative to its mountpoint, which is the ssh target's path), so the deploy that waits for
 * it can read it from the machine back on DEFAULT.
 */
export const TRIAL_REPORT_FILE = "ramroot-trial-report";

export type HealthStatus = "checking" | "healthy" | "unhealthy";

export interface HealthCheckResult {
  name: string;
  ok: boolean;
  /** "ok" or "failed (exit N)" */
  result: string;
  output: string;
}

export interface HealthReport {
  imageId: string;
  trial: boolean;
  status: HealthStatus;
  uptimeSeconds?: number;
  checks: HealthCheckResult[];
}

const STATUSES: readonly string[] = ["checking", "healthy", "unhealthy"];

/**
 * What is read of a report (the machine writes it, and a machine can misbehave): a real one is a
 * few KiB. Readers fetch at most this much; the parser looks at no more, and keeps at most
 * MAX_CHECKS checks of at most MAX_CHECK_OUTPUT characters of output each.
 */
export const HEALTH_REPORT_MAX_BYTES = 64 << 10;
const MAX_CHECKS = 64;
const MAX_CHECK_OUTPUT = 4096;

/** Parses a report; undefined when the text is not one (empty, cut short, another file). */
export function parseHealthReport(whole: string): HealthReport | undefined {
  const text = whole.slice(0, HEALTH_REPORT_MAX_BYTES);
  let imageId: string | undefined;
  let trial = false;
  let status: HealthStatus | undefined;
  let uptimeSeconds: number | undefined;
  const checks: HealthCheckResult[] = [];
  for (const line of text.split("\n")) {
    if (line.startsWith("  ")) {
      const last = checks[checks.length - 1];
      if (last && last.output.length < MAX_CHECK_OUTPUT)
        last.output = `${last.output}${last.output === "" ? "" : "\n"}${line.slice(2)}`.slice(0, MAX_CHECK_OUTPUT);
      continue;
    }
    const [key, ...rest] = line.split(" ");
    const value = rest.join(" ");
    if (key === "image") imageId = value;
    else if (key === "trial") trial = value === "yes";
    else if (key === "status" && STATUSES.includes(value)) status = value as HealthStatus;
    else if (key === "uptime" && /^\d+$/.test(value)) uptimeSeconds = Number(value);
    else if (key === "check") {
      const m = /^(\S+) (ok|failed.*)$/.exec(value);
      if (m && checks.length < MAX_CHECKS) checks.push({ name: m[1]!, ok: m[2] === "ok", result: m[2]!, output: "" });
    }
  }
  if (imageId === undefined || status === undefined) return undefined;
  return { imageId, trial, status, ...(uptimeSeconds !== undefined ? { uptimeSeconds } : {}), checks };
}

/** The failed checks with their output, one block each, for an error message. */
export function describeFailedChecks(report: HealthReport): string {
  const failed = report.checks.filter((c) => !c.ok);
  if (failed.length === 0) return "no check failed";
  return failed
    .map(
      (c) => `check ${c.name} ${c.result}${c.output === "" ? " (no output)" : `:\n${c.output.replace(/^/gm, "    ")}`}`,
    )
    .join("\n");
}
