/**
 * Alpine package versions, following apk-tools' src/version.c token by token:
 *
 *   number{.number}...{letter}{_suffix{number}}...{~hash}{-rN}
 *
 * Written by hand: no maintained npm package implements apk's exact rules (leading-zero parts
 * compared as strings, `~hash` commit parts, fuzzy prefix matching, invalid-version ordering).
 */

/** Result bits, as apk's APK_VERSION_* masks; a dependency operator is a set of these. */
export const VERSION_EQUAL = 1;
export const VERSION_LESS = 2;
export const VERSION_GREATER = 4;
export const VERSION_FUZZY = 8;
export const VERSION_CONFLICT = 16;
export const DEPMASK_ANY = VERSION_EQUAL | VERSION_LESS | VERSION_GREATER;
export const DEPMASK_CHECKSUM = VERSION_LESS | VERSION_GREATER;

export type VersionOrder = "<" | "=" | ">";

enum Token {
  InitialDigit,
  Digit,
  Letter,
  Suffix,
  SuffixNumber,
  CommitHash,
  RevisionNumber,
  End,
  Invalid,
}

/** Suffix ranks: pre-release suffixes sort below "no suffix" (NONE), post-release ones above. */
const SUFFIX_NONE = 5;
const SUFFIX_RANK: Record<string, number> = { alpha: 1, beta: 2, pre: 3, rc: 4, cvs: 6, svn: 7, git: 8, hg: 9, p: 10 };

interface TokenState {
  token: Token;
  /** The token's text (digits, letter, suffix word, hash). */
  value: string;
  suffix: number;
}

function isDigit(c: string | undefined): boolean {
  return c !== undefined && c >= "0" && c <= "9";
}

/** Walks a version string one token at a time. */
class Tokenizer {
  private pos = 0;
  readonly state: TokenState = { token: Token.InitialDigit, value: "", suffix: 0 };

  constructor(private readonly text: string) {
    this.parseDigits(Token.InitialDigit);
  }

  private span(accept: (c: string) => boolean): string {
    const start = this.pos;
    while (this.pos < this.text.length && accept(this.text[this.pos]!)) this.pos++;
    return this.text.slice(start, this.pos);
  }

  private parseDigits(token: Token): void {
    this.state.token = token;
    this.state.value = this.span(isDigit);
    if (this.state.value.length === 0) this.state.token = Token.Invalid;
  }

  next(): void {
    const t = this.state;
    if (this.pos >= this.text.length) {
      t.token = Token.End;
      return;
    }
    const c = this.text[this.pos]!;
    if (c >= "a" && c <= "z") {
      if (t.token > Token.Digit) return this.invalid();
      t.value = c;
      t.token = Token.Letter;
      this.pos++;
    } else if (c === "." || isDigit(c)) {
      if (c === ".") {
        if (t.token > Token.Digit) return this.invalid();
        this.pos++;
      }
      if (t.token === Token.InitialDigit || t.token === Token.Digit) this.parseDigits(Token.Digit);
      else if (t.token === Token.Suffix) this.parseDigits(Token.SuffixNumber);
      else this.invalid();
    } else if (c === "_") {
      if (t.token > Token.SuffixNumber) return this.invalid();
      this.pos++;
      t.value = this.span((ch) => ch >= "a" && ch <= "z");
      const rank = SUFFIX_RANK[t.value];
      if (rank === undefined) return this.invalid();
      t.suffix = rank;
      t.token = Token.Suffix;
    } else if (c === "~") {
      if (t.token >= Token.CommitHash) return this.invalid();
      this.pos++;
      t.value = this.span((ch) => isDigit(ch) || (ch >= "a" && ch <= "f"));
      if (t.value.length === 0) return this.invalid();
      t.token = Token.CommitHash;
    } else if (c === "-") {
      if (t.token >= Token.RevisionNumber) return this.invalid();
      if (this.text[this.pos + 1] !== "r") return this.invalid();
      this.pos += 2;
      this.parseDigits(Token.RevisionNumber);
    } else {
      this.invalid();
    }
  }

  private invalid(): void {
    this.state.token = Token.Invalid;
  }
}

/** Compares digit strings as unsigned integers of any length. */
function compareNumbers(a: string, b: string): number {
  const x = a.replace(/^0+(?=.)/, "");
  const y = b.replace(/^0+(?=.)/, "");
  if (x.length !== y.length) return x.length - y.length;
  return x < y ? -1 : x > y ? 1 : 0;
}

/** Byte-wise comparison, shorter first on a common prefix (apk_blob_sort). */
function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function compareTokens(a: TokenState, b: TokenState): number {
  switch (a.token) {
    case Token.Digit:
      // A non-initial part with a leading zero compares as a string (Gentoo rule).
      if (a.value.startsWith("0") || b.value.startsWith("0")) return compareStrings(a.value, b.value);
      return compareNumbers(a.value, b.value);
    case Token.InitialDigit:
    case Token.SuffixNumber:
    case Token.RevisionNumber:
      return compareNumbers(a.value, b.value);
    case Token.Letter:
      return compareStrings(a.value, b.value);
    case Token.Suffix:
      return a.suffix - b.suffix;
    default:
      return compareStrings(a.value, b.value);
  }
}

