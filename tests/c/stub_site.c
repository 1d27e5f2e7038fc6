/* Syscall rewriting without page 0 (--rewrite=stub, the default on
 * kvm_pvm): a `mov $39, %eax; syscall` site of our own (with unwind info,
 * so the host can prove the mov a whole instruction) runs twice, then
 *  - a jump straight onto its old syscall address, with other numbers in
 *    rax (guest-served getppid, host-served write), is served as that
 *    syscall, as natively;
 *  - a genuine ud2, also one right after `mov $39, %eax`, raises SIGILL
 *    (ILL_ILLOPN at the ud2), as natively;
 *  - a NULL read at 0x18 raises SIGSEGV (SEGV_MAPERR, si_addr 0x18), as
 *    natively: page 0 is not mapped;
 *  - a site whose mov straddles a 16-byte block is rewritten too (no other
 *    thread could see a torn write);
 *  - a site whose 5-byte instruction is a load (mov 0x18(%rdi,%rax), %r9)
 *    is rewritten too; when that load faults, now in the stub, the
 *    program sees the fault at the instruction's own address;
 *  - a site whose instruction is 2 bytes (mov %edi, %eax) is rewritten
 *    through padding after the function's ret (a short jump to a jmp
 *    there), and a jump onto its old syscall is served too;
 *  - sites where the byte b8 five bytes before the syscall belongs to a
 *    longer instruction (41 b8 imm32: mov to %r8d; 8d b8 disp32: lea
 *    disp32(%rax), %edi), with rax equal to what a mov would have set,
 *    stay as built and keep their results.
 * Whether each site was rewritten is printed apart ("rewritten ...") so the
 * other lines compare with a native run. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

/* site_getpid: mov $39, %eax; syscall; ret, 16-byte aligned.
 * jump_to_site(nr, a, b, c): rax = nr, args, then jmp onto that syscall.
 * straddle_getpid: the same site, its mov at 13 bytes into a block.
 * mov_ud2: mov $39, %eax; ud2 (a genuine one). */
__asm__(".text\n"
	".p2align 4\n"
	".globl site_getpid\n.type site_getpid,@function\n"
	"site_getpid:\n.cfi_startproc\n"
	"\tmov $39, %eax\n"
	".globl site_sys\nsite_sys:\n"
	"\tsyscall\n\tret\n"
	".cfi_endproc\n.size site_getpid, .-site_getpid\n"
	".globl jump_to_site\n.type jump_to_site,@function\n"
	"jump_to_site:\n.cfi_startproc\n"
	"\tmov %rdi, %rax\n\tmov %rsi, %rdi\n\tmov %rdx, %rsi\n\tmov %rcx, %rdx\n"
	"\tjmp site_sys\n"
	".cfi_endproc\n.size jump_to_site, .-jump_to_site\n"
	".p2align 4\n"
	".skip 13, 0x90\n"
	".globl straddle_getpid\n.type straddle_getpid,@function\n"
	"straddle_getpid:\n.cfi_startproc\n"
	"\tmov $39, %eax\n"
	".globl straddle_sys\nstraddle_sys:\n"
	"\tsyscall\n\tret\n"
	".cfi_endproc\n.size straddle_getpid, .-straddle_getpid\n"
	".globl r8_site\n.type r8_site,@function\n"
	"r8_site:\n.cfi_startproc\n"
	"\txor %r8d, %r8d\n\tmov $39, %eax\n\t.byte 0x41, 0xb8, 39, 0, 0, 0\n"
	".globl r8_sys\nr8_sys:\n"
	"\tsyscall\n\tmov %r8, %rax\n\tret\n"
	".cfi_endproc\n.size r8_site, .-r8_site\n"
	".globl lea_site\n.type lea_site,@function\n"
	"lea_site:\n.cfi_startproc\n"
	"\txor %edi, %edi\n\tmov $39, %eax\n\t.byte 0x8d, 0xb8, 39, 0, 0, 0\n"
	".globl lea_sys\nlea_sys:\n"
	"\tsyscall\n\tmov %edi, %eax\n\tret\n"
	".cfi_endproc\n.size lea_site, .-lea_site\n"
	".globl load_site\n.type load_site,@function\n"
	"load_site:\n.cfi_startproc\n"
	"\tmov $39, %eax\n"
	".globl the_load\nthe_load:\n"
	"\t.byte 0x4c, 0x8b, 0x4c, 0x07, 0x18\n" /* mov 0x18(%rdi,%rax), %r9 */
	".globl load_sys\nload_sys:\n"
	"\tsyscall\n\tmov %r9, %rax\n\tret\n"
	".cfi_endproc\n.size load_site, .-load_site\n"
	".p2align 4\n"
	".globl short_site\n.type short_site,@function\n"
	"short_site:\n.cfi_startproc\n"
	"\ttest %edi, %edi\n\tjs 1f\n"
	"\tmov %edi, %eax\n"
	".globl short_sys\nshort_sys:\n"
	"\tsyscall\n\tret\n"
	"\t.p2align 4\n" /* nops after a ret: padding that never runs */
	"1:\tmov $-1, %rax\n\tret\n"
	".cfi_endproc\n.size short_site, .-short_site\n"
	".globl jump_to_short\n.type jump_to_short,@function\n"
	"jump_to_short:\n.cfi_startproc\n"
	"\tmov %rdi, %rax\n\tjmp short_sys\n"
	".cfi_endproc\n.size jump_to_short, .-jump_to_short\n"
	".globl mov_ud2\n.type mov_ud2,@function\n"
	"mov_ud2:\n.cfi_startproc\n"
	"\tmov $39, %eax\n"
	".globl the_ud2\nthe_ud2:\n"
	"\tud2\n\tret\n"
	".cfi_endproc\n.size mov_ud2, .-mov_ud2\n");

