/**
 * Pulumi secrets across the provider boundary. The provider accepts secrets (Configure answers
 * acceptSecrets): a secret arrives as `{<sig key>: <secret sig>, value}`. The handlers see plain
 * values; what they return is marked secret again wherever the inputs were (the rule the engine
 * applies for providers that do not accept secrets), and every property the package schema
 * flags secret (the ssh private key) is a secret whatever the program sent, so a program that
 * forgot `pulumi.secret` does not put a key in the state.
 */
export const SIG_KEY = "4dabf18193072939515e22adb298388d";
export const SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270";

type Plain = Record<string, unknown>;

function isPlainObject(v: unknown): v is Plain {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

export function isSecret(v: unknown): v is Plain & { value?: unknown } {
  return isPlainObject(v) && v[SIG_KEY] === SECRET_SIG;
}

export function secret(value: unknown): Plain {
  return { [SIG_KEY]: SECRET_SIG, value: reveal(value) };
}

/** The value with every secret wrapper removed. */
export function reveal(value: unknown): unknown {
  if (isSecret(value)) return reveal(value.value);
  if (Array.isArray(value)) return value.map(reveal);
  if (isPlainObject(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, reveal(v)]));
  return value;
}

export function containsSecret(value: unknown): boolean {
  if (isSecret(value)) return true;
  if (Array.isArray(value)) return value.some(containsSecret);
  if (isPlainObject(value)) return Object.values(value).some(containsSecret);
  return false;
}

/**
 * `outs` (plain) with secretness copied from `ins` (wrapped): where both are objects (or arrays
 * of one length) by key, else the whole value is secret when anything in the input was.
 */
export function annotateSecrets(outs: unknown, ins: unknown): unknown {
  if (outs === undefined || ins === undefined) return outs;
  if (isSecret(ins)) return secret(outs);
  if (isPlainObject(outs) && isPlainObject(ins)) {
    return Object.fromEntries(Object.entries(outs).map(([k, v]) => [k, k in ins ? annotateSecrets(v, ins[k]) : v]));
  }
  if (Array.isArray(outs) && Array.isArray(ins) && outs.length === ins.length)
    return outs.map((v, i) => annotateSecrets(v, ins[i]));
  return containsSecret(ins) ? secret(outs) : outs;
}

/** Marks every field named in `fields` secret, at any depth (e.g. `privateKey` inside `target`). */
export function secretFields(value: unknown, fields: ReadonlySet<string>): unknown {
  if (isSecret(value)) return value;
  if (Array.isArray(value)) return value.map((v) => secretFields(v, fields));
  if (isPlainObject(value)) {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [
        k,
        fields.has(k) && v !== undefined ? secret(v) : secretFields(v, fields),
      ]),
    );
  }
  return value;
}
