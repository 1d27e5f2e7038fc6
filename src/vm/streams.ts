/**
 * A piped stdout or stderr as a ReadableStream while the guest runs
 * (`Vm.stdout`, `Vm.stderr` with `BootOptions.stdout: "piped"`): between
 * the slices of an async run (Vm.runAsync) what the guest has written to
 * its memfd since the last look is read and enqueued; the stream closes
 * with the run. Without an async run the bytes come whole in RunResult.
 * @module
 */
import { bufferAddress, hostSyscall } from "../syscalls/host.ts";

const NR_PREAD64 = 17;

/** One piped stream: the memfd read so far and the stream's controller. */
export class OutputStream {
  /** What the guest wrote, as it comes. */
  readonly readable: ReadableStream<Uint8Array>;
  #controller!: ReadableStreamDefaultController<Uint8Array>;
  #offset = 0;
  #closed = false;
  #buf = new Uint8Array(65536);

  /** A stream of what is written to host fd `fd` (a memfd, read from its start). */
  constructor(readonly fd: () => number | undefined) {
    this.readable = new ReadableStream({ start: (c) => void (this.#controller = c) });
  }

  /** Enqueues what has been written since the last look. */
  pump(): void {
    const fd = this.fd();
    if (this.#closed || fd === undefined) return;
    const buf = this.#buf;
    for (;;) {
      const n = Number(hostSyscall(NR_PREAD64, fd, bufferAddress(buf), buf.length, this.#offset));
      if (n <= 0) return;
      this.#controller.enqueue(buf.slice(0, n));
      this.#offset += n;
    }
  }

  /** The run has ended with `all` (RunResult's bytes): the rest is enqueued, the stream closed. */
  end(all: Uint8Array | undefined): void {
    if (this.#closed) return;
    this.#closed = true;
    if (all && all.length > this.#offset) this.#controller.enqueue(all.slice(this.#offset));
    this.#controller.close();
  }
}
