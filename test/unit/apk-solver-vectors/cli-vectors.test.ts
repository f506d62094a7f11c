/**
 * The same apk-tools vectors through the command line, as a user runs them:
 *   ramroot apk resolve --allow-untrusted --repository data/X.repo PKG...   (plain APKINDEX text)
 *   ramroot apk version -t < pairs of version.data
 * commander is ESM-only and jest loads CommonJS, so the CLI is compiled by tsc into a scratch
 * directory and started with Node, as the real program (test/fixtures/ramroot-cli.ts).
 */
import * as path from "node:path";
import { type CompiledCli, compileCli } from "../../fixtures/ramroot-cli";
import { apkOutput, DATA_DIR, installLines, readVector, readVersionData, vectorFiles } from "./vector-file";

let cli: CompiledCli;
beforeAll(async () => {
  cli = await compileCli();
}, 180_000);
afterAll(() => cli?.dispose());

const withRepos = vectorFiles()
  .map(readVector)
  .filter((v) => v.repos.length > 0);

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
