import { PassThrough } from "node:stream";
import { counter, terminalSink } from "../../../provider/progress";
import { errorLine } from "../../../provider/cli/error-line";

test("a counter prints its first line, then at most one per interval, always the last item and the final line", () => {
  const lines: [string, boolean | undefined][] = [];
  let now = 0;
  const c = counter((l, t) => lines.push([l, t]), "packages fetched", 5, { intervalMs: 1000, now: () => now });
  c.add(1, "a-1.0-r0");
  now = 500;
  c.add(1, "b-1.0-r0");
  now = 1200;
  c.add(1, "c-1.0-r0");
  now = 1300;
  c.add(1, "d-1.0-r0");
  c.add(1, "e-1.0-r0");
  expect(lines).toEqual([
    ["packages fetched 1/5: a-1.0-r0", true],
    ["packages fetched 3/5: c-1.0-r0", true],
    ["packages fetched 5/5: e-1.0-r0", true],
  ]);
  const bytes: string[] = [];
  const b = counter((l) => bytes.push(l), "packed", undefined, { unit: "bytes", intervalMs: 0 });
  b.add(3 << 20);
  b.done("1.2 MiB gzip");
  expect(bytes).toEqual(["packed 3.0 MiB", "packed 3.0 MiB: 1.2 MiB gzip"]);
});

test("not on a terminal: plain prefixed lines; on a terminal a transient line is rewritten in place", () => {
  const plain = Object.assign(new PassThrough(), { isTTY: false }) as unknown as NodeJS.WriteStream;
  let out = "";
  (plain as unknown as PassThrough).on("data", (d: Buffer) => (out += d.toString()));
  const sink = terminalSink(plain);
  sink("packed 1.0 MiB", true);
  sink("image 3f9c2a1b0c4d");
  expect(out).toBe("[ramroot] packed 1.0 MiB\n[ramroot] image 3f9c2a1b0c4d\n");

  const tty = Object.assign(new PassThrough(), { isTTY: true, columns: 40 }) as unknown as NodeJS.WriteStream;
  let screen = "";
  (tty as unknown as PassThrough).on("data", (d: Buffer) => (screen += d.toString()));
  const t = terminalSink(tty);
  t("packed 1.0 MiB", true);
  t("packed 2.0 MiB", true);
  t("done");
  expect(screen).toBe("\r\x1b[K[ramroot] packed 1.0 MiB\r\x1b[K[ramroot] packed 2.0 MiB\r\x1b[K[ramroot] done\n");
});

test("pulumi's errors become one line with the command that fixes them; ramroot's own errors stay whole", () => {
  const automation = (stderr: string) =>
    new Error(
      `code: -2\n stdout: \n stderr: Command failed with exit code 255: pulumi stack history --json --stack demo --non-interactive\n${stderr}\n err?: Error: Command failed`,
    );
  expect(
    errorLine(
      automation(
        "error: getting secrets manager: passphrase must be set with PULUMI_CONFIG_PASSPHRASE or PULUMI_CONFIG_PASSPHRASE_FILE environment variables",
      ),
    ),
  ).toBe(
    "the stack's secrets need a passphrase and none is set: set PULUMI_CONFIG_PASSPHRASE (or PULUMI_CONFIG_PASSPHRASE_FILE) to the one the stack was made with (the demo stack's is in .ramroot/passphrases/demo, which `npm start` writes)",
  );
  expect(errorLine(automation("error: no stack named 'demo' found"))).toBe(
    'no stack "demo" in this project: `npm start` creates the demo stack; for another one, `pulumi stack init demo` (see `pulumi stack ls`)',
  );
  expect(
    errorLine(automation('error: constructing secrets manager of type "passphrase": incorrect passphrase')),
  ).toMatch(/^the passphrase given does not open this stack's secrets/);
  expect(errorLine(automation("error: something else broke"))).toBe(
    "something else broke (in `pulumi stack history --json --stack demo`; --verbose shows its output)",
  );
  const own =
    'ramroot:image: 2 problems\n  packages[0]: got ""; expected a package name\n  kernel: got "rt"; expected one of lts, virt, none';
  expect(errorLine(new Error(own))).toBe(own);
});

test("a quiet-start counter says nothing for a step shorter than its interval", () => {
  const lines: string[] = [];
  let now = 0;
  const c = counter((l) => lines.push(l), "packed", undefined, {
    unit: "bytes",
    intervalMs: 2000,
    startQuiet: true,
    now: () => now,
  });
  c.add(1 << 20);
  now = 1000;
  c.add(1 << 20);
  expect(lines).toEqual([]);
  now = 2500;
  c.add(1 << 20);
  expect(lines).toEqual(["packed 3.0 MiB"]);
});
