/* fork while another thread maps and unmaps memory without pause. Linux's
 * fork holds the mmap lock, so the child never sees a half-done mmap: its
 * own mmap, malloc and thread start work. A copy taken while the other
 * thread was inside mmap would leave the child that thread's lock, held
 * for ever. Prints counts only. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>
#include "proc.h"

#define FORKS 60

static volatile int stop;
static volatile unsigned long maps;

static void *mapper(void *arg)
{
	(void)arg;
	while (!stop) {
		size_t len = 4096 * (1 + maps % 64);
		char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (m == MAP_FAILED)
			break;
		m[0] = 1;
		mprotect(m, 4096, PROT_READ);
		munmap(m, len);
		maps++;
	}
	return NULL;
}

static void *nothing(void *arg)
{
	return arg;
}

int main(void)
{
	pthread_t t;
	if (pthread_create(&t, NULL, mapper, NULL))
		return 90;
	while (maps < 100)
		sleep_ms(1);
	int ok = 0;
	for (int i = 0; i < FORKS; i++) {
		pid_t c = fork();
		if (c < 0) {
			say("fork: %s\n", errname(errno));
			return 91;
		}
		if (c == 0) {
			char *m = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE,
				       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			if (m == MAP_FAILED)
				_exit(2);
			m[4096] = 1;
			munmap(m, 1 << 20);
			free(malloc(200000));
			pthread_t u;
			if (pthread_create(&u, NULL, nothing, NULL) || pthread_join(u, NULL))
				_exit(3);
			_exit(0);
		}
		int st;
		if (waitpid(c, &st, 0) == c && WIFEXITED(st) && WEXITSTATUS(st) == 0)
			ok++;
	}
	stop = 1;
	pthread_join(t, NULL);
	say("%d forks beside a mapping thread: %d children mapped memory and exited 0\n", FORKS, ok);
	say("the mapping thread went on: %d\n", maps > 100);
	return 0;
}
