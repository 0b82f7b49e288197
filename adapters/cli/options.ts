/**
 * String options that name their value in help (`--priority P0|P1|P2`, `--timeout MS`). Clipanion 3.2.1 prints
 * every option value as `#0`: its usage builder has no name hint (`CommandBuilder.usage` writes ` #${t}` per
 * arity), and an optional rest of arguments as a bare `...`. So the name rides on the option's own
 * declaration, and `DelegateCli` (main.ts) puts it in place when usage is drawn.
 */
import { Option } from 'clipanion';

const valueNameKey = Symbol('delegate/valueName');
const restNameKey = Symbol('delegate/restName');

/** The value name of one option, as it rides on clipanion's option marker. */
interface ValueName {
  /** The option's names as declared and as clipanion prints them, e.g. `-p,--priority`. */
  descriptor: string;
  valueName: string;
}

/** A string option whose value help shows as `valueName`, e.g. `valueOption('-p,--priority', 'P0|P1|P2', …)`. */
export function valueOption(descriptor: string, valueName: string, description: string): string | undefined {
  const option = Option.String(descriptor, { description });
  // Until a command line is parsed, clipanion's option is a marker object typed as its future value.
  (option as unknown as Record<symbol, ValueName>)[valueNameKey] = { descriptor, valueName };
  return option;
}

/** Positional arguments that may be none, shown in help as `[name ...]` (clipanion shows a bare `...`). */
export function optionalRest(name: string): string[] {
  const option = Option.Rest({ name });
  (option as unknown as Record<symbol, string>)[restNameKey] = name;
  return option;
}

/** Put the names declared by `valueOption` and `optionalRest` among a command's option markers into clipanion's usage text. */
export function nameValues(text: string, options: Iterable<unknown>): string {
  let named = text;
  for (const option of options) {
    const hint = (option as Partial<Record<symbol, ValueName>>)[valueNameKey];
    if (hint) named = named.replace(`${hint.descriptor} #0`, `${hint.descriptor} ${hint.valueName}`);
    const rest = (option as Partial<Record<symbol, string>>)[restNameKey];
    if (rest) named = named.replace(/ \.\.\.$/, ` [${rest} ...]`);
  }
  return named;
}
