import type { PropertyChange } from "./resource-handler";

/**
 * The property-level changes between two input values, as `pulumi preview` names them:
 * `entries[1].append`, `timeout`. Arrays of different length report the changed elements
 * and the added or removed ones; objects recurse; everything else compares by value.
 */
export function diffProperties(olds: unknown, news: unknown, path = ""): Record<string, PropertyChange> {
  const changes: Record<string, PropertyChange> = {};
  walk(olds, news, path, changes);
  return changes;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

function walk(olds: unknown, news: unknown, path: string, out: Record<string, PropertyChange>): void {
  if (olds === undefined && news === undefined) return;
  if (olds === undefined) {
    out[path] = "add";
    return;
  }
  if (news === undefined) {
    out[path] = "delete";
    return;
  }
  if (Array.isArray(olds) && Array.isArray(news)) {
    for (let i = 0; i < Math.max(olds.length, news.length); i++) walk(olds[i], news[i], `${path}[${i}]`, out);
    return;
  }
  if (isObject(olds) && isObject(news)) {
    const keys = [...new Set([...Object.keys(olds), ...Object.keys(news)])].sort();
    for (const key of keys) walk(olds[key], news[key], childPath(path, key), out);
    return;
  }
  if (JSON.stringify(olds) !== JSON.stringify(news)) out[path] = "update";
}

/** A Pulumi property path step: `.name` for identifiers, `["name"]` for other keys. */
function childPath(path: string, key: string): string {
  if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) return path === "" ? key : `${path}.${key}`;
  return `${path}[${JSON.stringify(key)}]`;
}
