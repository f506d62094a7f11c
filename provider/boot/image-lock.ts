import { spawn, type ChildProcessByStdio } from "node:child_process";
import type { Readable, Writable } from "node:stream";
import { HostError, TargetError } from "../ramroot-error";
import { LOCK_WAIT_SECONDS } from "./mtools";

/**
 * The image file's exclusive lock (flock(2)), the same every mtools command here runs under,
 * taken and released as often as reads need it without starting a process from here per turn
 * (~15 ms each on a small machine): one `sh` holds the image open on fd 9 for the target's life,
 * runs util-linux's `flock 9` when asked on its stdin, and lets the lock go by closing fd 9 and
 * opening it again (no process). Its lock is on its own open file, so an mtools command (`flock
 * image mcopy ...`, another open) waits for it as for any other holder. If this process dies, the shell reads EOF and exits: the lock goes.
 * Turns are taken one at a time in this process (flock on the same open file would not exclude
 * a second turn), and an mtools command must never be run inside one (it would wait for us).
 */
const HOLDER = `exec 9<"$1" || exit 1
echo ready
while read -r c; do
  case $c in
    L) if flock -w ${LOCK_WAIT_SECONDS} 9; then echo locked; else echo "failed $?"; fi ;;
    U) exec 9<&- && exec 9<"$1" && echo unlocked || echo failed ;;
  esac
done`;

/** A child's pipe is a net.Socket: it can stop (and start again) keeping the event loop alive. */
function refOf(stream: Readable | Writable): { ref?: () => void; unref?: () => void } {
  return stream as unknown as { ref?: () => void; unref?: () => void };
}

/** One running holder: its process and the answer lines it has sent that nobody has taken yet. */
class Holder {
  private lines: string[] = [];
  private waiting: ((line: string) => void) | undefined;
  readonly child: ChildProcessByStdio<Writable, Readable, null>;

  constructor(image: string) {
    this.child = spawn("sh", ["-c", HOLDER, "sh", image], {
      stdio: ["pipe", "pipe", "ignore"],
      env: { ...process.env },
    });
    let rest = "";
    this.child.stdout.setEncoding("utf8");
    this.child.stdout.on("data", (chunk: string) => {
      const parts = (rest + chunk).split("\n");
      rest = parts.pop() ?? "";
      this.lines.push(...parts);
      this.deliver();
    });
    // An ended holder answers "" to everything.
    this.child.once("close", () => {
      this.lines.push("");
      this.ended = true;
      this.deliver();
    });
    this.child.once("error", () => undefined);
    // A holder that died meanwhile answers "" (above); writing to it must not throw.
    this.child.stdin.on("error", () => undefined);
    // Idle, the holder keeps nothing alive: a process that forgets close() still exits (and the shell with it).
    this.child.unref();
    refOf(this.child.stdout).unref?.();
    refOf(this.child.stdin).unref?.();
  }

  private ended = false;

  private deliver(): void {
    if (!this.waiting) return;
    const line = this.lines.length > 0 ? this.lines.shift() : this.ended ? "" : undefined;
    if (line === undefined) return;
    const resolve = this.waiting;
    this.waiting = undefined;
    resolve(line);
  }

  /** Sends `command` (none: just reads the next line) and waits for the answer. */
  async ask(command?: string): Promise<string> {
    const stdout = refOf(this.child.stdout);
    stdout.ref?.();
    try {
      const answer = new Promise<string>((resolve) => {
        this.waiting = resolve;
        this.deliver();
      });
      if (command !== undefined && !this.ended) this.child.stdin.write(`${command}\n`);
      return await answer;
    } finally {
      stdout.unref?.();
    }
  }

  end(): void {
    this.child.stdin.end();
  }
}

export class ImageLock {
  private holder: Holder | undefined;
  private turns: Promise<unknown> = Promise.resolve();

  constructor(private readonly image: string) {}

  /** Runs `fn` while this process holds the image's lock; turns in this process run one after another. */
  async hold<T>(fn: () => Promise<T>): Promise<T> {
    const turn = this.turns.then(() => this.locked(fn));
    this.turns = turn.catch(() => undefined);
    return turn;
  }

  private async locked<T>(fn: () => Promise<T>): Promise<T> {
    let holder = this.holder;
    if (!holder) {
      holder = new Holder(this.image);
      const ready = await holder.ask();
      if (ready !== "ready") {
        holder.end();
        throw new HostError(
          `cannot lock ${this.image}: the lock holder (sh) ${ready ? `said ${JSON.stringify(ready)}` : "ended"}`,
          "check that the image is readable and that util-linux's flock is installed",
        );
      }
      this.holder = holder;
    }
    const answer = await holder.ask("L");
    if (answer !== "locked") {
      this.close();
      if (answer === "failed 127") throw new HostError("flock is missing", "install Debian's util-linux");
      throw new TargetError(
        `${this.image}: its lock was not free within ${LOCK_WAIT_SECONDS} s (${answer || "the lock holder ended"})`,
        "another process is writing the image: let it finish, or find it with `fuser -v` on the image",
      );
    }
    try {
      return await fn();
    } finally {
      if ((await holder.ask("U")) !== "unlocked") this.close();
    }
  }

  /** Ends the holder (its lock, if held, goes with it). */
  close(): void {
    this.holder?.end();
    this.holder = undefined;
  }
}
