/* CPU exceptions as signals: a NULL write (SIGSEGV, SEGV_MAPERR, si_addr 0)
 * left with siglongjmp, integer division by zero (SIGFPE, FPE_INTDIV),
 * __builtin_trap (SIGILL, ILL_ILLOPN), int3 (SIGTRAP), a handler that
 * returns after moving uc_mcontext's RIP past the faulting instruction,
 * the sigcontext of a fault, and a handler on an alternate stack. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>
#include <unistd.h>

static sigjmp_buf jb;
static char *alt;
static size_t altsize;
static volatile int ran;

static void jump(int sig, siginfo_t *si, void *p)
{
	ucontext_t *uc = p;
	greg_t *g = uc->uc_mcontext.gregs;
	int addr_is_rip = (uintptr_t)si->si_addr == (uintptr_t)g[REG_RIP];
	printf("sig %d code %d addr0 %d addr_is_rip %d trapno %lld", sig, si->si_code,
	       si->si_addr == NULL, addr_is_rip, (long long)g[REG_TRAPNO]);
	if (sig == SIGSEGV)
		printf(" err_write %d err_user %d cr2 %d", (int)(g[REG_ERR] & 2) != 0,
		       (int)(g[REG_ERR] & 4) != 0, g[REG_CR2] == 0);
	printf(" fpregs %d\n", uc->uc_mcontext.fpregs != NULL);
	fflush(stdout);
	siglongjmp(jb, 1);
}

static void skip(int sig, siginfo_t *si, void *p)
{
	ucontext_t *uc = p;
	ran++;
	uc->uc_mcontext.gregs[REG_RIP] += 2; /* ud2 is two bytes */
	uc->uc_mcontext.gregs[REG_RAX] = 1234;
	(void)sig;
	(void)si;
}

static void on_alt(int sig)
{
	char here;
	stack_t ss;
	sigaltstack(NULL, &ss);
	printf("on altstack %d flags onstack %d\n",
	       &here >= alt && &here < alt + altsize, (ss.ss_flags & SS_ONSTACK) != 0);
	(void)sig;
}

static void install(int sig, void (*fn)(int, siginfo_t *, void *))
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = fn;
	sa.sa_flags = SA_SIGINFO;
	sigaction(sig, &sa, NULL);
}

int main(void)
{
	sigset_t m;

	install(SIGSEGV, jump);
	install(SIGFPE, jump);
	install(SIGILL, jump);
	install(SIGTRAP, jump);
	if (!sigsetjmp(jb, 1))
		*(volatile int *)0 = 1;
	sigprocmask(SIG_SETMASK, NULL, &m);
	printf("after segv, segv blocked %d\n", sigismember(&m, SIGSEGV));
	if (!sigsetjmp(jb, 1)) {
		volatile int zero = 0;
		volatile int r = 5 / zero;
		(void)r;
	}
	if (!sigsetjmp(jb, 1))
		__builtin_trap();
	if (!sigsetjmp(jb, 1))
		__asm__ volatile("int3");
	if (!sigsetjmp(jb, 1))
		(void)*(volatile int *)16;

	/* Returning from the handler resumes where uc_mcontext says. */
	install(SIGILL, skip);
	long rax;
	__asm__ volatile("mov $1, %%eax\n\tud2" : "=a"(rax));
	printf("skipped ud2: ran %d rax %ld\n", ran, rax);

	/* SA_ONSTACK with sigaltstack. */
	altsize = 64 * 1024;
	alt = malloc(altsize);
	stack_t ss = { .ss_sp = alt, .ss_size = altsize, .ss_flags = 0 };
	printf("sigaltstack %d\n", sigaltstack(&ss, NULL));
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_alt;
	sa.sa_flags = SA_ONSTACK;
	sigaction(SIGUSR1, &sa, NULL);
	raise(SIGUSR1);
	stack_t cur;
	sigaltstack(NULL, &cur);
	printf("after: flags %d size ok %d\n", cur.ss_flags, cur.ss_size == altsize);
	sa.sa_flags = 0;
	sigaction(SIGUSR1, &sa, NULL);
	raise(SIGUSR1);
	ss.ss_flags = SS_DISABLE;
	sigaltstack(&ss, NULL);
	sigaltstack(NULL, &cur);
	printf("disabled: flags %d\n", cur.ss_flags);
	ss.ss_flags = 0;
	ss.ss_size = 100;
	printf("too small: %d\n", sigaltstack(&ss, NULL));
	return 0;
}