function orderBit(r: number): number {
  return r < 0 ? VERSION_LESS : r > 0 ? VERSION_GREATER : VERSION_EQUAL;
}

/**
 * apk_version_compare with the fuzzy flag: returns one of VERSION_LESS/EQUAL/GREATER.
 * With `fuzzy`, `b` matching a token-wise prefix of `a` counts as equal (the `~` operator).
 */
export function compareVersionMask(a: string, b: string, fuzzy = false): number {
  const ta = new Tokenizer(a);
  const tb = new Tokenizer(b);
  const sa = ta.state;
  const sb = tb.state;
  while (sa.token === sb.token && sa.token < Token.End) {
    const r = compareTokens(sa, sb);
    if (r !== 0) return orderBit(r);
    ta.next();
    tb.next();
  }
  if (sa.token === sb.token) return VERSION_EQUAL;
  if (sb.token === Token.End && fuzzy) return VERSION_EQUAL;
  // Leading parts are equal: the longer version is greater unless it continues with a pre-release suffix.
  if (sa.token === Token.Suffix && sa.suffix < SUFFIX_NONE) return VERSION_LESS;
  if (sb.token === Token.Suffix && sb.suffix < SUFFIX_NONE) return VERSION_GREATER;
  if (sa.token > sb.token) return VERSION_LESS;
  if (sb.token > sa.token) return VERSION_GREATER;
  return VERSION_EQUAL;
}

/**
 * Like compareVersionMask, with apk's rule for a missing version (an unversioned provide): two missing
 * versions are equal; one missing version compares as every relation at once.
 */
export function compareOptional(a: string | undefined, b: string | undefined, fuzzy = false): number {
  if (a === undefined || b === undefined) {
    return a === undefined && b === undefined ? VERSION_EQUAL : VERSION_EQUAL | VERSION_LESS | VERSION_GREATER;
  }
  return compareVersionMask(a, b, fuzzy);
}

/** Compares two versions the way `apk version -t A B` does: "<", "=" or ">". */
export function compareVersions(a: string, b: string): VersionOrder {
  const r = compareVersionMask(a, b);
  return r === VERSION_LESS ? "<" : r === VERSION_GREATER ? ">" : "=";
}

/** A sort comparator (-1, 0, 1) over versions, ascending. */
export function versionSort(a: string, b: string): number {
  const r = compareVersionMask(a, b);
  return r === VERSION_LESS ? -1 : r === VERSION_GREATER ? 1 : 0;
}

/** True when `version` is a valid apk version (apk_version_validate). */
export function isValidVersion(version: string): boolean {
  const t = new Tokenizer(version);
  while (t.state.token < Token.End) t.next();
  return t.state.token === Token.End;
}

/** Turns an operator text (`<`, `<=`, `=`, `~`, `>=`, `>`, `><`, `<~`, `>~`) into a result mask; 0 if not one. */
export function operatorMask(op: string): number {
  let mask = 0;
  for (const c of op) {
    if (c === "<") mask |= VERSION_LESS;
    else if (c === ">") mask |= VERSION_GREATER;
    else if (c === "=") mask |= VERSION_EQUAL;
    else if (c === "~") mask |= VERSION_FUZZY | VERSION_EQUAL;
    else return 0;
  }
  return mask;
}

/** The canonical text of an operator mask, as apk prints it (apk_version_op_string). */
export function operatorText(mask: number): string {
  switch (mask & ~VERSION_CONFLICT) {
    case VERSION_LESS:
      return "<";
    case VERSION_LESS | VERSION_EQUAL:
      return "<=";
    case VERSION_LESS | VERSION_EQUAL | VERSION_FUZZY:
      return "<~";
    case VERSION_EQUAL | VERSION_FUZZY:
    case VERSION_FUZZY:
      return "~";
    case VERSION_EQUAL:
      return "=";
    case VERSION_GREATER | VERSION_EQUAL:
      return ">=";
    case VERSION_GREATER | VERSION_EQUAL | VERSION_FUZZY:
      return ">~";
    case VERSION_GREATER:
      return ">";
    case DEPMASK_CHECKSUM:
      return "><";
    case DEPMASK_ANY:
      return "";
    default:
      return "?";
  }
}

/**
 * apk_version_match: does `version` satisfy `op constraint`? A conflict bit in `op` inverts the answer.
 */
export function versionMatches(version: string | undefined, op: number, constraint: string | undefined): boolean {
  let ok = false;
  if ((op & DEPMASK_ANY) === DEPMASK_ANY) ok = true;
  else if (compareOptional(version, constraint, (op & VERSION_FUZZY) !== 0) & op) ok = true;
  if (op & VERSION_CONFLICT) ok = !ok;
  return ok;
}
