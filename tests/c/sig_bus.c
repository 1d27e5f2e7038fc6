/* SIGBUS from the CPU: a misaligned load with rflags.AC set raises an
 * alignment-check exception at CPL 3 (BUS_ADRALN, si_addr NULL, trapno
 * 17). Linux does not clear AC for the handler, so it clears it first.
 * With "dfl" there is no handler: the run ends with SIGBUS (135). */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <ucontext.h>

static void clear_ac(void)
{
	__asm__ volatile("pushf\n\tandl $~0x40000, (%%rsp)\n\tpopf" ::: "memory", "cc");
}

static void on_bus(int sig, siginfo_t *si, void *p)
{
	ucontext_t *uc = p;
	clear_ac();
	greg_t *g = uc->uc_mcontext.gregs;
	printf("sig %d code %d addr0 %d trapno %lld ac in context %d\n", sig, si->si_code,
	       si->si_addr == NULL, (long long)g[REG_TRAPNO], (g[REG_EFL] & 0x40000) != 0);
	g[REG_EFL] &= ~0x40000L; /* the load runs again, without the check */
}

int main(int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "dfl") != 0) {
		struct sigaction sa;
		memset(&sa, 0, sizeof sa);
		sa.sa_sigaction = on_bus;
		sa.sa_flags = SA_SIGINFO;
		sigaction(SIGBUS, &sa, NULL);
	}
	static unsigned char buf[16] __attribute__((aligned(16))) = { 1, 2, 3, 4, 5, 6 };
	volatile unsigned *p = (unsigned *)(buf + 1);
	fflush(stdout);
	__asm__ volatile("pushf\n\torl $0x40000, (%%rsp)\n\tpopf" ::: "memory", "cc");
	unsigned x = *p;
	clear_ac();
	printf("loaded %#x\n", x);
	return 0;
}
