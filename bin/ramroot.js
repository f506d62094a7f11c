#!/usr/bin/env node
// The `ramroot` command. The TypeScript sources are compiled to dist/ by `npm run build`
// (the setup does it); this file only hands over to the compiled CLI, under Node >= 22:
// when the Node running it is older, it runs itself again with the Node the setup provided.
"use strict";
const path = require("node:path");
const fs = require("node:fs");
const os = require("node:os");

const root = path.join(__dirname, "..");
const entry = path.join(root, "dist", "provider", "cli", "main.js");
const major = Number(process.versions.node.split(".")[0]);

function setupNode() {
  if (process.env.RAMROOT_NODE && fs.existsSync(process.env.RAMROOT_NODE)) return process.env.RAMROOT_NODE;
  const dir = path.join(process.env.RAMROOT_CACHE || path.join(os.homedir(), ".cache", "ramroot"), "node");
  const found = fs.existsSync(dir)
    ? fs
        .readdirSync(dir)
        .filter((d) => d.startsWith("node-"))
        .sort()
        .reverse()
    : [];
  for (const d of found) {
    const node = path.join(dir, d, "bin", "node");
    if (fs.existsSync(node)) return node;
  }
  return undefined;
}

// The launcher's end (even SIGKILL) ends the run it started: it holds a pipe to the child's fd 3,
// and the child stops itself (SIGTERM: its exit path runs) when the pipe closes.
const LAUNCHER_FD = "RAMROOT_LAUNCHER_FD";
if (process.env[LAUNCHER_FD] === "3") {
  delete process.env[LAUNCHER_FD];
  const net = require("node:net");
  const launcher = new net.Socket({ fd: 3, readable: true, writable: false });
  launcher.on("error", () => {});
  launcher.on("close", () => process.kill(process.pid, "SIGTERM"));
  launcher.resume();
  launcher.unref();
}

if (major < 22) {
  const node = setupNode();
  if (!node || node === process.execPath) {
    console.error(`ramroot: needs Node >= 22, this is ${process.version}; run \`npm run setup\``);
    process.exit(2);
  }
  // Loaded only here: node:child_process costs every run on a current Node a few ms to load.
  const { spawnSync } = require("node:child_process");
  const result = spawnSync(node, [__filename, ...process.argv.slice(2)], {
    stdio: ["inherit", "inherit", "inherit", "pipe"],
    env: { ...process.env, [LAUNCHER_FD]: "3" },
  });
  process.exit(result.status === null ? 1 : result.status);
}
if (!fs.existsSync(entry)) {
  console.error(`ramroot: ${entry} is missing; run \`npm run setup\` (or \`npm run build\`) first`);
  process.exit(2);
}
require(entry)
  .main(process.argv)
  .catch((err) => {
    console.error(`ramroot: ${err && err.message ? err.message : err}`);
    process.exit(1);
  });
