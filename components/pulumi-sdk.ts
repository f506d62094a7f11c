/**
 * The parts of the Pulumi Node SDK that resource classes, components and the stack program use
 * (resources, outputs, config), from the SDK's own modules. The package root loads the whole
 * SDK, closure serialisation and TypeScript among it: ~0.4 s of CPU in every process that
 * imports it, and both the provider plugin and the program run on every preview
 * (bench/analysis.md, "Preview"). The language host's own harness does not load the root.
 */
export * from "@pulumi/pulumi/resource";
export * from "@pulumi/pulumi/output";
export { Config } from "@pulumi/pulumi/config";
export * as log from "@pulumi/pulumi/log";
