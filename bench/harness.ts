/**
 * Timing rules for every benchmark: the variants of one comparison run in the same process,
 * alternating (round i starts with variant i mod n, so no variant always runs first on a cold
 * page cache), several rounds, and the medians are compared. Peak memory comes from GNU time
 * (`/usr/bin/time -f %M`), which reports the largest resident set among the processes it waited
 * for, so a shell pipeline reports its largest stage.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { execa } from "execa";

export interface Sample {
  seconds: number;
  /** peak resident set, KiB */
  peakKiB?: number;
  /** user + system CPU seconds (GNU time), which a loaded machine changes less than wall time */
  cpuSeconds?: number;
  /** output bytes, when the variant produces a file */
  bytes?: number;
  /** what a command printed, for checks (not kept in the results) */
  stdout?: string;
}

export interface Variant {
  label: string;
  /** the command as a reader would type it, for RESULTS.md */
  command: string;
  /** prepare state before a run (not timed) */
  before?: () => Promise<void> | void;
  run: () => Promise<Sample>;
  /** check a run's result (not timed); throw when it is wrong */
  check?: (sample: Sample) => Promise<void> | void;
}

export interface VariantResult {
  label: string;
  command: string;
  samples: Sample[];
  medianSeconds: number;
  medianPeakKiB?: number;
  medianCpuSeconds?: number;
  /** bytes of the last run's output (all runs must agree for deterministic variants) */
  bytes?: number;
}

export function median(values: number[]): number {
  if (values.length === 0) throw new Error("median of no values");
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export async function alternate(variants: Variant[], runs: number, log: (m: string) => void): Promise<VariantResult[]> {
  const samples: Sample[][] = variants.map(() => []);
  for (let round = 0; round < runs; round++) {
    for (let k = 0; k < variants.length; k++) {
      const i = (round + k) % variants.length;
      const v = variants[i]!;
      await v.before?.();
      const sample = await v.run();
      await v.check?.(sample);
      samples[i]!.push({
        seconds: sample.seconds,
        peakKiB: sample.peakKiB,
        cpuSeconds: sample.cpuSeconds,
        bytes: sample.bytes,
      });
      log(
        `  [${round + 1}/${runs}] ${v.label}: ${sample.seconds.toFixed(2)} s${sample.peakKiB ? `, peak ${(sample.peakKiB / 1024).toFixed(0)} MiB` : ""}${sample.bytes !== undefined ? `, ${sample.bytes} bytes` : ""}`,
      );
    }
  }
  return variants.map((v, i) => {
    const s = samples[i]!;
    const peaks = s.map((x) => x.peakKiB).filter((x): x is number => x !== undefined);
    const cpu = s.map((x) => x.cpuSeconds).filter((x): x is number => x !== undefined);
    return {
      label: v.label,
      command: v.command,
      samples: s,
      medianSeconds: median(s.map((x) => x.seconds)),
      medianPeakKiB: peaks.length > 0 ? median(peaks) : undefined,
      medianCpuSeconds: cpu.length > 0 ? median(cpu) : undefined,
      bytes: s[s.length - 1]?.bytes,
    };
  });
}

/**
 * Runs a command under GNU time; resolves to wall seconds (measured here) and peak RSS.
 * `output` names a file the command writes, whose size becomes `bytes`.
 */
export async function timeCommand(
  file: string,
  args: string[],
  opts: { cwd?: string; env?: Record<string, string>; output?: string; stdout?: string } = {},
): Promise<Sample & { stdout: string; stderr: string }> {
  const rssFile = path.join(os.tmpdir(), `ramroot-bench-rss-${process.pid}`);
  const started = process.hrtime.bigint();
  const result = await execa("/usr/bin/time", ["-f", "%M %U %S", "-o", rssFile, file, ...args], {
    cwd: opts.cwd,
    env: opts.env,
    reject: false,
    maxBuffer: 256 * 1024 * 1024,
    ...(opts.stdout ? { stdout: { file: opts.stdout } } : {}),
  });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const rssText = fs.readFileSync(rssFile, "utf8");
  fs.rmSync(rssFile, { force: true });
  if (result.exitCode !== 0) {
    throw new Error(
      `${file} ${args.join(" ")} failed (exit ${result.exitCode}): ${String(result.stderr).trim().slice(-2000)}`,
    );
  }
  // time prints "Command exited with non-zero status" lines before its own when the command fails.
  const [peak, user, system] = (rssText.trim().split("\n").pop() ?? "").split(" ").map(Number);
  const cpuSeconds =
    user !== undefined && system !== undefined && Number.isFinite(user + system) ? user + system : undefined;
  const out = opts.output ?? opts.stdout;
  return {
    seconds,
    peakKiB: peak !== undefined && Number.isFinite(peak) ? peak : undefined,
    cpuSeconds,
    bytes: out ? fs.statSync(out).size : undefined,
    stdout: typeof result.stdout === "string" ? result.stdout : "",
    stderr: String(result.stderr),
  };
}

/** A shell pipeline under GNU time (bash -c), as a user would type it. */
export function timeShell(script: string, opts: { cwd?: string; env?: Record<string, string>; output?: string } = {}) {
  return timeCommand("bash", ["-o", "pipefail", "-c", script], opts);
}

/**
 * Per round, `label`'s figure over `baseline`'s (round i's samples ran one right after the
 * other, so a load that drifts during the run cancels out): e.g. "0.61-0.74x (5 rounds)".
 */
export function roundRatios(
  rows: VariantResult[],
  label: string,
  baseline: string,
  pick: (s: Sample) => number | undefined,
): string {
  const a = rows.find((r) => r.label === label)?.samples ?? [];
  const b = rows.find((r) => r.label === baseline)?.samples ?? [];
  const ratios: number[] = [];
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const x = pick(a[i]!);
    const y = pick(b[i]!);
    if (x !== undefined && y !== undefined && y > 0) ratios.push(x / y);
  }
  if (ratios.length === 0) return "-";
  const lo = Math.min(...ratios).toFixed(2);
  const hi = Math.max(...ratios).toFixed(2);
  return `${lo === hi ? lo : `${lo}-${hi}`}x (${ratios.length} rounds)`;
}
