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
 * A rewritten site: `syscall` became `call *%rax`, which landed in page 0's
 * nop sled and its jmp brought us here with the return address at (%rsp).
 * Build what `syscall` would have left (rcx = return address, r11 =
 * rflags, rsp = the caller's) without touching the user stack again, then
 * share the syscall path. The call's push below rsp could only land in the
 * red zone of code that keeps nothing there across a syscall.
 */
	.globl zpoline_entry
zpoline_entry:
	mov (%rsp), %rcx
	lea 8(%rsp), %rsp
	mov %rsp, PERCPU_ADDR
	mov $KSTACK_TOP, %rsp
	pushfq
	pop %r11
	jmp syscall_common

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
