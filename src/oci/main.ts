/**
 * The OCI runtime's own entry point (bin/hermitux-oci runs it): the same
 * commands as `hermitux oci`, without loading the rest of the CLI first.
 * @module
 */
import { ociMain } from "./cli.ts";

if (import.meta.main) Deno.exit(await ociMain(Deno.args, Deno.cwd()));
