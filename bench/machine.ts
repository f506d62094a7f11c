/** What the figures came from: CPU, cores, memory, kernel, tool versions. */
import * as fs from "node:fs";
import * as os from "node:os";
import { execFileSync } from "node:child_process";

export interface Machine {
  cpu: string;
  cores: number;
  memoryGiB: number;
  kernel: string;
  node: string;
  kvm: boolean;
  tools: Record<string, string>;
}

function firstLine(cmd: string, args: string[]): string {
  try {
    const out = execFileSync(cmd, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    return (
      out
        .split("\n")
        .find((l) => l.trim() !== "")
        ?.trim() ?? ""
    );
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    return (e.stdout || e.stderr || "not available").split("\n")[0]!.trim();
  }
}

export function machineInfo(tools: Record<string, [string, string[]]>): Machine {
  const cpuinfo = fs.readFileSync("/proc/cpuinfo", "utf8");
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1] ?? "unknown";
  return {
    cpu: model,
    cores: os.availableParallelism(),
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    kvm: fs.existsSync("/dev/kvm"),
    tools: Object.fromEntries(Object.entries(tools).map(([name, [cmd, args]]) => [name, firstLine(cmd, args)])),
  };
}
