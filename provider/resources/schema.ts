/**
 * The provider's Pulumi package schema, generated from the zod schemas the resources validate
 * their inputs with: one source for validation, types, docs, defaults and secret flags.
 *
 * zod's JSON Schema (`z.toJSONSchema`, input side) is mapped onto Pulumi's schema dialect:
 * every object becomes a named object type (`ramroot:index:Target`, `...:SyslinuxEntry`), a
 * discriminated union (the target kinds) becomes one object type whose `kind` says which
 * fields apply, string enums become enum types, records become maps, a property whose zod
 * schema carries `.meta({ secret: true })` is flagged `secret`. No input is `Any`.
 */
import { z } from "zod";
import { InternalError } from "../ramroot-error";

type Json = Record<string, unknown>;

/** One resource: its token, what it is, its input and output zod schemas. */
export interface ResourceSchemaSource {
  token: string;
  description: string;
  inputs: z.ZodType;
  outputs: z.ZodType;
  /** names for the object types found at property paths, e.g. { target: "Target" } */
  typeNames?: Record<string, string>;
  /** a component the provider constructs (Construct), e.g. AbSystem */
  isComponent?: boolean;
}

const PACKAGE = "ramroot";

function pascal(text: string): string {
  return text
    .split(/[^A-Za-z0-9]+/)
    .filter((p) => p !== "")
    .map((p) => p[0]!.toUpperCase() + p.slice(1))
    .join("");
}

