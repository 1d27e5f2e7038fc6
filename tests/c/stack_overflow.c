/* A stack overflow faults below the stack (a guard, as Linux's), so a
 * SIGSEGV handler on sigaltstack takes it and siglongjmps out, again and
 * again; without a handler the program dies of SIGSEGV. */
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static sigjmp_buf env;
static volatile int depth;
static volatile int code;

static void handler(int sig, siginfo_t *si, void *ctx)
{
	code = si->si_code;
	siglongjmp(env, 1);
}

static int recurse(int n)
{
	volatile char buf[1024];
	buf[0] = n;
	depth = n;
	return recurse(n + 1) + buf[0];
}

int main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "nohandler"))
		return recurse(0);
	stack_t ss = { .ss_sp = malloc(65536), .ss_size = 65536 };
	sigaltstack(&ss, NULL);
	struct sigaction sa = { .sa_sigaction = handler, .sa_flags = SA_ONSTACK | SA_SIGINFO };
	sigaction(SIGSEGV, &sa, NULL);
	for (int i = 0; i < 3; i++) {
		depth = 0;
		if (!sigsetjmp(env, 1))
			recurse(0);
		else
			printf("recovered %d: deep %d, SEGV_MAPERR %d\n", i, depth > 1000,
			       code == SEGV_MAPERR);
	}
	return 0;
}
