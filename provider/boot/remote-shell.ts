/**
 * One shell on the remote machine that runs every command of an ssh session, so a command costs
 * one round trip (a request line out, a framed reply back) instead of a new ssh channel, a login
 * shell and its exit (about 90 ms each on a LAN). The requests go one at a time.
 *
 * Protocol: each request is two lines, the script and its stdin, each base64 (an empty line for no
 * input). The shell writes the script to a file in its private directory, runs it in a subshell
 * (its `exit`, traps and `set -e` its own, as under ssh) with its output in files there, then answers with a line
 * `<exit code> <stdout bytes> <stderr bytes>` followed by those bytes. `read` in a POSIX shell
 * reads a line byte by byte, so nothing after the request is consumed; output lengths are known
 * before they are sent, so binary output needs no escaping.
 */
import type { ChildProcess } from "node:child_process";
import type { CommandResult } from "./boot-target";
import { TargetError } from "../ramroot-error";

/** Input larger than this does not go through the shell (its base64 line is read a byte at a time): see `fits`. */
export const SHELL_INPUT_MAX = 64 * 1024;

/** The loop the remote `sh -c` runs; it ends when its stdin ends (the connection closed). */
export const REMOTE_SHELL_LOOP = [
  "umask 077",
  "d=$(mktemp -d) || exit 1",
  `trap 'rm -rf "$d"' EXIT`,
  // Few processes per request (each costs a fork, slow on a small or emulated CPU): base64, a
  // subshell that sources the script (no new sh to exec), wc and cat; the lines go to base64 as
  // here-documents, and only a request with input decodes it.
  "while IFS= read -r s && IFS= read -r i; do",
  '  base64 -d > "$d/s" <<EOF || exit 1',
  "$s",
  "EOF",
  '  if [ -n "$i" ]; then',
  '    base64 -d <<EOF | (. "$d/s") > "$d/o" 2> "$d/e"',
  "$i",
  "EOF",
  "  else",
  '    (. "$d/s") < /dev/null > "$d/o" 2> "$d/e"',
  "  fi",
  "  c=$?",
  '  set -- $(wc -c "$d/o" "$d/e")',
  '  printf "%s %s %s\\n" "$c" "$1" "$3"',
  '  cat "$d/o" "$d/e"',
  "done",
].join("\n");

interface Pending {
  resolve(result: CommandResult): void;
  reject(err: Error): void;
}

/** Framed replies parsed out of the shell's stdout as they arrive. */
class ReplyReader {
  private buffer: Buffer = Buffer.alloc(0);
  private header: { code: number; out: number; err: number } | undefined;

  /** Adds bytes; returns the replies now complete. */
  push(chunk: Buffer): CommandResult[] {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    const done: CommandResult[] = [];
    for (;;) {
      if (!this.header) {
        const nl = this.buffer.indexOf(10);
        if (nl < 0) break;
        const line = this.buffer.subarray(0, nl).toString("latin1");
        const m = /^(\d+) (\d+) (\d+)$/.exec(line);
        if (!m)
          throw new TargetError(
            `the remote shell answered ${JSON.stringify(line.slice(0, 80))}; expected a reply header`,
          );
        this.header = { code: Number(m[1]), out: Number(m[2]), err: Number(m[3]) };
        this.buffer = this.buffer.subarray(nl + 1);
      }
      const { code, out, err } = this.header;
      if (this.buffer.length < out + err) break;
      done.push({
        exitCode: code,
        stdout: Buffer.from(this.buffer.subarray(0, out)),
        stderr: this.buffer.subarray(out, out + err).toString("utf8"),
      });
      this.buffer = this.buffer.subarray(out + err);
      this.header = undefined;
    }
    return done;
  }
}

export class RemoteShell {
  private readonly queue: Pending[] = [];
  private readonly reader = new ReplyReader();
  private ended: Error | undefined;
  private stderr = "";

  /** `child`: an ssh process running REMOTE_SHELL_LOOP with piped stdin, stdout and stderr. */
  constructor(
    private readonly child: ChildProcess,
    private readonly describe: string,
  ) {
    child.stdout!.on("data", (chunk: Buffer) => {
      let replies: CommandResult[];
      try {
        replies = this.reader.push(chunk);
      } catch (err) {
        this.fail(err as Error);
        return;
      }
      for (const reply of replies) this.queue.shift()?.resolve(reply);
    });
    child.stderr!.on("data", (chunk: Buffer) => {
      this.stderr = (this.stderr + chunk.toString("utf8")).slice(-4000);
    });
    child.stdin!.on("error", () => {});
    child.on("error", (err) => this.fail(err));
    child.on("close", (code, signal) =>
      this.fail(
        new Error(
          `${this.describe}: ssh failed${signal ? ` (killed by ${signal})` : ""}: ${this.stderr.trim() || (code === 0 ? "the remote shell ended" : "connection lost")}`,
        ),
      ),
    );
  }

  /** False once the shell or its connection ended: a new one is needed. */
  get alive(): boolean {
    return this.ended === undefined;
  }

  /** Whether `input` may go through the shell (else it needs a channel of its own). */
  static fits(input: Buffer | string | undefined): boolean {
    return input === undefined || Buffer.byteLength(input) <= SHELL_INPUT_MAX;
  }

  /** Runs `script` with `input` on its stdin; resolves with its exit code and output, rejects when the shell ends. */
  run(script: string, input?: Buffer | string): Promise<CommandResult> {
    if (this.ended) return Promise.reject(this.ended);
    const line = (data: Buffer | string) => Buffer.from(data).toString("base64");
    return new Promise<CommandResult>((resolve, reject) => {
      this.queue.push({ resolve, reject });
      this.child.stdin!.write(`${line(script)}\n${input === undefined ? "" : line(input)}\n`);
    });
  }

  /** Ends the shell: its stdin closed (the remote loop ends), the process killed with `signal` when given. */
  end(signal?: NodeJS.Signals): void {
    this.child.stdin!.end();
    if (signal) this.child.kill(signal);
  }

  private fail(err: Error): void {
    this.ended ??= err;
    for (const pending of this.queue.splice(0)) pending.reject(this.ended);
  }
}
