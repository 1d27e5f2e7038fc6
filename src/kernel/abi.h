/*
 * The contract between the host (TypeScript) and the guest kernel: the
 * guest address-space layout and the shared structures. src/kernel/abi.ts
 * mirrors it and tests/abi_test.ts checks that the two agree.
 *
 * Guest-virtual == guest-physical for all RAM; the host builds the page
 * tables before the first KVM_RUN and the guest never touches them.
 *
 * Each vCPU runs one guest thread. vCPU 0 uses the identity map as it is;
 * every other vCPU has its own page-table root in which a few pages of the
 * first 2 MiB (the exception stack, the host-call block, struct percpu and
 * the kernel stack) are its own frames. So the kernel addresses its
 * per-thread state at fixed addresses and needs no per-CPU register.
 */
#ifndef ABI_H
#define ABI_H

#define PAGE_SIZE        0x1000
#define GDT_ADDR         0x1000   /* supervisor-only system pages */
#define IDT_ADDR         0x2000
#define TSS_ADDR         0x3000
#define EXC_STACK_TOP    0x8000   /* TSS.rsp0: CPU pushes exception frames here */
#define PT_ADDR          0x20000  /* page tables: not mapped in the guest */
#define PT_END           0x80000
#define BOOT_INFO_ADDR   0x10000  /* struct boot_info, user-readable */
#define SIGACTIONS_ADDR  0x10800  /* struct k_sigaction[64], signal n at n - 1: the dispositions */
#define ELF_HINTS_ADDR   0x13000  /* struct elf_hint[NR_ELF_HINTS], by fd: where RELRO starts */
#define NR_ELF_HINTS     256
#define VVAR_ADDR        0x14000  /* the clock base the vDSO reads (vdso/clock.h), user-readable */
#define HOSTCALL_ADDR    0x11000  /* struct hostcall per vCPU */
#define HOSTCALL_STRIDE  0x100
#define PERCPU_ADDR      0x12000  /* struct percpu: this vCPU's (thread's) state */
#define PERCPU_SIG_OFF   56       /* offsetof(struct percpu, sig_rip), for entry.S */
#define FPU_SCRATCH_ADDR 0x12400  /* same page: an XSAVE image the host hands sig_return */
#define FPU_SCRATCH_SIZE 0xc00
#define DOORBELL_ADDR    0x80000  /* virtual page mapped to DOORBELL_GPA */
#define DOORBELL_GPA     0x4000000000 /* no memslot here: stores exit */
#define EXC_DOORBELL_OFF 0x100    /* + vector: exception report */
#define KICK_DOORBELL_OFF 0x800   /* a store here wakes a sleeping poller, no exit (ioeventfd) */
#define POLL_OFF         0        /* boot_info.polling: nobody polls; ring the doorbell */
#define POLL_ON          1        /* the host polls host-call blocks */
#define POLL_ASLEEP      2        /* it sleeps; a kick wakes it */
#define KERNEL_ADDR      0x100000 /* kernel image, user-accessible */
#define KSTACK_TOP       0x200000
#define KSTACK_PAGES     4        /* per-vCPU kernel stack below KSTACK_TOP */
#define USER_MIN         0x200000 /* lowest address user mappings may use */
#define TRAMPOLINE_PHYS  0xf000   /* frame shown at virtual page 0 when rewriting */
#define TRAMPOLINE_SLED  0x200    /* nops for syscall numbers 0..511, then a jmp */
#define STUB_ADDR        0x1c0000 /* REWRITE_STUB: u32 counts (slots taken, sites rewritten, */
#define STUB_FIRST       0x1c0040 /* traps, other sites), then STUB_SIZE-byte stubs up to */
#define STUB_END         0x1f0000 /* STUB_END; shared by all vCPUs, user-executable */
#define STUB_SIZE        16

#define BOOT_MAGIC       0x787574696d726568ULL /* "hermitux" */
#define NR_SYSCALLS      512

/* hostcall.kind */
#define HC_SYSCALL       0  /* serve syscall nr, write ret */
#define HC_TRACE         1  /* syscall nr was served in the guest; ret holds its result */
#define HC_CLOCK         2  /* write host realtime/monotonic ns into ret/arg[0] now,
                               clock_getres of fine/coarse clocks into arg[1]/arg[2] */
#define HC_UNKNOWN       3  /* guest kernel met an impossible state; arg[0] = code */
#define HC_ZERO          4  /* make [arg[0], arg[0] + arg[1]) read as zero */
#define HC_SIGNAL        5  /* syscall nr (served here, result arg[0]) left a
                               pending signal unblocked: deliver it */
#define HC_PROT          6  /* [arg[0], arg[0] + arg[1]) now has protection
                               arg[2] (PROT_*), or is back to the default */
#define HC_REWRITE       7  /* the syscall at arg[0] just trapped: may it and the
                               instruction before become a jump to a stub? ret 0
                               no, else the stub the host wrote (| 1: write the
                               jump however aligned), that instruction's length
                               << 32, a short jump's rel8 << 40 (stub.c) */
#define HC_MOVE          8  /* mremap above RAM: move the pages of [arg[0], arg[0] +
                               arg[2]) to arg[1] (ret 0), or ret < 0: copy them */
