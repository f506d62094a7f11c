// Jest runs TypeScript through SWC. execa and its helper packages ship ESM only, so they are
// transformed too (and the one helper that exports only an "import" condition is mapped to
// its file); every other package is loaded as published.
const esmOnly = [
  "execa",
  "figures",
  "get-stream",
  "human-signals",
  "is-plain-obj",
  "is-stream",
  "is-unicode-supported",
  "npm-run-path",
  "parse-ms",
  "path-key",
  "pretty-ms",
  "strip-final-newline",
  "unicorn-magic",
  "which-command",
  "yoctocolors",
  "@sec-ant/readable-stream",
  "@sindresorhus/merge-streams",
  "commander",
];
// Every image a test builds (in process, through `ramroot build`, through the provider plugin the
// pulumi CLI starts) is read back through cpio-stream and compared with the staging tree it was
// packed from; a mismatch fails the build (provider/image/archive-check.ts). Set here, in jest's
// own process, so the workers and every process they start inherit it.
process.env.RAMROOT_CHECK_ARCHIVES ??= "1";

// `npm run test:fast` (RAMROOT_TEST_TIER=fast): the unit tests and the engine tests that boot no
// QEMU, but for the few slow ones (test/fast-tier.js).
const fastTier = process.env.RAMROOT_TEST_TIER === "fast" ? require("./test/fast-tier.js") : undefined;
const escape = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
const fast = fastTier && {
  roots: fastTier.roots.map((r) => `<rootDir>/${r}`),
  testPathIgnorePatterns: [
    "/node_modules/",
    ...[...fastTier.bootsQemu, ...fastTier.slow].map((f) => `<rootDir>/${escape(f)}$`),
  ],
};

module.exports = {
  testEnvironment: "node",
  transform: { "^.+\\.[mc]?[tj]sx?$": ["@swc/jest"] },
  transformIgnorePatterns: [`/node_modules/(?!(${esmOnly.join("|")})/)`],
  moduleNameMapper: { "^unicorn-magic$": "<rootDir>/node_modules/unicorn-magic/node.js" },
  roots: ["<rootDir>/test"],
  // A hang guard, not a speed limit: jest's 5 s default failed CLI and compression tests on a
  // busy machine. Slow suites set their own with jest.setTimeout.
  testTimeout: 120_000,
  // Every test holds whatever ran before it: a file's tests run in a new order each time (the
  // seed is printed; `--seed=N` repeats it). A flow that is one scenario is one test with named
  // steps (test/fixtures/scenario-step.ts).
  randomize: true,
  // Both tiers: a worker per core. A test's work is mostly in the processes it starts (pulumi,
  // the plugin, the CLI, QEMU, sshd), where jest's default (cores - 1: one worker on two cores)
  // leaves a core to jest's own, mostly idle, main process. Every test keeps to its own
  // directories, ports and stacks, and fixture caches are published atomically
  // (test/fixtures/cache.ts), so files run side by side.
  maxWorkers: require("node:os").availableParallelism(),
  ...fast,
};
