/*
 * The doorbell transport: fill this vCPU's request block, then store to the
 * doorbell page. The store has no memslot behind it, so the vCPU exits to
 * the host (KVM_EXIT_MMIO), which serves the request and writes ret before
 * resuming us. Another transport (exitless) would only change this file.
 */
#include "kernel.h"

#define HC ((volatile struct hostcall *)HOSTCALL_ADDR)

long hostcall(u64 kind, u64 nr, u64 a0, u64 a1, u64 a2, u64 a3, u64 a4, u64 a5)
{
	HC->kind = kind;
	HC->nr = nr;
	HC->arg[0] = a0;
	HC->arg[1] = a1;
	HC->arg[2] = a2;
	HC->arg[3] = a3;
	HC->arg[4] = a4;
	HC->arg[5] = a5;
	__asm__ volatile("movq $0, (%0)" : : "r"(DOORBELL_ADDR) : "memory");
	return HC->ret;
}