#define PROT_RESET       0x100 /* default again (past a file's end stays so) */
#define PROT_UNMAP       0x200 /* default again: the mapping is gone */
#define HC_POSTED        0x100 /* or'ed into kind on a doorbell for a request
                                  posted to the poller: serve it unless ack == seq */

/* boot_info.rewrite */
#define REWRITE_OFF      0
#define REWRITE_LAZY     1
#define REWRITE_STUB     2  /* mov $NR,%eax; syscall -> jmp stub; ud2, once verified */

/* boot_info.route[nr]: bits */
#define ROUTE_LOCAL      0  /* guest kernel serves it when it can */
#define ROUTE_HOST       1  /* always ask the host */
#define ROUTE_POLL       2  /* when the host serves it: exitless while it polls */

#ifndef __ASSEMBLER__
/* Filled by the host before boot. Field order is ABI. */
struct boot_info {
	unsigned long magic;
	unsigned long entry;        /* user entry point (interpreter or program) */
	unsigned long user_sp;      /* initial user stack pointer */
	unsigned long brk_start;    /* page-aligned end of the program image */
	unsigned long mmap_min;     /* [mmap_min, mmap_max) is free address space */
	unsigned long mmap_max;
	unsigned long mem_size;     /* bytes of guest RAM */
	unsigned long tsc_mult;     /* ns = (tsc delta * tsc_mult) >> 32 */
	unsigned long pid;
	unsigned long ppid;
	unsigned long uid;
	unsigned long gid;
	unsigned long trace;        /* report every guest-served syscall to the host */
	unsigned long rewrite;      /* REWRITE_*: how a syscall site changes on first use */
	unsigned long polling;      /* POLL_*: whether the host polls host-call blocks (exitless) */
	unsigned long spin_ticks;   /* how long a posted request waits for the poller (TSC) */
	char uts[6][65];            /* struct new_utsname, as uname(2) returns it */
	unsigned char route[NR_SYSCALLS];
	unsigned long high_min;     /* [high_min, high_max): address space beyond RAM, */
	unsigned long high_max;     /* backed by the host on first touch (0: none) */
};

/* At SIGACTIONS_ADDR, shared by all threads: Linux's struct sigaction for
 * rt_sigaction (the kernel's layout). The guest kernel sets handlers; the
 * host reads them to deliver, and itself sets SIG_DFL and SIG_IGN. */
struct k_sigaction {
	unsigned long handler;
	unsigned long flags;
	unsigned long restorer;
	unsigned long mask;
};

/* At ELF_HINTS_ADDR[fd % NR_ELF_HINTS], written by the host when it opens a
 * shared library: mapped whole (ld.so's reservation, `extent` bytes), its
 * RELRO would start `phase` bytes in. mm.c places such a mapping so that
 * RELRO begins a 2 MiB page: mprotect splits that page into 4 KiB ones,
 * and a shadow MMU then faults on every few pages touched there, so the
 * library's text is better kept out of it. */
struct elf_hint {
	unsigned int fd_plus1;      /* 0: none */
	unsigned int phase;
	unsigned long extent;
};

/* At HOSTCALL_ADDR in each vCPU's view. */
struct hostcall {
	unsigned long kind;
	unsigned long nr;
	unsigned long arg[6];
	long ret;
	unsigned long site;         /* user rip of the syscall instruction */
	unsigned int seq;           /* guest: number of the last request posted to the poller */
	unsigned int ack;           /* host: seq once served; ~seq: ring the doorbell instead */
};
/* At PERCPU_ADDR in each vCPU's view: the state of the thread it runs. */
struct percpu {
	unsigned long saved_user_rsp;   /* syscall_entry's scratch */
	unsigned long sigmask;          /* blocked signals (rt_sigprocmask) */
	unsigned long sigpending;       /* pending signals, written by the host */
	unsigned long tid;              /* gettid(), written by the host */
	unsigned long clear_child_tid;  /* set_tid_address; the host clears it at exit */
	unsigned long robust_list;      /* set_robust_list head, read by the host at exit */
	unsigned long rseq_area;
	/* What the signal stubs (entry.S) load last and where they jump: the
	 * registers they need themselves, set by the host with the rest. */
	unsigned long sig_rip, sig_rax, sig_rdx, sig_r11, sig_rcx;
	unsigned long sig_arg;          /* the stub's argument: an XSAVE area */
};

/*
 * A mapped range in the guest kernel's list (mm.c), read by the host for
 * /proc/self/maps. 'written' is set once it could have been written (so it
 * must be zeroed when reused); 'shared' marks a MAP_SHARED file mapping,
 * which the host writes back to its file before the range goes away;
 * 'ptes' that the host changed its page-table entries (a protection, or
 * pages past the end of a mapped file), to be reset when it goes away.
 */
struct region {
	unsigned long start, end;
	unsigned char written;
	unsigned char shared;       /* 1: a file's MAP_SHARED; 2: anonymous MAP_SHARED */
	unsigned char prot;
	unsigned char ptes;         /* its page-table entries differ from the default */
	unsigned char hole;         /* no mapping: space kept free above a library's data */
	unsigned char file;         /* a file mapping (the host knows which file) */
};
#endif /* __ASSEMBLER__ */

#endif
