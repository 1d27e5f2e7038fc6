/* ITIMER_REAL: alarm(1) then pause() runs the handler; alarm's return
 * value; an interval timer firing 3 times into a busy loop (asynchronous
 * delivery) and into pause(); getitimer; nanosleep interrupted (EINTR) by a
 * handled SIGALRM; sigtimedwait on a blocked SIGALRM; a SA_RESTART handler
 * firing while the program makes syscalls. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t ticks;

static void tick(int sig)
{
	ticks++;
	(void)sig;
}

static void handle(int flags)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = tick;
	sa.sa_flags = flags;
	sigaction(SIGALRM, &sa, NULL);
}

static void every(long us)
{
	struct itimerval it = { { 0, us }, { 0, us } };
	setitimer(ITIMER_REAL, &it, NULL);
}

int main(void)
{
	handle(0);
	printf("alarm first %u\n", alarm(5));
	printf("alarm again %u\n", alarm(0));
	alarm(1);
	int r = pause();
	printf("pause %d %s ticks %d\n", r, strerror(errno), ticks);

	ticks = 0;
	every(20000);
	struct itimerval cur;
	getitimer(ITIMER_REAL, &cur);
	printf("getitimer interval %ld armed %d\n", (long)cur.it_interval.tv_usec,
	       cur.it_value.tv_sec == 0 && cur.it_value.tv_usec > 0 && cur.it_value.tv_usec <= 20000);
	while (ticks < 3)
		; /* busy: each SIGALRM interrupts user code */
	every(0);
	getitimer(ITIMER_REAL, &cur);
	/* A slow machine may take one more tick before the timer is off. */
	printf("busy loop ticks>=3 %d, disarmed %d\n", ticks >= 3, cur.it_value.tv_usec == 0);

	ticks = 0;
	every(10000);
	while (ticks < 3)
		pause();
	every(0);
	printf("pause loop ticks>=3 %d\n", ticks >= 3);

	struct itimerval one = { { 0, 0 }, { 0, 30000 } };
	setitimer(ITIMER_REAL, &one, NULL);
	struct timespec ts = { 5, 0 }, rem = { 0, 0 };
	r = nanosleep(&ts, &rem);
	printf("nanosleep %d %s rem<5s %d\n", r, strerror(errno), rem.tv_sec < 5 && rem.tv_sec >= 4);

	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGALRM);
	sigprocmask(SIG_BLOCK, &set, NULL);
	setitimer(ITIMER_REAL, &one, NULL);
	siginfo_t si;
	struct timespec wait = { 2, 0 };
	r = sigtimedwait(&set, &si, &wait);
	printf("sigtimedwait %d code %d\n", r, si.si_code);
	sigprocmask(SIG_UNBLOCK, &set, NULL);

	handle(SA_RESTART);
	ticks = 0;
	every(2000);
	int fd = open("/dev/null", O_WRONLY);
	long n = 0;
	while (ticks < 5 || n == 0) { /* all 5 may come before the first write */
		n += write(fd, "x", 1) == 1;
		getppid();
	}
	every(0);
	printf("SA_RESTART: writes ok %d\n", n > 0);
	return 0;
}
