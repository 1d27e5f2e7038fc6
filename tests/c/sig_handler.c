/* Handlers for signals a program sends itself: siginfo from raise, kill,
 * tgkill and sigqueue; blocking then unblocking delivers once; SA_RESETHAND,
 * SA_NODEFER, SIG_IGN, default-ignored signals; sigpending, sigsuspend,
 * sigtimedwait on a pending signal and with a timeout. Prints relations,
 * never addresses, so the output is the same natively and in hermitux. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static volatile int count, depth, maxdepth, lastsig, lastcode, pidok, uidok;
static volatile sig_atomic_t nested_done;

static void on_info(int sig, siginfo_t *si, void *uc)
{
	count++;
	lastsig = sig;
	lastcode = si->si_code;
	pidok = si->si_pid == getpid();
	uidok = si->si_uid == getuid();
	(void)uc;
}

static void nest(int sig)
{
	depth++;
	if (depth > maxdepth)
		maxdepth = depth;
	if (!nested_done) {
		nested_done = 1;
		raise(sig); /* runs now with SA_NODEFER, after we return without */
	}
	depth--;
}

static void install(int sig, void (*fn)(int, siginfo_t *, void *), int flags)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = fn;
	sa.sa_flags = SA_SIGINFO | flags;
	sigaction(sig, &sa, NULL);
}

static void report(const char *what)
{
	printf("%s: count %d sig %d code %d pid %d uid %d\n", what, count, lastsig, lastcode,
	       pidok, uidok);
	count = lastsig = lastcode = pidok = uidok = 0;
}

int main(void)
{
	sigset_t set, old, pend;
	struct sigaction sa, cur;

	install(SIGUSR1, on_info, 0);
	raise(SIGUSR1);
	report("raise");
	kill(getpid(), SIGUSR1);
	report("kill");
	syscall(SYS_tgkill, getpid(), gettid(), SIGUSR1);
	report("tgkill");
	syscall(SYS_tkill, gettid(), SIGUSR1);
	report("tkill");
	union sigval v = { .sival_int = 7 };
	sigqueue(getpid(), SIGUSR1, v);
	report("sigqueue");
	int r = kill(999999, SIGUSR1);
	printf("kill other pid: %d %s\n", r, strerror(errno));
	r = kill(getpid(), 99);
	printf("kill bad signal: %d %s\n", r, strerror(errno));
	printf("kill signal 0: %d\n", kill(getpid(), 0));

	/* Blocked: pending, delivered once when unblocked. */
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigprocmask(SIG_BLOCK, &set, &old);
	raise(SIGUSR1);
	raise(SIGUSR1);
	sigpending(&pend);
	printf("blocked: count %d pending %d\n", count, sigismember(&pend, SIGUSR1));
	sigprocmask(SIG_SETMASK, &old, NULL);
	report("unblocked");
	sigpending(&pend);
	printf("pending after %d\n", sigismember(&pend, SIGUSR1));

	/* The handler runs with its signal blocked, and the old mask comes back. */
	sigprocmask(SIG_SETMASK, NULL, &old);
	printf("usr1 blocked outside handler %d\n", sigismember(&old, SIGUSR1));

	/* SA_RESETHAND: the second raise finds SIG_DFL... ignored here via SIGWINCH. */
	install(SIGWINCH, on_info, SA_RESETHAND);
	raise(SIGWINCH);
	sigaction(SIGWINCH, NULL, &cur);
	report("resethand");
	printf("reset to default %d\n", cur.sa_handler == SIG_DFL);
	raise(SIGWINCH); /* default action: ignore */
	report("winch default");

	/* SA_NODEFER vs. the default: nesting depth. */
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = nest;
	sa.sa_flags = SA_NODEFER;
	sigaction(SIGUSR2, &sa, NULL);
	raise(SIGUSR2);
	printf("nodefer maxdepth %d\n", maxdepth);
	maxdepth = 0;
	nested_done = 0;
	sa.sa_flags = 0;
	sigaction(SIGUSR2, &sa, NULL);
	raise(SIGUSR2);
	printf("defer maxdepth %d\n", maxdepth);

	/* SIG_IGN and default-ignored signals do nothing. */
	signal(SIGTERM, SIG_IGN);
	raise(SIGTERM);
	raise(SIGCHLD);
	raise(SIGURG);
	printf("ignored ok\n");
	/* An ignored signal is not even left pending while blocked-then-ignored. */
	sigprocmask(SIG_BLOCK, &set, NULL);
	raise(SIGUSR1);
	signal(SIGUSR1, SIG_IGN);
	sigpending(&pend);
	printf("ignoring discards pending %d\n", !sigismember(&pend, SIGUSR1));
	install(SIGUSR1, on_info, 0);

	/* sigsuspend: the pending signal runs the handler, then the mask returns. */
	raise(SIGUSR1);
	sigemptyset(&set);
	r = sigsuspend(&set);
	int e = errno;
	sigprocmask(SIG_SETMASK, NULL, &old);
	printf("sigsuspend %d %s blocked again %d\n", r, strerror(e), sigismember(&old, SIGUSR1));
	report("sigsuspend");

	/* sigtimedwait: takes a pending blocked signal without running its handler. */
	raise(SIGUSR1);
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	siginfo_t si;
	struct timespec ts = { 0, 20000000 };
	r = sigtimedwait(&set, &si, &ts);
	printf("sigtimedwait %d code %d pid %d handler count %d\n", r, si.si_code,
	       si.si_pid == getpid(), count);
	r = sigtimedwait(&set, &si, &ts);
	printf("sigtimedwait empty %d %s\n", r, strerror(errno));
	return 0;
}
