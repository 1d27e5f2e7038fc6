/**
 * The runtime's log (`--log FILE --log-format text|json`), as runc writes
 * it: one line per message; in JSON `{"level","msg","time"}`, which
 * containerd's shim reads back to report why a command failed.
 * @module
 */

/** Where the runtime's messages go. */
export interface Logger {
  /** An error: the log, and stderr. */
  error(msg: string): void;
  /** A warning: the log only (stderr may be the container's). */
  warn(msg: string): void;
}

/** A logger appending to `file` (if given) in `format`; errors also go to stderr. */
export function makeLogger(file: string | undefined, format: "text" | "json"): Logger {
  const line = (level: string, msg: string) => {
    if (!file) return;
    const time = new Date().toISOString();
    const text = format === "json"
      ? JSON.stringify({ level, msg, time })
      : `time="${time}" level=${level} msg=${JSON.stringify(msg)}`;
    try {
      Deno.writeTextFileSync(file, text + "\n", { append: true, create: true });
    } catch { /* a log that cannot be written is not the command's failure */ }
  };
  return {
    error(msg) {
      line("error", msg);
      console.error(`hermitux-oci: ${msg}`);
    },
    warn(msg) {
      line("warning", msg);
    },
  };
}
