#!/usr/bin/env node
// The `ramroot` command. The TypeScript sources are compiled to dist/ by `npm run build`
// (the setup script does it); this file only hands over to the compiled CLI.
"use strict";
const path = require("node:path");
const fs = require("node:fs");
const entry = path.join(__dirname, "..", "dist", "provider", "cli", "main.js");
if (!fs.existsSync(entry)) {
  console.error(`ramroot: ${entry} is missing; run \`npm run setup\` (or \`npm run build\`) first`);
  process.exit(2);
}
const major = Number(process.versions.node.split(".")[0]);
if (major < 22) {
  console.error(`ramroot: needs Node >= 22, this is ${process.version}; run \`npm run setup\` and \`source .ramroot/env.sh\``);
  process.exit(2);
}
require(entry).main(process.argv).catch((err) => {
  console.error(`ramroot: ${err && err.message ? err.message : err}`);
  process.exit(1);
});
