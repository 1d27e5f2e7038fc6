/* Signals and threads: pthread_kill reaches the thread it names (spinning,
 * blocked in a condition wait, or asleep), a process-directed signal goes
 * to a thread that does not block it, and each thread has its own mask. */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>

static _Atomic long handled_tid;
static _Atomic int stop, phase;
static _Atomic long worker_tid;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;

static void on_signal(int sig) { handled_tid = syscall(SYS_gettid); }

static void wait_handled(void) {
	for (int i = 0; i < 2000 && !handled_tid; i++)
		usleep(1000);
}

static void *worker(void *arg) {
	worker_tid = syscall(SYS_gettid);
	while (phase == 0) /* spin */;
	pthread_mutex_lock(&mu);
	while (phase == 1)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);
	while (phase == 2) {
		struct timespec t = { 0, 5000000 };
		nanosleep(&t, NULL);
	}
	while (!stop)
		usleep(1000);
	return NULL;
}

int main(void) {
	struct sigaction sa = { .sa_handler = on_signal };
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGUSR2, &sa, NULL);
	pthread_t t;
	pthread_create(&t, NULL, worker, NULL);
	while (!worker_tid)
		usleep(100);

	pthread_kill(t, SIGUSR1); /* spinning in user code */
	wait_handled();
	printf("spinning: handled on the worker %d\n", handled_tid == worker_tid);
	handled_tid = 0;
	phase = 1;
	usleep(20000);
	pthread_kill(t, SIGUSR1); /* in pthread_cond_wait */
	wait_handled();
	printf("condition wait: handled on the worker %d\n", handled_tid == worker_tid);
	handled_tid = 0;
	pthread_mutex_lock(&mu);
	phase = 2;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
	usleep(20000);
	pthread_kill(t, SIGUSR1); /* in nanosleep */
	wait_handled();
	printf("sleeping: handled on the worker %d\n", handled_tid == worker_tid);
	handled_tid = 0;
	phase = 3;

	/* The main thread blocks SIGUSR2: a process-directed one goes to the worker. */
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, SIGUSR2);
	pthread_sigmask(SIG_BLOCK, &s, NULL);
	kill(getpid(), SIGUSR2);
	wait_handled();
	printf("kill with main blocking: handled on the worker %d\n", handled_tid == worker_tid);
	handled_tid = 0;

	/* To itself, the main thread's own: handled once unblocked, on main. */
	pthread_kill(pthread_self(), SIGUSR2);
	printf("pending on main while blocked %d\n", handled_tid == 0);
	pthread_sigmask(SIG_UNBLOCK, &s, NULL);
	printf("after unblock: handled on main %d\n", handled_tid == syscall(SYS_gettid));
	stop = 1;
	pthread_join(t, NULL);
	return 0;
}
