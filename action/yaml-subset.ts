/**
 * A reader for the part of YAML a `tasks` input is written in, because the project has no YAML library yet:
 * a block list of mappings whose values are plain or quoted scalars, flow lists (`[a, b]`), block lists of
 * scalars, or block scalars (`|`, `|-`, `>`, `>-`). JSON is YAML too and is read as JSON. Anything outside this
 * subset (anchors, tags, nested mappings, multi-line flow collections) is refused with the line it is on, never
 * guessed at. Replace with the `yaml` package's `parse` once it is a dependency.
 */

/** A value of the subset: scalars are strings (types are checked by the caller's schema, as YAML 1.2 core would leave them). */
export type YamlSubsetValue = string | YamlSubsetValue[] | { [key: string]: YamlSubsetValue };

/** A document outside the subset, or malformed; `line` is 1-based. */
export class YamlSubsetError extends Error {
  constructor(
    readonly line: number,
    readonly problem: string,
  ) {
    super(`line ${line}: ${problem}`);
    this.name = 'YamlSubsetError';
  }
}

interface Line {
  number: number;
  indent: number;
  /** Without indentation; raw (comments not yet removed). */
  text: string;
}

/** Parse `text` as JSON when it looks like JSON, else as the YAML subset. */
export function parseYamlSubset(text: string): unknown {
  const trimmed = text.trim();
  if (trimmed.startsWith('[') || trimmed.startsWith('{')) {
    try {
      return JSON.parse(trimmed);
    } catch (error) {
      throw new YamlSubsetError(1, `not valid JSON (${(error as Error).message})`);
    }
  }
  const lines: Line[] = text.split(/\r?\n/).map((raw, index) => {
    if (/^\s*\t/.test(raw)) throw new YamlSubsetError(index + 1, 'a tab in the indentation (YAML indents with spaces)');
    const indent = raw.length - raw.trimStart().length;
    return { number: index + 1, indent, text: raw.slice(indent) };
  });
  const reader = new Reader(lines);
  reader.skipBlank();
  if (reader.done()) return [];
  const first = reader.peek()!;
  if (!isDash(first.text)) throw new YamlSubsetError(first.number, "expected a list item starting with '- '");
  const list = reader.blockList(first.indent, 'mapping');
  reader.skipBlank();
  const rest = reader.peek();
  if (rest) throw new YamlSubsetError(rest.number, 'unexpected text after the list (check its indentation)');
  return list;
}

const isBlank = (text: string): boolean => text === '' || text.startsWith('#');
const isDash = (text: string): boolean => text === '-' || text.startsWith('- ');

class Reader {
  #at = 0;
  constructor(private readonly lines: Line[]) {}

  done(): boolean {
    return this.#at >= this.lines.length;
  }

