/* Pipes: nonblocking reads on empty pipes, FIONREAD, EOF after the writer
 * closes, pipe2 flags. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include "report.h"

int main(void)
{
	int p[2];
	show("pipe2 nonblock cloexec", pipe2(p, O_NONBLOCK | O_CLOEXEC));
	char buf[16];
	show("read empty nonblocking", read(p[0], buf, sizeof buf));
	show("F_GETFD", fcntl(p[0], F_GETFD));
	show("F_GETFL nonblock", fcntl(p[0], F_GETFL) & O_NONBLOCK ? 1 : 0);
	write(p[1], "hello", 5);
	int n = 0;
	show("FIONREAD", ioctl(p[0], FIONREAD, &n));
	printf("bytes waiting %d\n", n);
	show("read", read(p[0], buf, sizeof buf));
	close(p[1]);
	show("read at EOF", read(p[0], buf, sizeof buf));
	show("pipe2 bad flags", pipe2(p, 0x12345));
	return 0;
}
