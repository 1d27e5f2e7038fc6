/**
 * A terminal's foreground process group, as the guest's processes see it.
 * The host's terminal knows only host process groups: passed through,
 * TIOCGPGRP named the host shell's job, never a guest group, and a guest
 * shell's TIOCSPGRP (job control: `sh -i`, `bash`) could not be served
 * ("can't set tty process group"). So the run keeps, per host terminal, a
 * foreground group of guest pgids: at first the first process's group,
 * then whatever group of the run TIOCSPGRP names. The host terminal's own
 * settings (TCGETS/TCSETS, the window size) stay the host's. Background
 * jobs reading the terminal get no SIGTTIN (the host kernel does not know
 * these groups).
 * @module
 */
import { E, SyscallError } from "./errno.ts";
import type { OpenFile } from "./fdtable.ts";
import { bufferAddress, hostFstat, hostSyscall } from "./host.ts";
import type { Process } from "./registry.ts";
import { processesOf } from "./procs.ts";

/** The terminal requests served here, not passed to the host. */
export const TTY_GROUP_IOCTLS = new Set([0x540f, 0x5410, 0x5429]);
const TIOCGPGRP = 0x540f, TIOCSPGRP = 0x5410, TIOCGSID = 0x5429, NR_IOCTL = 16;
const KEY = "tty.foreground";

/** TIOCGPGRP, TIOCSPGRP or TIOCGSID (`req`) on `file`; ENOTTY unless it is a host terminal. */
export function ttyGroupIoctl(p: Process, file: OpenFile, req: number, arg: bigint): bigint {
  // A terminal on the host (its answer itself is not the guest's).
  const probe = new Int32Array(1);
  const r = hostSyscall(
    NR_IOCTL,
    file.hostFd,
    TIOCGPGRP,
    bufferAddress(new Uint8Array(probe.buffer)),
  );
  if (r < 0n) return r;
  const st = hostFstat(file.hostFd);
  if (typeof st === "number") return BigInt(st);
  const host = processesOf(p);
  const all = host?.processes() ?? [];
  const first = all.reduce((a, q) => (q.pid < a.pid ? q : a), all[0]);
  const groups = (host?.shared.get(KEY) ?? new Map()) as Map<string, number>;
  host?.shared.set(KEY, groups);
  const key = `${st.dev}:${st.ino}`;
  const at = p.mem.check(arg, 4);
  switch (req) {
    case TIOCGPGRP:
      p.mem.view.setInt32(at, groups.get(key) ?? first?.pgid ?? p.pid, true);
      return 0n;
    case TIOCGSID:
      p.mem.view.setInt32(at, first?.sid ?? p.pid, true);
      return 0n;
    case TIOCSPGRP: {
      const pgid = p.mem.view.getInt32(at, true);
      if (pgid < 0) throw new SyscallError(E.EINVAL);
      // A group of this run, alive (as Linux: ESRCH for none).
      if (host && !all.some((q) => q.pgid === pgid && q.status === undefined)) {
        throw new SyscallError(E.ESRCH);
      }
      groups.set(key, pgid);
      return 0n;
    }
  }
  throw new SyscallError(E.ENOTTY);
}
