/*
 * Entry points. Everything here runs at the application's privilege level
 * except the exception stubs: on kvm_pvm `syscall` stays at CPL 3 and CPL 0
 * code is emulated (~13 us per handler), so the hot path must need no
 * privilege at all. The syscall path returns with popfq + jmp, never sysret.
 */
#include "abi.h"

	.section .text.header, "ax"
	/* Image header read by the host (src/kernel/image.ts). */
	.globl header
header:
	.quad BOOT_MAGIC
	.quad _start
	.quad syscall_entry
	.quad exception_stubs
	.quad __image_end
	.quad __bss_end
	.quad regions       /* struct region[], for /proc/self/maps */
	.quad nregions
	.quad brk_start
	.quad brk_cur
	.quad syscall_return /* a new thread starts here, on a frame the host built */
	.quad zpoline_entry  /* page 0's trampoline jumps here (rewritten sites) */
	.quad sig_enter_save /* signal stubs, below */
	.quad sig_enter
	.quad sig_return
	.quad sig_resume
	.quad stub_entry     /* a rewritten site's stub jumps here (stub.c) */
	.quad mm_lock        /* mm.c's lock: fork's copy holds it, as Linux's mmap lock */

	.text
	/* First guest instruction: rdi = &boot_info, rsp = KSTACK_TOP. */
	.globl _start
_start:
	call kmain
	/* kmain returns the user entry in rax and the stack in rdx. */
	mov %rdx, %rsp
	mov %rax, %rcx
	xor %eax, %eax
	xor %ebx, %ebx
	xor %edx, %edx   /* no rtld_fini for the program */
	xor %esi, %esi
	xor %edi, %edi
	xor %ebp, %ebp
	xor %r8d, %r8d
	xor %r9d, %r9d
	xor %r10d, %r10d
	xor %r11d, %r11d
	xor %r12d, %r12d
	xor %r13d, %r13d
	xor %r14d, %r14d
	xor %r15d, %r15d
	jmp *%rcx

/*
 * syscall: rcx = return rip, r11 = rflags, rsp still the user's. Switch to
 * the kernel stack without touching the user stack (the red zone may be
 * live), save what C may clobber, dispatch, restore, return by jmp.
 * The kernel stack and the saved rsp are this vCPU's (see abi.h).
 */
	.globl syscall_entry
syscall_entry:
	mov %rsp, PERCPU_ADDR
	mov $KSTACK_TOP, %rsp
syscall_common:
	push PERCPU_ADDR
	push %rax
	push %rdi
	push %rsi
	push %rdx
	push %rcx
	push %r8
	push %r9
	push %r10
	push %r11
	push %rbx
	push %rbp
	push %r12
	push %r13
	push %r14
	push %r15
	mov %rsp, %rdi
	cld
	call ksyscall
	.globl syscall_return
syscall_return:
	pop %r15
	pop %r14
	pop %r13
	pop %r12
	pop %rbp
	pop %rbx
	pop %r11
	pop %r10
	pop %r9
	pop %r8
	pop %rcx
	pop %rdx
	pop %rsi
	pop %rdi
	add $8, %rsp      /* rax holds the result */
	push %r11
	popfq
	pop %rsp          /* user rsp, saved in the frame */
	jmp *%rcx

/*
 * A rewritten site, --rewrite=lazy or static: `syscall` became `call *%rax`,
 * which landed in page 0's nop sled and its jmp brought us here with the
 * return address at (%rsp). The call's push below rsp could only land in
 * the red zone of code that keeps nothing there across a syscall.
 */
	.globl zpoline_entry
zpoline_entry:
	mov (%rsp), %rcx
	lea 8(%rsp), %rsp
	/* fall through */

/*
 * A rewritten site, --rewrite=stub: `mov $NR, %eax; syscall` became a jmp
 * to a stub (stub.c) that set eax and rcx (the return address, past the
 * old syscall) and jumped here; nothing touched the user stack. Build what
 * `syscall` would have left (r11 = rflags, rsp = the caller's), then share
 * the syscall path. A program running with AC (alignment checks) or TF
 * set gets rflags masked as SFMASK would (popfq costs ~40 ns here, so only
 * then): the kernel must not take #AC or #DB.
 */
	.globl stub_entry
stub_entry:
	mov %rsp, PERCPU_ADDR
	mov $KSTACK_TOP, %rsp
	pushfq
	pop %r11
	test $0x40100, %r11d
	jnz 1f
	jmp syscall_common
1:	pushq $2
	popfq
	jmp syscall_common

/*
 * Signal entry and return, with the guest saving and loading its own FPU
 * state: XSAVE into the signal frame, XRSTOR from it, as Linux does. The
 * host could do it with KVM_GET/SET_XSAVE, but on kvm_pvm those must be
 * made on the thread that runs the vCPU, which costs a thread hand-off
 * each (0.3-0.5 ms when it sleeps): a 1 ms interval timer then starved the
 * program it interrupts.
 *
 * The host points the vCPU here with every register as the handler (or the
 * resumed code) must find it, except those these stubs use, which it
 * leaves in percpu's sig_* slots with the stub's argument. For a call the
 * host served exitless it cannot set registers: it rewrites the syscall
 * frame instead, so that syscall_return's popfq + jmp *%rcx lands here.
 * Nothing here changes rflags, and nothing here can be interrupted by a
 * signal (rip is not user code).
 */
#define SIG_SLOT(n) (PERCPU_ADDR + PERCPU_SIG_OFF + 8 * (n))

	.globl sig_enter_save
sig_enter_save:           /* the argument: where to XSAVE the interrupted FPU state */
	mov $-1, %eax
	mov $-1, %edx
	mov SIG_SLOT(5), %r11
	xsave64 (%r11)
	.globl sig_enter
sig_enter:                /* a handler starts with a clean FPU */
	mov $-1, %eax
	mov $-1, %edx
	xrstor64 fpu_init
	jmp sig_resume

	.globl sig_return
sig_return:               /* the argument: an XSAVE image the host has checked */
	mov $-1, %eax
	mov $-1, %edx
	mov SIG_SLOT(5), %r11
	xrstor64 (%r11)
	.globl sig_resume
sig_resume:
	mov SIG_SLOT(1), %rax
	mov SIG_SLOT(2), %rdx
	mov SIG_SLOT(3), %r11
	mov SIG_SLOT(4), %rcx
	jmp *SIG_SLOT(0)

	.section .rodata
	/* XSTATE_BV = 0: every component in its init state; XRSTOR still
	 * loads MXCSR from here, so it holds the init value. */
	.balign 64
fpu_init:
	.word 0x37f
	.fill 22, 1, 0
	.long 0x1f80
	.fill 576 - 28, 1, 0
	.text

/*
 * Exception stubs, 16 bytes each, one per vector 0..31. These run at CPL 0
 * (emulated on kvm_pvm), so each is a store to the doorbell page and an
 * iretq: the MMIO exit's address names the vector and the CPU-pushed frame
 * is at rsp (on the IST stack). A host that delivers a signal rewrites that
 * frame (rip = the handler, rsp = the signal frame) and points rsp at its
 * rip slot, past any error code; iretq then enters the handler at the
 * interrupted privilege level. A fault with no handler never resumes.
 */
	.balign 16
	.globl exception_stubs
exception_stubs:
	.set vec, 0
	.rept 32
	movb $0, DOORBELL_ADDR + EXC_DOORBELL_OFF + vec
	iretq
	.balign 16
	.set vec, vec + 1
	.endr
