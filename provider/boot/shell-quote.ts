/** Single-quotes a word for a POSIX shell (the remote one of ssh targets). */
export function shellQuote(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}
