/**
 * The parts of the Pulumi Node SDK that resource classes and components use (resources and
 * outputs), from the SDK's own modules. The package root loads the whole SDK, closure
 * serialisation and TypeScript among it: ~0.4 s of CPU every time the provider plugin starts,
 * which is every preview (bench/analysis.md, "Preview"). A program's language host loads the
 * root anyway; the provider, which declares AbSystem's children through these classes, need not.
 */
export * from "@pulumi/pulumi/resource";
export * from "@pulumi/pulumi/output";
