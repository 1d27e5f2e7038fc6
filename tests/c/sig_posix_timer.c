/* POSIX timers (timer_create and the rest): the default notification
 * (SIGALRM carrying the timer id), a one-shot timer with a signal and
 * value of its own (SA_SIGINFO: si_code SI_TIMER, si_value), timer_gettime
 * while armed and after, an interval timer whose signal is blocked (one
 * signal, the rest counted as overruns), SIGEV_NONE, an absolute expiry in
 * the past, SIGEV_THREAD (libc's helper thread, woken by SIGEV_THREAD_ID),
 * a signal sent to a thread dying with it, a deleted timer that never
 * fires, errors, and a forked child that has none of its parent's timers. */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "report.h"

static volatile sig_atomic_t got_signo, got_code, got_value;

static void on_signal(int sig, siginfo_t *si, void *uc)
{
	got_signo = sig;
	got_code = si->si_code;
	got_value = si->si_value.sival_int;
	(void)uc;
}

static void catch(int sig)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = on_signal;
	sa.sa_flags = SA_SIGINFO;
	sigaction(sig, &sa, NULL);
}

static void arm(timer_t t, long value_ns, long interval_ns, int flags)
{
	struct itimerspec its = { { interval_ns / 1000000000, interval_ns % 1000000000 },
				  { value_ns / 1000000000, value_ns % 1000000000 } };
	if (timer_settime(t, flags, &its, NULL) != 0)
		printf("timer_settime: %s\n", ename(errno));
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, ms % 1000 * 1000000 };
	while (nanosleep(&ts, &ts) != 0)
		;
}

/* Waits up to 2 s for a blocked `sig`; its siginfo. */
static int wait_for(int sig, siginfo_t *si)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, sig);
	struct timespec two = { 2, 0 };
	return sigtimedwait(&set, si, &two);
}

static int pipefd[2];

/* Blocks every signal, says so, then waits for the word to end. */
static void *blocker(void *arg)
{
	int *fds = arg;
	sigset_t all;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	char c = 'r';
	write(fds[1], &c, 1);
	read(fds[2], &c, 1);
	return NULL;
}

static void notified(union sigval v)
{
	char c = (char)v.sival_int;
	write(pipefd[1], &c, 1);
}

