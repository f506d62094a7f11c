/**
 * Progress of the steps that take more than a few seconds (packages fetched and installed, MiB
 * packed and compressed, a boot test waiting for its marker). Steps report to a sink, a
 * function taking one line: the CLI's sink rewrites one line in place on a terminal and prints
 * plain lines otherwise; the provider's sink is the engine log, so `pulumi up` shows it next to
 * the resource. Counters are throttled so a long step prints a line every few seconds, not
 * one per chunk.
 */

/** `transient`: a counter's intermediate line, which the next line may replace on a terminal. */
export type ProgressSink = (line: string, transient?: boolean) => void;

export interface Counter {
  /** `n` more done (default 1); `detail` names what was just done ("busybox-1.36.1-r0") */
  add(n?: number, detail?: string): void;
  /** the final line, always printed */
  done(detail?: string): void;
}

export interface CounterOptions {
  /** "bytes" prints MiB; "items" prints the count */
  unit?: "items" | "bytes";
  /** the least time between two lines (the first and the final one are always printed) */
  intervalMs?: number;
  /** print the first line only after an interval (a step that ends sooner stays silent) */
  startQuiet?: boolean;
  now?: () => number;
}

const mib = (n: number) => (n / (1 << 20)).toFixed(1);

/** "fetched 12/40 packages", "packed 64.0/312.5 MiB", with the current item when given. */
export function counter(
  sink: ProgressSink,
  label: string,
  total: number | undefined,
  opts: CounterOptions = {},
): Counter {
  const unit = opts.unit ?? "items";
  const interval = opts.intervalMs ?? 2000;
  const now = opts.now ?? Date.now;
  let done = 0;
  let last = opts.startQuiet ? now() : -Infinity;
  const line = (detail?: string) => {
    const amount =
      unit === "bytes"
        ? `${mib(done)}${total !== undefined ? `/${mib(total)}` : ""} MiB`
        : `${done}${total !== undefined ? `/${total}` : ""}`;
    return `${label} ${amount}${detail ? `: ${detail}` : ""}`;
  };
  return {
    add(n = 1, detail) {
      done += n;
      const t = now();
      if (t - last >= interval || (total !== undefined && done >= total && !opts.startQuiet)) {
        last = t;
        sink(line(detail), true);
      }
    },
    done(detail) {
      sink(line(detail));
    },
  };
}

/** Calls `tick(seconds)` every `everyMs` until `stop()`; for waits with nothing to count. */
export function heartbeat(
  tick: (seconds: number) => void,
  everyMs = 10_000,
  now: () => number = Date.now,
): { stop(): void } {
  const start = now();
  const timer = setInterval(() => tick(Math.round((now() - start) / 1000)), everyMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}

/**
 * The CLI's sink: on a terminal a transient line is rewritten in place by the next one; elsewhere
 * (pipes, logs, CI) every line is a plain line with a prefix.
 */
export function terminalSink(stream: NodeJS.WriteStream = process.stderr, prefix = "[ramroot] "): ProgressSink {
  if (!stream.isTTY) return (line) => void stream.write(`${prefix}${line}\n`);
  return (line, transient) => {
    const width = Math.max(20, (stream.columns ?? 80) - 1);
    const text = `${prefix}${line}`;
    stream.write(`\r\x1b[K${text.length > width ? `${text.slice(0, width - 1)}…` : text}${transient ? "" : "\n"}`);
  };
}
