/*
 * Host calls. Two transports share this vCPU's request block:
 *
 * The doorbell: fill the block, then store to the doorbell page. The store
 * has no memslot behind it, so the vCPU exits to the host (KVM_EXIT_MMIO),
 * which serves the request and writes ret before resuming us. On kvm_pvm
 * each exit costs ~100 us.
 *
 * Exitless: a request the host allows (route bit ROUTE_POLL) is posted by
 * bumping seq, and we spin until a host thread writes ack = seq, never
 * leaving guest mode. While the host polls (POLL_ON) it finds the request
 * itself; while it sleeps (POLL_ASLEEP) we kick it first: a store to the
 * kick address, which KVM turns into an eventfd write without an exit to
 * the host process. The host answers ack = ~seq for a call that would
 * block (it must park the vCPU), and we ring the doorbell instead. With
 * POLL_OFF (no kick: an old KVM, or the run is ending), or when the
 * poller has not answered in BOOT->spin_ticks, we ring it too, marked
 * HC_POSTED, so the host serves the request once whichever way it saw it
 * first.
 */
#include "kernel.h"

#define HC ((volatile struct hostcall *)HOSTCALL_ADDR)
#define POLLING (*(volatile unsigned long *)&BOOT->polling)
#define KICK (*(volatile unsigned long *)(DOORBELL_ADDR + KICK_DOORBELL_OFF))

static int pollable(u64 kind, u64 nr)
{
	if (kind == HC_SYSCALL)
		return nr < NR_SYSCALLS && (BOOT->route[nr] & ROUTE_POLL);
	return kind == HC_CLOCK || kind == HC_TRACE || kind == HC_PROT || kind == HC_SIGNAL ||
	       kind == HC_REWRITE;
}

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
	if (POLLING && pollable(kind, nr)) {
		unsigned int s = HC->seq + 1;

		HC->seq = s;
		/* Dekker with the host: it changes polling, fences, then looks
		 * at seq once more; one of us sees the other's store. */
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		if (POLLING == POLL_ASLEEP)
			KICK = 0;
		/* A poller that does not answer in spin_ticks has lost its CPU
		 * (a loaded host): spinning on would keep this vCPU's thread on
		 * the CPU the poller needs, so ring the doorbell and sleep. One
		 * we kicked awake gets ten times as long: waking takes that. */
		u64 t0 = rdtsc(), wait = BOOT->spin_ticks;
		unsigned int n = 0;

		if (POLLING == POLL_ASLEEP)
			wait *= 10;
		/* rdtsc only now and then: where this runs at CPL 0 (a trapped
		 * syscall on kvm_pvm) every instruction is emulated. */
		while (POLLING && HC->ack != s && HC->ack != ~s &&
		       ((++n & 255) || rdtsc() - t0 < wait))
			__builtin_ia32_pause();
		if (HC->ack == s)
			return HC->ret;
		if (HC->ack != ~s)
			HC->kind = kind | HC_POSTED;
	}
	__asm__ volatile("movq $0, (%0)" : : "r"(DOORBELL_ADDR) : "memory");
	return HC->ret;
}