int main(void)
{
	/* The default: SIGALRM, si_value the timer's id. */
	catch(SIGALRM);
	timer_t t0;
	show("timer_create default", timer_create(CLOCK_MONOTONIC, NULL, &t0));
	arm(t0, 20000000, 0, 0);
	while (!got_signo)
		pause();
	printf("default: sig %d code %d value is id %d\n", got_signo, got_code,
	       got_value == (int)(intptr_t)t0);
	timer_delete(t0);

	/* One-shot, SIGUSR1 with a value; timer_gettime armed and after. */
	catch(SIGUSR1);
	got_signo = 0;
	struct sigevent sev;
	memset(&sev, 0, sizeof sev);
	sev.sigev_notify = SIGEV_SIGNAL;
	sev.sigev_signo = SIGUSR1;
	sev.sigev_value.sival_int = 42;
	timer_t t1;
	show("timer_create SIGUSR1", timer_create(CLOCK_REALTIME, &sev, &t1));
	arm(t1, 200000000, 0, 0);
	struct itimerspec cur;
	timer_gettime(t1, &cur);
	printf("armed: left in (0, 200ms] %d interval %ld\n",
	       cur.it_value.tv_sec == 0 && cur.it_value.tv_nsec > 0 &&
		       cur.it_value.tv_nsec <= 200000000,
	       (long)cur.it_interval.tv_nsec);
	while (!got_signo)
		pause();
	printf("one-shot: sig %d code %d value %d\n", got_signo, got_code, got_value);
	timer_gettime(t1, &cur);
	printf("after: left %ld.%09ld\n", (long)cur.it_value.tv_sec, cur.it_value.tv_nsec);

	/* An interval timer into a blocked signal: one signal, overruns. */
	sigset_t usr2;
	sigemptyset(&usr2);
	sigaddset(&usr2, SIGUSR2);
	sigprocmask(SIG_BLOCK, &usr2, NULL);
	sev.sigev_signo = SIGUSR2;
	sev.sigev_value.sival_int = 7;
	timer_t t2;
	timer_create(CLOCK_MONOTONIC, &sev, &t2);
	arm(t2, 10000000, 10000000, 0);
	sleep_ms(80);
	siginfo_t si;
	int sig = wait_for(SIGUSR2, &si);
	int over = timer_getoverrun(t2);
	printf("interval: sig %d code %d value %d overrun>=3 %d si_overrun matches %d\n", sig,
	       si.si_code, si.si_value.sival_int, over >= 3, si.si_overrun == over);
	arm(t2, 0, 0, 0);
	timer_gettime(t2, &cur);
	printf("disarmed: left %ld interval %ld\n", (long)cur.it_value.tv_nsec,
	       (long)cur.it_interval.tv_nsec);
	/* One more may have come before the disarm (on a slow machine): take it first. */
	struct timespec zero = { 0, 0 };
	while (sigtimedwait(&usr2, &si, &zero) > 0)
		;
	sleep_ms(30);
	printf("none after disarm: %d\n", sigtimedwait(&usr2, &si, &zero));

	/* An absolute REALTIME expiry in the past fires at once. */
	sev.sigev_notify = SIGEV_SIGNAL;
	sev.sigev_value.sival_int = 9;
	timer_t t4;
	timer_create(CLOCK_REALTIME, &sev, &t4);
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	struct itimerspec past = { { 0, 0 }, { now.tv_sec - 10, 0 } };
	timer_settime(t4, TIMER_ABSTIME, &past, NULL);
	sig = wait_for(SIGUSR2, &si);
	printf("past expiry: sig %d value %d\n", sig, si.si_value.sival_int);
	/* And one a little ahead on the monotonic clock. */
	timer_t t5;
	timer_create(CLOCK_MONOTONIC, &sev, &t5);
	clock_gettime(CLOCK_MONOTONIC, &now);
	now.tv_nsec += 20000000;
	if (now.tv_nsec >= 1000000000) {
		now.tv_sec++;
		now.tv_nsec -= 1000000000;
	}
	struct itimerspec ahead = { { 0, 0 }, now };
	timer_settime(t5, TIMER_ABSTIME, &ahead, NULL);
	sig = wait_for(SIGUSR2, &si);
	struct timespec after;
	clock_gettime(CLOCK_MONOTONIC, &after);
	printf("monotonic expiry: sig %d not early %d\n", sig,
	       after.tv_sec > now.tv_sec ||
		       (after.tv_sec == now.tv_sec && after.tv_nsec >= now.tv_nsec));
	timer_delete(t4);
	timer_delete(t5);
	sigprocmask(SIG_UNBLOCK, &usr2, NULL);

	/* SIGEV_THREAD: libc's helper thread runs the function. */
	pipe(pipefd);
	memset(&sev, 0, sizeof sev);
	sev.sigev_notify = SIGEV_THREAD;
	sev.sigev_notify_function = notified;
	sev.sigev_value.sival_int = 'T';
	timer_t t6;
	show("timer_create SIGEV_THREAD", timer_create(CLOCK_MONOTONIC, &sev, &t6));
	arm(t6, 20000000, 0, 0);
	char c = 0;
	read(pipefd[0], &c, 1);
	printf("SIGEV_THREAD: ran with '%c'\n", c);
	timer_delete(t6);

	/* (musl's timer_delete ends its helper thread with a tkill the thread
	 * blocks.) A signal sent to a thread that blocks it dies with the
	 * thread: SIGUSR2's default action would end the process. */
	int ready[2], go[2];
	pipe(ready);
	pipe(go);
	int fds[3] = { ready[0], ready[1], go[0] };
	pthread_t th;
	pthread_create(&th, NULL, blocker, fds);
	read(ready[0], &c, 1);
	printf("pthread_kill blocked SIGUSR2: %d\n", pthread_kill(th, SIGUSR2));
	write(go[1], "g", 1);
	pthread_join(th, NULL);
	sleep_ms(20);
	printf("survived the thread's end\n");

	/* SIGEV_NONE counts down and sends nothing; a deleted timer does not
	 * fire (both long enough for a slow machine to look in time). */
	got_signo = 0;
	sev.sigev_notify = SIGEV_NONE;
	timer_t t3;
	show("timer_create SIGEV_NONE", timer_create(CLOCK_MONOTONIC, &sev, &t3));
	arm(t3, 200000000, 0, 0);
	sev.sigev_notify = SIGEV_SIGNAL;
	sev.sigev_signo = SIGUSR1;
	timer_t t7;
	timer_create(CLOCK_MONOTONIC, &sev, &t7);
	arm(t7, 200000000, 0, 0);
	show("timer_delete armed", timer_delete(t7));
	timer_gettime(t3, &cur);
	int armed = cur.it_value.tv_nsec > 0;
	sleep_ms(250);
	timer_gettime(t3, &cur);
	printf("SIGEV_NONE: armed %d then left %ld\n", armed, (long)cur.it_value.tv_nsec);
	timer_delete(t3);
	printf("deleted timer fired %d\n", got_signo);
	/* Errors. */
	/* musl returns -EINVAL itself here, without errno. */
	printf("timer_delete again fails %d\n", timer_delete(t7) != 0);
	show("timer_gettime deleted", timer_gettime(t7, &cur));
	show("timer_getoverrun deleted", timer_getoverrun(t7));
	timer_t bogus = (timer_t)(intptr_t)12345;
	show("timer_settime unknown id", timer_settime(bogus, 0, &past, NULL));
	timer_t t8;
	show("timer_create clock 99", timer_create(99, NULL, &t8));
	sev.sigev_signo = 0;
	show("timer_create signal 0", timer_create(CLOCK_MONOTONIC, &sev, &t8));
	sev.sigev_signo = SIGUSR1;
	sev.sigev_notify = 77;
	show("timer_create notify 77", timer_create(CLOCK_MONOTONIC, &sev, &t8));
	timer_create(CLOCK_MONOTONIC, NULL, &t8);
	struct itimerspec bad = { { 0, 0 }, { 0, 1000000000 } };
	show("timer_settime nsec 1e9", timer_settime(t8, 0, &bad, NULL));

	/* A child of fork has none of its parent's timers. */
	arm(t8, 5000000000, 0, 0);
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		show("child: timer_gettime of the parent's timer", timer_gettime(t8, &cur));
		fflush(stdout);
		_exit(0);
	}
	int st;
	waitpid(pid, &st, 0);
	timer_gettime(t8, &cur);
	printf("parent's timer still armed %d\n", cur.it_value.tv_sec > 0);
	return 0;
}
