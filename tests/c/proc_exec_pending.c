/* Signals pending at execve stay pending in the new image (the mask is
 * kept too), as on Linux: a blocked SIGUSR1 and two queued SIGRTMIN+1, and
 * a SIGUSR2 whose handler the new image no longer has (SIG_DFL: it kills
 * once unblocked, which the parent sees). */
#include <signal.h>
#include <string.h>
#include <unistd.h>
#include "proc.h"

static int got_usr1, got_rt;

static void on(int sig)
{
	if (sig == SIGUSR1)
		got_usr1++;
	else
		got_rt++;
}

int main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "after")) {
		sigset_t set;
		sigpending(&set);
		say("after execve: USR1 pending %d, RTMIN+1 pending %d, USR2 pending %d\n",
		    sigismember(&set, SIGUSR1), sigismember(&set, SIGRTMIN + 1),
		    sigismember(&set, SIGUSR2));
		sigprocmask(SIG_SETMASK, NULL, &set);
		say("mask kept: USR1 %d\n", sigismember(&set, SIGUSR1));
		signal(SIGUSR1, on);
		signal(SIGRTMIN + 1, on);
		sigset_t both;
		sigemptyset(&both);
		sigaddset(&both, SIGUSR1);
		sigaddset(&both, SIGRTMIN + 1);
		sigprocmask(SIG_UNBLOCK, &both, NULL);
		say("handled: USR1 %d, RTMIN+1 %d\n", got_usr1, got_rt);
		sigaddset(&both, SIGUSR2);
		sigprocmask(SIG_UNBLOCK, &both, NULL); /* SIGUSR2: default action */
		say("not reached\n");
		return 0;
	}
	pid_t p = fork();
	if (p == 0) {
		sigset_t set;
		sigemptyset(&set);
		sigaddset(&set, SIGUSR1);
		sigaddset(&set, SIGUSR2);
		sigaddset(&set, SIGRTMIN + 1);
		sigprocmask(SIG_BLOCK, &set, NULL);
		signal(SIGUSR2, on); /* reset to SIG_DFL by execve */
		kill(getpid(), SIGUSR1);
		kill(getpid(), SIGUSR2);
		union sigval v = { 0 };
		sigqueue(getpid(), SIGRTMIN + 1, v);
		sigqueue(getpid(), SIGRTMIN + 1, v);
		execl(argv[0], argv[0], "after", (char *)0);
		_exit(127);
	}
	int st;
	waitpid(p, &st, 0);
	status("child", st);
	return 0;
}
