import * as fs from "node:fs";
import * as path from "node:path";
import ts from "typescript";

// The program side (components/: the typed resource classes, AbSystem, the stack program) is
// what a Pulumi program loads. It may take types from provider/ (erased when compiled) and the
// type tokens, nothing else: the engine runs on the provider's side of the gRPC boundary only.
const ROOT = path.resolve(__dirname, "..", "..", "..");
// the tokens, and the image config's paths made absolute (node:path only), which the provider
// applies to an AbSystem's image the same way
const ALLOWED_PROVIDER_MODULES = ["provider/image/absolute-paths.ts", "provider/resources/tokens.ts"];

/** The module specifiers a file imports at run time (type-only imports and specifiers left out). */
function runtimeImports(file: string): string[] {
  const source = ts.createSourceFile(file, fs.readFileSync(file, "utf8"), ts.ScriptTarget.ES2022, true);
  const out: string[] = [];
  for (const statement of source.statements) {
    if (!ts.isImportDeclaration(statement) && !ts.isExportDeclaration(statement)) continue;
    const spec = statement.moduleSpecifier;
    if (spec === undefined || !ts.isStringLiteral(spec)) continue;
    if (ts.isImportDeclaration(statement)) {
      const clause = statement.importClause;
      if (clause?.isTypeOnly) continue;
      const named = clause?.namedBindings;
      const onlyTypes =
        clause !== undefined &&
        clause.name === undefined &&
        named !== undefined &&
        ts.isNamedImports(named) &&
        named.elements.length > 0 &&
        named.elements.every((e) => e.isTypeOnly);
      if (onlyTypes) continue;
    } else if (statement.isTypeOnly) continue;
    out.push(spec.text);
  }
  return out;
}

/** Every repository file the program side reaches at run time, from `entry`, following relative imports. */
function reachable(entry: string): Set<string> {
  const seen = new Set<string>();
  const visit = (file: string) => {
    const rel = path.relative(ROOT, file);
    if (seen.has(rel)) return;
    seen.add(rel);
    for (const spec of runtimeImports(file)) {
      if (!spec.startsWith(".")) continue;
      const base = path.resolve(path.dirname(file), spec);
      const target = [`${base}.ts`, path.join(base, "index.ts")].find((f) => fs.existsSync(f));
      if (target === undefined) throw new Error(`${rel}: cannot resolve ${spec}`);
      visit(target);
    }
  };
  visit(entry);
  return seen;
}

test("the stack program and the typed classes load no engine code: only types, the tokens and the path rule come from provider/", () => {
  const files = new Set<string>();
  for (const entry of ["index.ts", ...fs.readdirSync(path.join(ROOT, "components")).map((f) => `components/${f}`)])
    for (const f of reachable(path.join(ROOT, entry))) files.add(f);
  expect([...files].filter((f) => f.startsWith("components/")).sort()).toEqual(
    fs
      .readdirSync(path.join(ROOT, "components"))
      .map((f) => `components/${f}`)
      .sort(),
  );
  expect([...files].filter((f) => f.startsWith("provider/")).sort()).toEqual(ALLOWED_PROVIDER_MODULES);
});

test("the check sees a run-time import: the provider's construct loads engine modules", () => {
  const files = reachable(path.join(ROOT, "provider", "resources", "ab-system-component.ts"));
  expect(files.has("provider/deploy/deployment-plan.ts")).toBe(true);
  expect(files.has("components/resources.ts")).toBe(true);
});

test("the provider plugin loads the SDK's resource and output modules, not its root (closure serialisation, TypeScript)", () => {
  const files = reachable(path.join(ROOT, "provider", "resources", "main.ts"));
  expect(files.has("components/pulumi-sdk.ts")).toBe(true);
  const root = [...files].filter((f) => runtimeImports(path.join(ROOT, f)).includes("@pulumi/pulumi"));
  expect(root).toEqual([]);
});
