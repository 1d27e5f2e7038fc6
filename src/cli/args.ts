/**
 * The command line's option parser and path resolution, in place of
 * `node:util`'s `parseArgs` and `node:path`'s `resolve`: importing either
 * loads Deno's Node compatibility layer, ~10 ms of a CLI run that takes
 * ~20 ms more than an empty Deno script (docs/STARTUP.md). The subset
 * hermitux uses, with Node's error messages.
 * @module
 */
import { normalize } from "../vfs/path.ts";

/** One option: a string (repeatable with `multiple`) or a flag, maybe with a one-letter alias. */
export interface OptionSpec {
  /** A string takes a value (`--opt V` or `--opt=V`); a boolean takes none. */
  type: "string" | "boolean";
  /** Collect every occurrence into an array (else the last one wins). */
  multiple?: boolean;
  /** A one-letter alias (`-v`; letters may be grouped: `-vh`). */
  short?: string;
}

/** The value an option of `spec` gets: true, a string, or every string given. */
export type OptionValue<O extends OptionSpec> = O["type"] extends "boolean" ? boolean
  : O["multiple"] extends true ? string[]
  : string;

/** What {@linkcode parseOptions} found. */
export interface ParsedOptions<T extends Record<string, OptionSpec>> {
  /** Each option given, by its long name. */
  values: { [K in keyof T]?: OptionValue<T[K]> };
  /** Arguments that are not options (and all after `--`). */
  positionals: string[];
}

/**
 * Parses `args` against `options` as `node:util`'s `parseArgs` does with
 * `strict: true`; throws on an unknown option, a missing value, a value
 * given to a flag, or (without `allowPositionals`) any positional.
 */
export function parseOptions<const T extends Record<string, OptionSpec>>(
  args: readonly string[],
  options: T,
  allowPositionals = false,
): ParsedOptions<T> {
  const values: Record<string, string | boolean | (string | boolean)[]> = {};
  const positionals: string[] = [];
  const byShort = new Map<string, string>();
  for (const [name, o] of Object.entries(options)) if (o.short) byShort.set(o.short, name);
  const set = (name: string, value: string | boolean) => {
    const o = options[name];
    if (o.multiple) ((values[name] ??= []) as (string | boolean)[]).push(value);
    else values[name] = value;
  };
  const shown = (name: string) => (name.length === 1 ? "-" : "--") + name;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--") {
      const rest = args.slice(i + 1);
      if (rest.length && !allowPositionals) {
        throw new TypeError(
          `Unexpected argument '${rest[0]}'. This command does not take positional arguments`,
        );
      }
      positionals.push(...rest);
      break;
    }
    if (!a.startsWith("-") || a === "-") {
      if (!allowPositionals) {
        throw new TypeError(
          `Unexpected argument '${a}'. This command does not take positional arguments`,
        );
      }
      positionals.push(a);
      continue;
    }
    let names: string[], inline: string | undefined;
    if (a.startsWith("--")) {
      const eq = a.indexOf("=");
      names = [eq < 0 ? a.slice(2) : a.slice(2, eq)];
      if (eq >= 0) inline = a.slice(eq + 1);
    } else {
      names = [...a.slice(1)].map((c) => byShort.get(c) ?? c);
    }
    for (let k = 0; k < names.length; k++) {
      const name = names[k], o = Object.hasOwn(options, name) ? options[name] : undefined;
      if (!o) {
        const hint = allowPositionals
          ? `. To specify a positional argument starting with a '-', place it at the end of ` +
            `the command after '--', as in '-- ${JSON.stringify(a)}`
          : "";
        throw new TypeError(`Unknown option '${shown(name)}'${hint}`);
      }
      if (o.type === "boolean") {
        if (inline !== undefined) {
          throw new TypeError(`Option '--${name}' does not take an argument`);
        }
        set(name, true);
        continue;
      }
      // A string option takes the rest of a group (-mVALUE), the =VALUE, or the next argument.
      let value = inline;
      if (value === undefined && !a.startsWith("--") && k + 1 < names.length) {
        value = a.slice(k + 2);
      }
      if (value === undefined) {
        const given = a.startsWith("--") ? `--${name}` : `-${o.short}`;
        if (i + 1 >= args.length) {
          const short = o.short ? `-${o.short}, ` : "";
          throw new TypeError(`Option '${short}--${name} <value>' argument missing`);
        }
        if (args[i + 1].startsWith("-")) {
          throw new TypeError(
            `Option '${given}' argument is ambiguous.\nDid you forget to specify the option ` +
              `argument for '${given}'?\nTo specify an option argument starting with a dash ` +
              `use '--${name}=-XYZ'.`,
          );
        }
        value = args[++i];
      }
      set(name, value);
      break;
    }
  }
  return { values: values as ParsedOptions<T>["values"], positionals };
}

/** Node's `path.resolve` for POSIX: `parts` from the right up to an absolute one, normalised. */
export function resolvePath(...parts: string[]): string {
  let path = "";
  for (let i = parts.length - 1; i >= 0 && !path.startsWith("/"); i--) {
    if (parts[i] !== "") path = path ? `${parts[i]}/${path}` : parts[i];
  }
  if (!path.startsWith("/")) path = `${Deno.cwd()}/${path}`;
  return normalize(path);
}
