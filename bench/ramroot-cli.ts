/**
 * The ramroot CLI compiled with the benchmarks (the same sources, in the benchmark's own output
 * directory), run as its own process the way a user runs `ramroot ...`.
 */
import * as path from "node:path";
import { execa } from "execa";

/** provider/cli/main.js next to this file's compiled bench/ directory. */
export const CLI_MAIN = path.resolve(__dirname, "..", "provider", "cli", "main.js");

/** node + a one-line launcher equivalent to bin/ramroot.js, pointing at CLI_MAIN. */
export function cliCommand(args: string[]): [string, string[]] {
  const script = `require(${JSON.stringify(CLI_MAIN)}).main(["node", "ramroot", ...process.argv.slice(1)]).catch((e) => { console.error("ramroot: " + (e && e.message ? e.message : e)); process.exit(1); });`;
  return [process.execPath, ["-e", script, ...args]];
}

export async function ramrootCli(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ stdout: string; stderr: string }> {
  const [file, argv] = cliCommand(args);
  const r = await execa(file, argv, { env, reject: false, maxBuffer: 64 * 1024 * 1024 });
  if (r.exitCode !== 0)
    throw new Error(`ramroot ${args.join(" ")} failed (exit ${r.exitCode}): ${String(r.stderr).trim().slice(-2000)}`);
  return { stdout: String(r.stdout), stderr: String(r.stderr) };
}
