/**
 * `hermitux analyze [options] BIN`: the system calls a program can make,
 * found by binary analysis of the executable, its interpreter and its
 * libraries (read through the same mounts `run` would give the guest).
 * @module
 */
import { parseArgs } from "node:util";
import { isAbsolute, resolve } from "node:path";
import { analyzeBinary } from "../analysis/analyze.ts";
import { formatAnalysis } from "../analysis/format.ts";
import { ElfError } from "../loader/elf.ts";
import { MountTable } from "../vfs/mounts.ts";
import { cliMounts } from "./main.ts";

/** Usage of the `analyze` subcommand. */
export const ANALYZE_USAGE = `Usage:
  hermitux analyze [options] BIN

Disassembles BIN, its interpreter and every library it needs (found as ld.so
would, through the mounts run would use), and lists the system calls each
\`syscall\` instruction can make, with the sites whose number it could not
determine.

Options for analyze:
  --json             print the analysis as JSON (the input of --allow-syscalls)
  --mount HOST:GUEST[:ro|rw], --no-default-mounts
                     where libraries are looked for, as for run
  --library-path DIRS
                     also search these colon-separated directories (like LD_LIBRARY_PATH)
  --no-follow        analyse BIN alone, not its interpreter and libraries`;

/**
 * Runs `hermitux analyze` with the arguments after the subcommand.
 *
 * @param args Arguments after `analyze`.
 * @param cwd Directory relative paths are resolved against.
 * @returns The exit status: 0, 2 for bad usage, 126 for a file that is not
 * an x86-64 ELF executable, 127 for a missing one, 70 for a bug in hermitux.
 */
export function analyzeCommand(args: string[], cwd: string): number {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      strict: true,
      options: {
        json: { type: "boolean" },
        mount: { type: "string", multiple: true },
        "no-default-mounts": { type: "boolean" },
        "library-path": { type: "string" },
        "no-follow": { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (e) {
    console.error(`hermitux analyze: ${(e as Error).message}\n\n${ANALYZE_USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    console.log(ANALYZE_USAGE);
    return 0;
  }
  if (positionals.length !== 1) {
    console.error(`hermitux analyze: expected one BIN\n\n${ANALYZE_USAGE}`);
    return 2;
  }
  const bin = positionals[0];
  let mounts: MountTable;
  try {
    mounts = new MountTable(cliMounts(values.mount ?? [], !values["no-default-mounts"], cwd));
  } catch (e) {
    console.error(`hermitux: ${(e as Error).message.replace(/^hermitux: /, "")}`);
    return 2;
  }
  try {
    const analysis = analyzeBinary(isAbsolute(bin) ? bin : resolve(cwd, bin), {
      mounts,
      cwd,
      libraryPath: values["library-path"]?.split(":").filter((d) => d !== ""),
      follow: !values["no-follow"],
    });
    if (values.json) console.log(JSON.stringify(analysis, null, 2));
    else Deno.stdout.writeSync(new TextEncoder().encode(formatAnalysis(analysis)));
    return 0;
  } catch (e) {
    if (e instanceof ElfError) {
      console.error(`hermitux: ${e.message}`);
      return 126;
    }
    if (e instanceof Error && e.message.startsWith("hermitux:")) {
      console.error(e.message);
      return /no such file/.test(e.message) ? 127 : 126;
    }
    // A bug in hermitux itself, reported as run reports one.
    const detail = e instanceof Error ? e.stack ?? e.message : String(e);
    console.error(`hermitux: internal error (please report): ${detail}`);
    return 70;
  } finally {
    mounts.close();
  }
}
