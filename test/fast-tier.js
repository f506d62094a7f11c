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
    "test/engine/secure-boot-system.test.ts",
    "test/engine/yaml-program.test.ts",
  ],
  // Engine tests that boot nothing but take a minute or more each (several previews and `pulumi up`
  // that each build images and start the provider): left to `npm test`, to keep this tier under 5
  // minutes on 2 cores (on a quiet machine: 390 s in all with them; 290 s with all but
  // machine-secrets left out). What covers them meanwhile: the A/B rule's whole table is
  // test/unit/deploy/ab-decision, the UEFI entries test/unit/boot, secrets in the state
  // test/engine/secret-commands and test/unit/apk-logic/private-keys.
  slow: [
    "test/engine/ab-rule.test.ts",
    "test/engine/machine-secrets.test.ts",
    "test/engine/two-machines.test.ts",
    "test/engine/uefi-system.test.ts",
  ],
};
