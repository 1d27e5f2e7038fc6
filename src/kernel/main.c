/* Boot and syscall dispatch. */
#include "kernel.h"

struct start { u64 entry, sp; };

/* entry.S's signal stubs address these slots by offset. */
_Static_assert(__builtin_offsetof(struct percpu, sig_rip) == PERCPU_SIG_OFF, "percpu sig slots");
_Static_assert(sizeof(struct percpu) <= FPU_SCRATCH_ADDR - PERCPU_ADDR, "percpu page");
_Static_assert(sizeof(struct boot_info) <= SIGACTIONS_ADDR - BOOT_INFO_ADDR, "boot_info page");
_Static_assert(SIGACTIONS_ADDR + 64 * sizeof(struct k_sigaction) <= HOSTCALL_ADDR, "sigactions");
_Static_assert(NR_ELF_HINTS * sizeof(struct elf_hint) <= PAGE_SIZE, "elf hints");

static const syscall_fn local[NR_SYSCALLS] = {
	[9] = sys_mmap,
	[10] = sys_mprotect,
	[11] = sys_munmap,
	[12] = sys_brk,
	[25] = sys_mremap,
	[28] = sys_madvise,
	[13] = sys_rt_sigaction,
	[14] = sys_rt_sigprocmask,
	[39] = sys_getpid,
	[63] = sys_uname,
	[96] = sys_gettimeofday,
	[102] = sys_getuid,
	[104] = sys_getgid,
	[107] = sys_getuid,     /* geteuid: no setuid binaries in a VM */
	[108] = sys_getgid,     /* getegid */
	[110] = sys_getppid,
	[158] = sys_arch_prctl,
	[186] = sys_gettid,
	[201] = sys_time,
	[218] = sys_set_tid_address,
	[273] = sys_set_robust_list,
	[334] = sys_rseq,
	[228] = sys_clock_gettime,
};

struct start kmain(void)
{
	struct start s = { BOOT->entry, BOOT->user_sp };

	if (BOOT->magic != BOOT_MAGIC)
		hostcall(HC_UNKNOWN, 0, 1, 0, 0, 0, 0, 0);
	mm_init();
	time_init();
	return s;
}

/*
 * Lazy rewriting: a `syscall` (0f 05) that just ran becomes `call *%rax`
 * (ff d0), which enters through page 0 with no trap; the next run of this
 * site costs a call. Only executed sites are rewritten, so no byte pair
 * inside another instruction is ever touched. One 2-byte compare-exchange,
 * so a thread executing the site sees either instruction whole.
 */
static void rewrite_site(u64 site)
{
	unsigned short want = 0x050f;

	if (site < USER_MIN || site + 2 > BOOT->mem_size || *(unsigned short *)site != want)
		return;
	__atomic_compare_exchange_n((unsigned short *)site, &want, 0xd0ff, 0,
				    __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
}

long ksyscall(struct frame *f)
{
	u64 nr = f->rax;
	syscall_fn fn = nr < NR_SYSCALLS ? local[nr] : 0;
	volatile struct hostcall *hc = (struct hostcall *)HOSTCALL_ADDR;
	long r;

	/* The host reads the site to name it in traces and crash reports. */
	hc->site = f->rcx - 2;
	if (BOOT->rewrite == REWRITE_STUB)
		stub_site(f);
	else if (BOOT->rewrite == REWRITE_LAZY)
		rewrite_site(f->rcx - 2);
	if (!fn || (BOOT->route[nr] & ROUTE_HOST)) {
		r = hostcall(HC_SYSCALL, nr, f->rdi, f->rsi, f->rdx, f->r10, f->r8, f->r9);
		/* Served exitless: the host could not deliver what it raised
		 * (e.g. kill of ourselves), so ask now. After a doorbell the
		 * host has delivered it already and this finds nothing. */
		if (CPU->sigpending & ~CPU->sigmask)
			return hostcall(HC_SIGNAL, nr, r, 0, 0, 0, 0, 0);
		return r;
	}
	r = fn(f->rdi, f->rsi, f->rdx, f->r10, f->r8, f->r9);
	if (BOOT->trace) {
		hc->ret = r;
		hostcall(HC_TRACE, nr, f->rdi, f->rsi, f->rdx, f->r10, f->r8, f->r9);
	}
	/* e.g. rt_sigprocmask unblocked a pending signal: the host delivers it
	 * (and does not come back here when it runs a handler). */
	if (CPU->sigpending & ~CPU->sigmask)
		return hostcall(HC_SIGNAL, nr, r, 0, 0, 0, 0, 0);
	return r;
}
