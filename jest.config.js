// Jest runs TypeScript through SWC. execa and a few of its helpers ship ESM only, so
// node_modules is transformed as well (SWC caches it), and the one helper that only
// exports an "import" condition is mapped to its file.
module.exports = {
  testEnvironment: "node",
  transform: { "^.+\\.[mc]?[tj]sx?$": ["@swc/jest"] },
  transformIgnorePatterns: [],
  moduleNameMapper: { "^unicorn-magic$": "<rootDir>/node_modules/unicorn-magic/node.js" },
  roots: ["<rootDir>/test"],
};
