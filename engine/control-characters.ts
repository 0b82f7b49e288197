/**
 * Control characters, both ways. On the way in, text fields refuse what the store would not keep as given (SQLite
 * cuts a string at NUL and turns an unpaired surrogate into U+FFFD) and what would drive a terminal when shown
 * (ESC, CSI, DEL…). On the way out, views escape them, because agent output and rows written before this check
 * reach the screen too.
 */

/** Which control characters a text field may hold: `line` none, `multiline` newline, tab and carriage return. */
export type TextShape = 'line' | 'multiline';

// C0, DEL and C1. In multi-line text, tab (U+0009), newline (U+000A) and carriage return (U+000D) are allowed.
const anyControl = /[\u0000-\u001f\u007f-\u009f]/;
const controlOutsideText = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]/;
const unpairedSurrogate = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

const codePoint = (char: string): string => `U+${char.charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}`;

/**
 * Why `value` cannot be stored as the field `field`, in one line naming the field, the character, where it is
 * and what is allowed; null when it can.
 */
export function textProblem(field: string, value: string, shape: TextShape): string | null {
  const control = (shape === 'line' ? anyControl : controlOutsideText).exec(value);
  if (control) {
    const allowed = shape === 'line' ? 'no control characters are allowed' : 'only newline, tab and carriage return are allowed';
    return `${field}: contains a control character (${codePoint(control[0])}) at index ${control.index}; ${allowed}`;
  }
  const surrogate = unpairedSurrogate.exec(value);
  if (surrogate) return `${field}: contains an unpaired surrogate (${codePoint(surrogate[0])}) at index ${surrogate.index}; expected well-formed Unicode text`;
  return null;
}

const escapes: Record<string, string> = { '\n': '\\n', '\t': '\\t', '\r': '\\r' };
const escapeOne = (char: string): string => escapes[char] ?? `\\x${char.charCodeAt(0).toString(16).padStart(2, '0')}`;

/**
 * Text as a terminal may show it: every control character written visibly (ESC as `\x1b`, NUL as `\x00`), so
 * nothing in a prompt, result or agent output can move the cursor, clear the screen or set the title. With
 * `multiline`, newline and tab stay as they are.
 */
export function printable(text: string, options: { multiline?: boolean } = {}): string {
  return text.replace(options.multiline ? /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g : /[\u0000-\u001f\u007f-\u009f]/g, escapeOne);
}
