import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";

// The provider plugin as the engine starts it (the compiled plugin, `npm run build`) ends on
// SIGTERM and SIGINT while it serves, as the engine's shutdown and `pulumi cancel` expect.
jest.setTimeout(120_000);

const PLUGIN = path.resolve(__dirname, "..", "..", "provider", "plugin", "pulumi-resource-ramroot");

test.each([
  ["SIGTERM", 143],
  ["SIGINT", 130],
] as const)("the plugin ends on %s", async (signal, code) => {
  expect(fs.existsSync(PLUGIN)).toBe(true);
  const child = spawn(PLUGIN, [], { stdio: ["ignore", "pipe", "pipe"] });
  const port = await new Promise<string>((resolve, reject) => {
    child.stdout.once("data", (d: Buffer) => resolve(d.toString().trim()));
    child.once("exit", (c) => reject(new Error(`the plugin exited ${c} before it listened`)));
  });
  expect(port).toMatch(/^\d+$/);
  const exited = new Promise<number | null>((resolve) => child.once("exit", (c) => resolve(c)));
  child.kill(signal);
  expect(await exited).toBe(code);
});
