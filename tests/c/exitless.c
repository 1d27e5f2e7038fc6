/* Host calls at every spacing around the host's polling window (2 ms):
 * back to back (served exitless), after a pause long enough that the host
 * stopped polling (the doorbell), and in between, where a request races
 * the host going to sleep. Each must be served exactly once, in order. */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static long now_us(void) {
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000000L + t.tv_nsec / 1000;
}

/* Busy, with no syscall the host sees (clock_gettime is the guest kernel's). */
static void spin(long us) {
	long end = now_us() + us;
	while (now_us() < end)
		;
}

int main(void) {
	char line[32];
	long total = 0;
	for (int i = 0; i < 300; i++) {
		spin((i % 30) * 150); /* 0 .. 4.35 ms */
		int n = snprintf(line, sizeof line, "call %d\n", i);
		total += write(1, line, n);
	}
	/* A burst: thousands of calls while the host polls. */
	int fd = dup(1);
	for (int i = 0; i < 5000; i++)
		total += write(fd, "", 0) == 0;
	close(fd);
	printf("total %ld\n", total);
	return 0;
}