function isObject(v: unknown): v is Json {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

/** Collects named types while the resources' properties are converted. */
class TypeTable {
  readonly types: Record<string, Json> = {};
  private readonly byContent = new Map<string, string>();

  /** Registers a type under `name`; an identical type already registered (under any name) is reused. */
  add(name: string, spec: Json): string {
    const content = JSON.stringify(spec);
    const known = this.byContent.get(content);
    if (known !== undefined) return known;
    let token = `${PACKAGE}:index:${name}`;
    for (let n = 2; this.types[token] !== undefined; n++) token = `${PACKAGE}:index:${name}${n}`;
    this.types[token] = spec;
    this.byContent.set(content, token);
    return token;
  }
}

/** The parts of a JSON Schema node a Pulumi property keeps: description, default, secret. */
function annotations(node: Json): Json {
  const out: Json = {};
  if (typeof node.description === "string") out.description = node.description;
  if (
    node.default !== undefined &&
    (typeof node.default === "string" || typeof node.default === "number" || typeof node.default === "boolean")
  ) {
    out.default = node.default;
  }
  if (node.secret === true) out.secret = true;
  return out;
}

/** Variants of a union, with a nested union flattened. */
function variantsOf(node: Json): Json[] | undefined {
  const list = (node.oneOf ?? node.anyOf) as Json[] | undefined;
  // A nullable value (zod .nullable()) is its other variant: any Pulumi property may be null.
  return Array.isArray(list) ? list.filter((v) => isObject(v) && v.type !== "null") : undefined;
}

/** Object variants that all carry a `kind`-like const field: one object type with that field as an enum. */
function mergeDiscriminated(variants: Json[]): Json | undefined {
  if (variants.length < 2 || !variants.every((v) => v.type === "object" && isObject(v.properties))) return undefined;
  const first = variants[0]!.properties as Json;
  const discriminator = Object.keys(first).find((key) =>
    variants.every(
      (v) => isObject((v.properties as Json)[key]) && ((v.properties as Json)[key] as Json).const !== undefined,
    ),
  );
  if (discriminator === undefined) return undefined;
  const values = variants.map((v) => ((v.properties as Json)[discriminator] as Json).const as string);
  const properties: Json = {
    [discriminator]: {
      type: "string",
      enum: values,
      description: `one of ${values.join(", ")}: which other fields apply`,
    },
  };
  const usedBy: Record<string, string[]> = {};
  for (const [i, v] of variants.entries()) {
    for (const [key, prop] of Object.entries(v.properties as Json)) {
      if (key === discriminator) continue;
      (usedBy[key] ??= []).push(values[i]!);
      if (properties[key] === undefined) properties[key] = prop;
    }
  }
  for (const [key, kinds] of Object.entries(usedBy)) {
    if (kinds.length === values.length) continue;
    const prop = properties[key] as Json;
    const only = `${discriminator} ${kinds.join(", ")} only`;
    properties[key] = {
      ...prop,
      description: typeof prop.description === "string" ? `${prop.description} (${only})` : only,
    };
  }
  const required = Object.keys(properties).filter((key) =>
    variants.every((v) => Array.isArray(v.required) && (v.required as string[]).includes(key)),
  );
  return {
    type: "object",
    properties,
    required,
    ...(typeof variants[0]!.description === "string" ? { description: variants[0]!.description } : {}),
  };
}

/** Converts one JSON Schema node into a Pulumi type reference; `name` names an object type found here. */
function convert(node: Json, name: string, table: TypeTable, names: Record<string, string>, path: string): Json {
  const notes = annotations(node);
  const variants = variantsOf(node);
  if (variants) {
    const merged = mergeDiscriminated(variants);
    if (merged) return { ...convert({ ...merged, ...notes }, name, table, names, path), ...notes };
    const converted = variants.map((v, i) =>
      convert(v, variants.length > 1 && v.type === "object" ? name : `${name}${i}`, table, names, path),
    );
    const unique = [...new Map(converted.map((c) => [JSON.stringify({ ...c, description: undefined }), c])).values()];
    if (unique.length === 1) return { ...unique[0], ...notes };
    return { oneOf: unique.map(({ description: _d, default: _x, ...rest }) => rest), ...notes };
  }
  if (Array.isArray(node.enum) && node.enum.every((v) => typeof v === "string")) {
    const token = table.add(names[path] ?? name, {
      type: "string",
      enum: (node.enum as string[]).map((value) => ({ value })),
    });
    return { $ref: `#/types/${token}`, ...notes };
  }
  switch (node.type) {
    case "string":
    case "boolean":
    case "integer":
    case "number":
      return { type: node.type, ...notes };
    case "array":
      return {
        type: "array",
        items: convert(isObject(node.items) ? node.items : {}, name.replace(/s$/, ""), table, names, `${path}[]`),
        ...notes,
      };
    case "object": {
      const propertyNames = isObject(node.propertyNames) ? node.propertyNames : undefined;
      const keys = Array.isArray(propertyNames?.enum) ? (propertyNames.enum as string[]) : undefined;
      if (keys && isObject(node.additionalProperties)) {
        // A record over a closed set of keys (services per runlevel) is an object with those fields.
        const value = node.additionalProperties;
        return convert(
          { type: "object", properties: Object.fromEntries(keys.map((k) => [k, value])), required: [], ...notes },
          name,
          table,
          names,
          path,
        );
      }
      if (isObject(node.properties) && Object.keys(node.properties).length > 0) {
        const properties: Json = {};
        for (const [key, prop] of Object.entries(node.properties)) {
          properties[key] = convert(
            isObject(prop) ? prop : {},
            `${name}${pascal(key)}`,
            table,
            names,
            path === "" ? key : `${path}.${key}`,
          );
        }
        const required = Array.isArray(node.required) ? (node.required as string[]).filter((k) => k in properties) : [];
        // The description is the property's (in `notes`), not the type's: a type used by two
        // properties described apart is one type still (no `Target2`).
        const token = table.add(names[path] ?? name, {
          type: "object",
          properties,
          ...(required.length > 0 ? { required } : {}),
        });
        return { $ref: `#/types/${token}`, ...notes };
      }
      const value = isObject(node.additionalProperties)
        ? convert(node.additionalProperties, `${name}Value`, table, names, `${path}{}`)
        : { type: "string" };
      return { type: "object", additionalProperties: value, ...notes };
    }
    default:
      throw new InternalError(
        `schema: ${name} (${path}) has no Pulumi type (${JSON.stringify(node).slice(0, 200)}); give its zod schema a concrete type`,
      );
  }
}

/** The top-level properties of a resource's inputs or outputs, converted. */
function propertiesOf(
  schema: z.ZodType,
  resource: string,
  table: TypeTable,
  names: Record<string, string>,
): { properties: Record<string, Json>; required: string[] } {
  const root = z.toJSONSchema(schema, { io: "input", unrepresentable: "throw" }) as Json;
  const properties: Record<string, Json> = {};
  for (const [key, prop] of Object.entries((root.properties ?? {}) as Json)) {
    properties[key] = convert(isObject(prop) ? prop : {}, `${resource}${pascal(key)}`, table, names, key);
  }
  return { properties, required: Array.isArray(root.required) ? (root.required as string[]) : [] };
}

export function providerSchema(version: string, resources: ResourceSchemaSource[]): Json {
  const table = new TypeTable();
  const out: Record<string, Json> = {};
  for (const r of resources) {
    const name = r.token.split(":").pop() ?? r.token;
    const names = r.typeNames ?? {};
    const inputs = propertiesOf(r.inputs, name, table, names);
    const outputs = propertiesOf(r.outputs, name, table, names);
    out[r.token] = {
      ...(r.isComponent ? { isComponent: true } : {}),
      description: r.description,
      inputProperties: inputs.properties,
      requiredInputs: inputs.required,
      properties: { ...inputs.properties, ...outputs.properties },
      required: [...new Set([...inputs.required, ...outputs.required])],
    };
  }
  return {
    name: PACKAGE,
    displayName: "ramroot",
    version,
    description: "A whole Alpine Linux machine in one initramfs, deployed to A/B syslinux slots",
    meta: { moduleFormat: "(.*)" },
    language: { nodejs: { packageName: "@ramroot/pulumi", dependencies: { "@pulumi/pulumi": "^3.0.0" } } },
    config: {},
    types: table.types,
    provider: { description: "the ramroot provider: it needs no configuration" },
    resources: out,
  };
}

/**
 * Names of the properties the schema flags secret, anywhere in its types and custom resources:
 * the provider keeps every field of those names secret in what it returns. A component's own
 * secret inputs (AbSystem's `append`) are not among them: Construct learns which inputs the
 * program made secret and keeps each secret in the children it declares.
 */
export function secretPropertyNames(schema: Json): Set<string> {
  const names = new Set<string>();
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) return node.forEach(visit);
    if (!isObject(node)) return;
    for (const key of ["properties", "inputProperties"]) {
      const props = node[key];
      if (!isObject(props)) continue;
      for (const [name, prop] of Object.entries(props)) if (isObject(prop) && prop.secret === true) names.add(name);
    }
    Object.values(node).forEach(visit);
  };
  visit(schema.types);
  if (isObject(schema.resources))
    for (const r of Object.values(schema.resources)) if (!(isObject(r) && r.isComponent)) visit(r);
  return names;
}
