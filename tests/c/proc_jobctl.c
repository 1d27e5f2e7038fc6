/* Job control: SIGSTOP and SIGTSTP stop a child (it makes no progress),
 * SIGCONT continues it, and its parent learns of both by wait (WUNTRACED,
 * WCONTINUED, waitid WSTOPPED) and by SIGCHLD (CLD_STOPPED, CLD_CONTINUED;
 * none with SA_NOCLDSTOP); a child stops itself; SIGKILL ends a stopped
 * child; a handled SIGTSTP does not stop. */
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "proc.h"

static volatile int *counter;
static volatile int chld_codes[8], nchld;

static void on_chld(int sig, siginfo_t *si, void *ctx)
{
	if (nchld < 8)
		chld_codes[nchld++] = si->si_code;
}

static void on_tstp(int sig)
{
	counter[1] = 1;
}

static pid_t spinner(void)
{
	pid_t p = fork();
	if (p == 0) {
		/* A group of its own: a process group with no parent outside it
		 * (the test's own may be one) is orphaned, and Linux then drops
		 * SIGTSTP, SIGTTIN and SIGTTOU instead of stopping. */
		setpgid(0, 0);
		signal(SIGTSTP, SIG_DFL);
		for (;;) {
			counter[0]++;
			sleep_ms(1);
		}
	}
	return p;
}

static const char *code(int c)
{
	return c == CLD_STOPPED ? "CLD_STOPPED" : c == CLD_CONTINUED ? "CLD_CONTINUED" :
	       c == CLD_KILLED ? "CLD_KILLED" : c == CLD_EXITED ? "CLD_EXITED" : "other";
}

static void show_wait(const char *what, int st)
{
	if (WIFSTOPPED(st))
		say("%s: stopped by %d\n", what, WSTOPSIG(st));
	else if (WIFCONTINUED(st))
		say("%s: continued\n", what);
	else
		status(what, st);
}

int main(void)
{
	counter = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	struct sigaction sa = { .sa_sigaction = on_chld, .sa_flags = SA_SIGINFO | SA_RESTART };
	sigaction(SIGCHLD, &sa, NULL);

	pid_t p = spinner();
	while (counter[0] < 5)
		sleep_ms(1);
	kill(p, SIGSTOP);
	int st;
	say("waitpid WUNTRACED: %s\n", res(waitpid(p, &st, WUNTRACED)));
	show_wait("child", st);
	sleep_ms(20);
	int c1 = counter[0];
	sleep_ms(100);
	say("no progress while stopped: %d\n", counter[0] == c1);
	say("WNOHANG|WUNTRACED again: %s\n", res(waitpid(p, &st, WNOHANG | WUNTRACED)));
	kill(p, SIGCONT);
	say("waitpid WCONTINUED: %s\n", res(waitpid(p, &st, WCONTINUED)));
	show_wait("child", st);
	while (counter[0] < c1 + 5)
		sleep_ms(1);
	say("progress after SIGCONT: 1\n");

	kill(p, SIGTSTP);
	siginfo_t si;
	memset(&si, 0, sizeof si);
	say("waitid WSTOPPED: %s\n", res(waitid(P_PID, p, &si, WSTOPPED)));
	say("  si_code %s si_status %d pid matches %d\n", code(si.si_code), si.si_status,
	    si.si_pid == p);
	kill(p, SIGKILL);
	waitpid(p, &st, 0);
	show_wait("stopped child killed", st);
	sleep_ms(20);
	say("SIGCHLD codes:");
	for (int i = 0; i < nchld; i++)
		say(" %s", code(chld_codes[i]));
	say("\n");

	/* A child that stops itself, continued by its parent. */
	p = fork();
	if (p == 0) {
		raise(SIGSTOP);
		_exit(3);
	}
	waitpid(p, &st, WUNTRACED);
	show_wait("self-stopped child", st);
	kill(p, SIGCONT);
	waitpid(p, &st, 0);
	show_wait("self-stopped child", st);

	/* SA_NOCLDSTOP: no SIGCHLD for stops; a handled SIGTSTP does not stop. */
	sa.sa_flags |= SA_NOCLDSTOP;
	sigaction(SIGCHLD, &sa, NULL);
	nchld = 0;
	counter[1] = 0;
	p = fork();
	if (p == 0) {
		setpgid(0, 0); /* as spinner() */
		signal(SIGTSTP, on_tstp);
		while (!counter[1])
			sleep_ms(1);
		raise(SIGSTOP);
		_exit(4);
	}
	sleep_ms(20);
	kill(p, SIGTSTP);
	waitpid(p, &st, WUNTRACED);
	show_wait("after a handled SIGTSTP", st);
	kill(p, SIGCONT);
	waitpid(p, &st, 0);
	show_wait("after a handled SIGTSTP", st);
	sleep_ms(20);
	say("SIGCHLD codes with SA_NOCLDSTOP:");
	for (int i = 0; i < nchld; i++)
		say(" %s", code(chld_codes[i]));
	say("\n");
	return 0;
}
