/**
 * The same apk-tools vectors through the command line, as a user runs them:
 *   ramroot apk resolve --allow-untrusted --repository data/X.repo PKG...   (plain APKINDEX text)
 *   ramroot apk version -t < pairs of version.data
 * commander is ESM-only and jest loads CommonJS, so the CLI is compiled by tsc into a scratch
 * directory and started with Node, as the real program (test/fixtures/ramroot-cli.ts).
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { type CompiledCli, compileCli } from "../../fixtures/ramroot-cli";
import {
  apkOutput,
  DATA_DIR,
  installLines,
  readVector,
  readVersionData,
  vectorFiles,
  vectorRepository,
} from "./vector-file";

// Every case starts the compiled CLI (a Node process): seconds each on a loaded machine.
jest.setTimeout(60_000);

let cli: CompiledCli;
beforeAll(async () => {
  cli = await compileCli();
}, 180_000);
afterAll(() => cli?.dispose());

const vectors = vectorFiles().map(readVector);
/** Cases from an installed database and world, or with pinned (tagged) repositories. */
const stateful = vectors.filter((v) => v.needsInstalled || v.repos.some((r) => r.startsWith("@")));
const withRepos = vectors.filter((v) => v.repos.length > 0 && !stateful.includes(v));

test.each(stateful.map((v) => [v.name, v] as const))(
  "%s: ramroot apk resolve --installed --world answers as apk add/del/upgrade",
  async (_name, v) => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "ramroot-vector-"));
    try {
      const world = path.join(tmp, "world");
      fs.writeFileSync(world, v.world.map((w) => `${w}\n`).join(""));
      const args = ["apk", "resolve", "--allow-untrusted", "--arch", "x86_64", "--world", world];
      if (v.installed) args.push("--installed", path.join(DATA_DIR, v.installed));
      for (const entry of v.repos) {
        const { file, tag } = vectorRepository(entry);
        args.push("--repository", tag ? `@${tag} ${path.join(DATA_DIR, file)}` : path.join(DATA_DIR, file));
      }
      if (v.applet === "upgrade") args.push("--upgrade");
      if (v.options.includes("--upgrade")) args.push("--upgrade-packages");
      if (v.options.includes("--latest")) args.push("--latest");
      if (v.options.includes("-a")) args.push("--available");
      if (v.applet === "del") for (const p of v.packages) args.push("--del", p);
      else args.push(...v.packages);
      const r = await cli.run(args);
      const want = apkOutput(v);
      if (want.startsWith("ERROR: ")) {
        expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 1, stderr: want + "\n" });
        return;
      }
      expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: "" });
      expect((JSON.parse(r.stdout) as { changes: string[] }).changes.join("\n")).toBe(want);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  },
);

test.each(withRepos.map((v) => [v.name, v] as const))("%s: ramroot apk resolve answers as apk", async (_name, v) => {
  const args = ["apk", "resolve", "--allow-untrusted", "--arch", "x86_64"];
  for (const r of v.repos) args.push("--repository", path.join(DATA_DIR, r));
  const r = await cli.run([...args, ...v.packages]);
  const want = apkOutput(v);
  if (want.startsWith("ERROR: ")) {
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 1, stderr: want + "\n" });
    return;
  }
  expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: "" });
  const out = JSON.parse(r.stdout) as { installOrder: string[]; packages: Array<{ name: string; version: string }> };
  const version = new Map(out.packages.map((p) => [p.name, p.version]));
  expect(installLines(out.installOrder.map((name) => ({ name, version: version.get(name)! }))).join("\n")).toBe(want);
});

test("ramroot apk version -t agrees with every line of version.data", async () => {
  const pairs = readVersionData();
  const r = await cli.run(["apk", "version", "-t"], pairs.map((p) => `${p.a} ${p.b}\n`).join(""));
  expect(r.code).toBe(0);
  expect(r.stdout).toBe(pairs.map((p) => p.op + "\n").join(""));
});
