// `npm run test:fast`: the unit tests and the engine tests that boot no QEMU, for running while
// working (README "Tests"); `npm test` runs everything. jest.config.js reads this when
// RAMROOT_TEST_TIER=fast and leaves out `bootsQemu` and `slow`; test/unit/shared/fast-tier.test.ts
// checks `bootsQemu` against what the engine tests do (a boot test in their stack config, or QEMU
// booted by the test).
module.exports = {
  roots: ["test/unit", "test/engine"],
  bootsQemu: [
    "test/engine/ab-system.test.ts",
    "test/engine/lifecycle.test.ts",
    "test/engine/rollback-pin.test.ts",
    "test/engine/yaml-program.test.ts",
  ],
  // Engine tests that boot nothing but take minutes (several `pulumi up` that each build images):
  // left to `npm test`, to keep this tier under 5 minutes.
  slow: ["test/engine/two-machines.test.ts"],
};