long site_getpid(void);
long straddle_getpid(void);
long jump_to_site(long nr, long a, long b, long c);
long r8_site(void);
long load_site(long base);
long short_site(long nr);
long jump_to_short(long nr);
long lea_site(void);
void mov_ud2(void);
extern const unsigned char site_sys[], straddle_sys[], the_ud2[], r8_sys[], lea_sys[],
	load_sys[], the_load[], short_sys[];
static long loaded = 1234;

static sigjmp_buf jb;

static void on_fault(int sig, siginfo_t *si, void *ctx)
{
	const void *rip = (void *)((ucontext_t *)ctx)->uc_mcontext.gregs[REG_RIP];

	printf("%s code %d addr %s at %s\n", sig == SIGILL ? "SIGILL" : "SIGSEGV", si->si_code,
	       sig == SIGSEGV ? (si->si_addr == (void *)0x18 ? "0x18" : "other")
	       : si->si_addr == (void *)the_ud2 ? "the_ud2"
	       : "other",
	       rip == the_load ? "the_load" : rip == the_ud2 ? "the_ud2" : "elsewhere");
	fflush(stdout);
	siglongjmp(jb, 1);
}

/* "e9 .. 0f 0b" (or "eb .. 0f 0b" after a 2-byte instruction) once
 * rewritten; "0f 05" after its instruction as built. */
static const char *state(const unsigned char *sys)
{
	int jump = sys[-5] == 0xe9 || sys[-2] == 0xeb;

	if (jump && sys[0] == 0x0f && sys[1] == 0x0b)
		return "yes";
	return !jump && sys[0] == 0x0f && sys[1] == 0x05 ? "no" : "corrupt";
}

int main(void)
{
	struct sigaction sa;
	pid_t pid = getpid();

	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = on_fault;
	sa.sa_flags = SA_SIGINFO;
	sigaction(SIGILL, &sa, NULL);
	sigaction(SIGSEGV, &sa, NULL);

	int first = site_getpid() == pid;
	printf("getpid via site %d %d\n", first, site_getpid() == pid);
	printf("jump onto the syscall: getpid %d getppid %d\n",
	       jump_to_site(SYS_getpid, 0, 0, 0) == pid,
	       jump_to_site(SYS_getppid, 0, 0, 0) == getppid());
	printf("write via the old syscall: %ld\n",
	       jump_to_site(SYS_write, 1, (long)"hello from the ud2\n", 19));
	printf("unknown number: %ld\n", jump_to_site(600, 0, 0, 0));
	first = straddle_getpid() == pid;
	printf("straddling site %d %d\n", first, straddle_getpid() == pid);
	long load1 = load_site((long)&loaded - 39 - 0x18);
	printf("load site %ld %ld\n", load1, load_site((long)&loaded - 39 - 0x18));
	int short1 = short_site(SYS_getpid) == pid, short2 = short_site(SYS_getpid) == pid;
	printf("short site %d %d, jump onto it %d\n", short1, short2,
	       jump_to_short(SYS_getppid) == getppid());
	long r8 = r8_site(), lea = lea_site();
	printf("b8 inside longer instructions: r8 %ld %ld, lea %ld %ld\n", r8, r8_site(), lea,
	       lea_site());
	fflush(stdout);

	if (!sigsetjmp(jb, 1))
		mov_ud2();
	if (!sigsetjmp(jb, 1))
		__builtin_trap();
	if (!sigsetjmp(jb, 1))
		printf("read %ld\n", *(volatile long *)0x18);
	if (!sigsetjmp(jb, 1))
		printf("load %ld\n", load_site(-39));
	printf("after the faults: site %d\n", site_getpid() == pid);

	fprintf(stderr, "rewritten site %s straddling %s load %s short %s r8 %s lea %s genuine %s\n",
		state(site_sys), state(straddle_sys), state(load_sys), state(short_sys), state(r8_sys),
		state(lea_sys),
		the_ud2[-5] == 0xb8 && the_ud2[1] == 0x0b ? "ud2" : "changed");
	return 0;
}