  peek(): Line | undefined {
    return this.lines[this.#at];
  }

  skipBlank(): void {
    while (!this.done() && isBlank(this.lines[this.#at]!.text)) this.#at++;
  }

  /** Items of a block list whose dashes sit at `indent`; items are mappings or scalars. */
  blockList(indent: number, items: 'mapping' | 'scalar'): YamlSubsetValue[] {
    const list: YamlSubsetValue[] = [];
    for (;;) {
      this.skipBlank();
      const line = this.peek();
      if (!line || line.indent < indent) return list;
      if (line.indent > indent || !isDash(line.text)) throw new YamlSubsetError(line.number, "expected a list item starting with '- ' (check the indentation)");
      const afterDash = line.text.slice(1).trimStart();
      if (items === 'scalar') {
        if (afterDash === '' || /^[^'"[{]*:(\s|$)/.test(afterDash)) throw new YamlSubsetError(line.number, 'expected a single value in this list');
        list.push(scalar(afterDash, line.number));
        this.#at++;
        continue;
      }
      if (afterDash === '' || isBlank(afterDash)) throw new YamlSubsetError(line.number, "expected 'key: value' after '- '");
      // The item's keys line up with the first one, which sits after the dash.
      const keyIndent = line.indent + (line.text.length - afterDash.length);
      this.lines[this.#at] = { number: line.number, indent: keyIndent, text: afterDash };
      list.push(this.mapping(keyIndent));
    }
  }

  /** The entries of a block mapping whose keys sit at `indent`. */
  mapping(indent: number): { [key: string]: YamlSubsetValue } {
    const map: { [key: string]: YamlSubsetValue } = {};
    for (;;) {
      this.skipBlank();
      const line = this.peek();
      if (!line || line.indent < indent || (line.indent === indent && isDash(line.text))) return map;
      if (line.indent > indent) throw new YamlSubsetError(line.number, 'unexpected indentation');
      const match = /^([A-Za-z_][\w-]*)\s*:(?:\s+(.*))?$/.exec(line.text);
      if (!match) throw new YamlSubsetError(line.number, "expected 'key: value'");
      const key = match[1]!;
      if (key in map) throw new YamlSubsetError(line.number, `the key '${key}' appears twice in one item`);
      const rest = stripComment(match[2] ?? '');
      this.#at++;
      if (rest === '') {
        map[key] = this.nestedList(indent, line.number, key);
      } else if (/^[|>][+-]?$/.test(rest)) {
        map[key] = this.blockScalar(indent, rest);
      } else {
        map[key] = scalar(rest, line.number);
      }
    }
  }

  /** A key with nothing after its colon: a block list of scalars below it (at its indent or deeper), or nothing. */
  private nestedList(keyIndent: number, keyLine: number, key: string): YamlSubsetValue {
    this.skipBlank();
    const next = this.peek();
    if (next && isDash(next.text) && next.indent >= keyIndent) return this.blockList(next.indent, 'scalar');
    if (next && next.indent > keyIndent) throw new YamlSubsetError(next.number, `'${key}' holds a nested mapping, which tasks do not use`);
    throw new YamlSubsetError(keyLine, `'${key}' has no value`);
  }

  /** A literal (`|`) or folded (`>`) block scalar, indented deeper than its key. */
  private blockScalar(keyIndent: number, header: string): string {
    const body: string[] = [];
    let bodyIndent: number | null = null;
    while (!this.done()) {
      const line = this.peek()!;
      if (line.text !== '' && line.indent <= keyIndent) break;
      if (line.text !== '') bodyIndent ??= line.indent;
      // A blank line keeps its place; a line less indented than the body's first one ends it.
      if (line.text !== '' && line.indent < bodyIndent!) break;
      body.push(line.text === '' ? '' : ' '.repeat(line.indent - bodyIndent!) + line.text);
      this.#at++;
    }
    while (body.length > 0 && body.at(-1) === '') body.pop();
    const text = header.startsWith('>') ? fold(body) : body.join('\n');
    // Clip (default) keeps one final newline, strip (`-`) none, keep (`+`) is treated as clip.
    return header.endsWith('-') || text === '' ? text : `${text}\n`;
  }
}

/** Folded block lines: a single line break becomes a space, each blank line one newline; more-indented lines keep their breaks. */
function fold(lines: string[]): string {
  let out = '';
  lines.forEach((line, index) => {
    const previous = lines[index - 1];
    if (index === 0) out = line;
    else if (line === '') out += '\n';
    else if (previous === '') out += line;
    else if (line.startsWith(' ') || previous!.startsWith(' ')) out += `\n${line}`;
    else out += ` ${line}`;
  });
  return out;
}

/** A value without a trailing ` # comment` (outside quotes). */
function stripComment(text: string): string {
  let quote: string | null = null;
  for (let i = 0; i < text.length; i++) {
    const char = text[i]!;
    if (quote) {
      if (char === '\\' && quote === '"') i++;
      else if (char === quote) quote = null;
    } else if (char === '"' || char === "'") quote = char;
    else if (char === '#' && (i === 0 || /\s/.test(text[i - 1]!))) return text.slice(0, i).trimEnd();
  }
  return text.trimEnd();
}

/** One scalar or flow list on one line. */
function scalar(text: string, line: number): YamlSubsetValue {
  const value = stripComment(text);
  if (value.startsWith('[')) return flowList(value, line);
  if (value.startsWith('{')) throw new YamlSubsetError(line, 'a flow mapping ({…}), which tasks do not use');
  if (/^[&*!]/.test(value)) throw new YamlSubsetError(line, 'anchors, aliases and tags are not supported here');
  if (value.startsWith('"') || value.startsWith("'")) {
    const { text: quoted, end } = quotedScalar(value, 0, line);
    if (value.slice(end).trim() !== '') throw new YamlSubsetError(line, 'text after a quoted value');
    return quoted;
  }
  // YAML reads `a: b` inside a plain value as a nested mapping and refuses it; so does this subset.
  if (/:(\s|$)/.test(value)) throw new YamlSubsetError(line, "a value containing ': ' must be quoted");
  return value;
}

/** A flow list of scalars on one line: `[a, "b c", 'd']`. */
function flowList(text: string, line: number): string[] {
  if (!text.endsWith(']')) throw new YamlSubsetError(line, "a list opened with '[' must close with ']' on the same line");
  const items: string[] = [];
  let i = 1;
  const end = text.length - 1;
  while (i < end) {
    while (i < end && /\s/.test(text[i]!)) i++;
    if (i >= end) break;
    let item: string;
    if (text[i] === '"' || text[i] === "'") {
      const quoted = quotedScalar(text, i, line);
      item = quoted.text;
      i = quoted.end;
    } else {
      const stop = text.indexOf(',', i);
      const until = stop === -1 || stop > end ? end : stop;
      item = text.slice(i, until).trim();
      if (/[[\]{}]/.test(item)) throw new YamlSubsetError(line, 'nested lists are not supported here');
      i = until;
    }
    items.push(item);
    while (i < end && /\s/.test(text[i]!)) i++;
    if (i < end && text[i] !== ',') throw new YamlSubsetError(line, "expected ',' between list items");
    i++;
  }
  return items;
}

/** A double- (JSON escapes) or single-quoted (`''` is a quote) scalar starting at `start`; `end` is just past it. */
function quotedScalar(text: string, start: number, line: number): { text: string; end: number } {
  const quote = text[start]!;
  for (let i = start + 1; i < text.length; i++) {
    if (quote === '"' && text[i] === '\\') {
      i++;
      continue;
    }
    if (text[i] !== quote) continue;
    if (quote === "'" && text[i + 1] === "'") {
      i++;
      continue;
    }
    const body = text.slice(start + 1, i);
    if (quote === "'") return { text: body.replaceAll("''", "'"), end: i + 1 };
    try {
      return { text: JSON.parse(`"${body}"`) as string, end: i + 1 };
    } catch {
      throw new YamlSubsetError(line, 'a bad escape in a double-quoted value');
    }
  }
  throw new YamlSubsetError(line, `a ${quote === '"' ? 'double' : 'single'}-quoted value that does not close on its line`);
}
