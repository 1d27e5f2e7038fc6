/**
 * The eventfd the exitless transport's main thread sleeps on: runners
 * write it at each exit, and a guest's store to the kick address writes it
 * through KVM (KVM_IOEVENTFD) without leaving guest mode.
 * @module
 */
import { bufferAddress, hostSyscall } from "../syscalls/host.ts";

const NR_EVENTFD2 = 290, NR_READ = 0, NR_CLOSE = 3;
const EFD_CLOEXEC = 0o2000000, EFD_NONBLOCK = 0o4000;

/** A non-blocking eventfd, or -1 when the host has none. */
export function makeEventfd(): number {
  const fd = Number(hostSyscall(NR_EVENTFD2, 0, EFD_CLOEXEC | EFD_NONBLOCK));
  return fd < 0 ? -1 : fd;
}

const counter = new Uint8Array(8);

/** Resets the eventfd's count (it is non-blocking). */
export function drainEventfd(fd: number): void {
  hostSyscall(NR_READ, fd, bufferAddress(counter), 8);
}

/** Closes it. */
export function closeEventfd(fd: number): void {
  if (fd >= 0) hostSyscall(NR_CLOSE, fd);
}
