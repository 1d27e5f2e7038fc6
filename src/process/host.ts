/**
 * The {@linkcode ProcessHost} one guest process's syscalls see: the
 * process table's operations, with that process as the caller.
 * @module
 */
import type { Proc, ProcessTable } from "./table.ts";
import type { ProcessHost, ProcInfo, WaitMatch, WaitOptions } from "../syscalls/procs.ts";
import type { CloneSpec, ThreadHost } from "../syscalls/thread.ts";
import type { SigInfo } from "../syscalls/signal.ts";
import type { Grants } from "../syscalls/grants.ts";

/** What one process's syscalls reach of the table. */
export class Host implements ProcessHost {
  constructor(readonly table: ProcessTable, readonly proc: Proc) {}
  get pid(): number {
    return this.proc.pid;
  }
  fork(spec: CloneSpec): number {
    return this.table.fork(this.proc, spec);
  }
  exec(path: string, argv: string[], envp: string[]): void {
    this.table.exec(this.proc, path, argv, envp);
  }
  wait(
    threads: ThreadHost,
    match: WaitMatch,
    opts: WaitOptions,
    reply: (pid: number, info: Uint8Array, status: number) => bigint,
  ): bigint {
    return this.table.wait(this.proc, threads, match, opts, reply);
  }
  kill(pid: number, sig: number): number {
    return this.table.kill(this.proc, pid, sig);
  }
  setpgid(pid: number, pgid: number): number {
    return this.table.setpgid(this.proc, pid, pgid);
  }
  getpgid(pid: number): number {
    return this.table.idOf(this.proc, pid, "pgid");
  }
  getsid(pid: number): number {
    return this.table.idOf(this.proc, pid, "sid");
  }
  get shared(): Map<string, unknown> {
    return this.table.shared;
  }
  setsid(): number {
    return this.table.setsid(this.proc);
  }
  processes(): ProcInfo[] {
    const all = this.table.all();
    return all.map((q) => ({
      pid: q.pid,
      ppid: q.ppid,
      pgid: q.pgid,
      sid: q.sid,
      process: q.vm.process!,
      status: q.status,
      started: q.started,
      vforkWait: all.some((c) => c.vforkOf?.parent === q && c.status === undefined),
      stopped: q.stopped === true,
    }));
  }
  watchEnd(pid: number, onEnd: () => void): () => void {
    return this.table.watchEnd(pid, onEnd);
  }
  signal(pid: number, info: SigInfo): number {
    return this.table.signal(pid, info);
  }
  tasks(): number {
    return this.table.tasks();
  }
  get grants(): Grants {
    return this.table.grants;
  }
}
