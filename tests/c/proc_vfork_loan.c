/* vfork children that run in their parent's memory (under hermitux: on
 * its machine, loan.ts), after a first fork has made the run one of several
 * processes: what the child writes, maps or moves is the parent's; what is
 * the parent's own (its signal handlers and mask, its TLS, its pid) is its
 * own again when the child has called execve or _exit, or was killed.
 * `proc_vfork_loan exec N` exits with N (the program run by execve);
 * `proc_vfork_loan N` spawns N times in a row at the end (default 200). */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "proc.h"

extern char **environ;

static volatile int shared;
static volatile long child_pid, child_ppid;
static volatile int *mapped;
static __thread int tls_word = 11;
static volatile int usr1;

static void on_usr1(int s)
{
	(void)s;
	usr1++;
}

static pid_t spawn_self(const char *code, const posix_spawnattr_t *attr, const char *self)
{
	pid_t c;
	char *argv[] = { (char *)self, "exec", (char *)code, NULL };
	int r = posix_spawn(&c, self, NULL, attr, argv, environ);
	return r ? -r : c;
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "exec"))
		return atoi(argv[2]);
	int st;
	pid_t me = getpid();
	/* A first child: the run has several processes from here on. */
	pid_t f = fork();
	if (f == 0)
		_exit(0);
	waitpid(f, &st, 0);

	pid_t c = vfork();
	if (c == 0) {
		shared = 42;
		child_pid = getpid();
		child_ppid = getppid();
		tls_word = 99;
		_exit(7);
	}
	waitpid(c, &st, 0);
	status("vfork _exit", st);
	say("child wrote 42: %d, its pid is vfork's: %d, its ppid ours: %d, tls shared: %d\n",
	    shared, child_pid == c, child_ppid == getpid(), tls_word);
	tls_word = 11;

	/* The child sets a TLS of its own (arch_prctl) and ends: ours stays. */
	static char fake_tls[4096];
	c = vfork();
	if (c == 0) {
		long r;
		__asm__ volatile("syscall" : "=a"(r) : "0"(158L), "D"(0x1002L), "S"(fake_tls + 2048)
				 : "rcx", "r11", "memory");
		__asm__ volatile("syscall" : : "a"(231L), "D"(0L) : "rcx", "r11", "memory");
		for (;;)
			;
	}
	waitpid(c, &st, 0);
	say("our TLS after the child set its own: %d\n", tls_word == 11);

	/* The parent's FPU registers: the child's own use of xmm8 is not ours. */
	double before = 1.25, after = 0;
	__asm__ volatile("movsd %0, %%xmm8" : : "m"(before) : "xmm8");
	c = vfork();
	if (c == 0) {
		double junk = 7.5;
		__asm__ volatile("movsd %0, %%xmm8" : : "m"(junk) : "xmm8");
		_exit(0);
	}
	__asm__ volatile("movsd %%xmm8, %0" : "=m"(after) : : "xmm8");
	waitpid(c, &st, 0);
	say("xmm8 ours after the child's: %d\n", after == 1.25);

	c = vfork();
	if (c == 0) {
		int *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p != MAP_FAILED)
			*p = 5;
		mapped = p;
		_exit(0);
	}
	waitpid(c, &st, 0);
	say("the child's mapping is ours: %d\n", mapped != MAP_FAILED && *mapped == 5);

	/* The child resets SIGUSR1 and unblocks SIGUSR2 before execve: ours stay. */
	struct sigaction sa = { .sa_handler = on_usr1 };
	sigaction(SIGUSR1, &sa, NULL);
	sigset_t block, none, now;
	sigemptyset(&block);
	sigaddset(&block, SIGUSR2);
	sigemptyset(&none);
	sigprocmask(SIG_BLOCK, &block, NULL);
	posix_spawnattr_t attr;
	posix_spawnattr_init(&attr);
	sigset_t def;
	sigemptyset(&def);
	sigaddset(&def, SIGUSR1);
	posix_spawnattr_setsigdefault(&attr, &def);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
	c = spawn_self("9", &attr, argv[0]);
	waitpid(c, &st, 0);
	status("posix_spawn with SETSIGDEF and SETSIGMASK", st);
	raise(SIGUSR1);
	sigprocmask(SIG_BLOCK, NULL, &now);
	say("our handler ran: %d, SIGUSR2 still blocked: %d\n", usr1, sigismember(&now, SIGUSR2));
	sigprocmask(SIG_UNBLOCK, &block, NULL);

	c = spawn_self("3", NULL, "/no/such/program");
	say("posix_spawn missing: %s\n", c < 0 ? errname(-c) : "spawned");

	/* A vfork child killed by a signal: the parent goes on as it was. */
	c = vfork();
	if (c == 0) {
		kill(getpid(), SIGKILL); /* not raise: libc's would name the parent's thread */
		_exit(1);
	}
	waitpid(c, &st, 0);
	status("vfork child killed", st);

	/* A vfork child that vforks in turn. */
	c = vfork();
	if (c == 0) {
		pid_t g = vfork();
		if (g == 0)
			_exit(3);
		int gs;
		waitpid(g, &gs, 0);
		_exit(WEXITSTATUS(gs) + 1);
	}
	waitpid(c, &st, 0);
	status("vfork in a vfork child", st);

	/* Many in a row: each exits with its index. */
	int bad = 0, n = argc == 2 ? atoi(argv[1]) : 200;
	for (int i = 0; i < n; i++) {
		char code[8];
		snprintf(code, sizeof code, "%d", i % 100);
		c = spawn_self(code, NULL, argv[0]);
		if (c < 0 || waitpid(c, &st, 0) != c || !WIFEXITED(st) || WEXITSTATUS(st) != i % 100)
			bad++;
	}
	say("%d spawns, wrong: %d\n", n, bad);
	say("our pid unchanged: %d, tls ours: %d\n", getpid() == me, tls_word);
	return 0;
}
