/* The fd ioctls libuv uses: FIONBIO (non-blocking, seen by F_GETFL and by a
 * read of an empty pipe), FIOCLEX and FIONCLEX (seen by F_GETFD). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

int main(void) {
	int fds[2], on = 1, off = 0;
	char c;
	if (pipe(fds))
		return 1;
	printf("FIONBIO on: %d, O_NONBLOCK %d\n", ioctl(fds[0], FIONBIO, &on),
	       !!(fcntl(fds[0], F_GETFL) & O_NONBLOCK));
	long r = read(fds[0], &c, 1);
	printf("read of an empty pipe: %ld %s\n", r, r < 0 ? strerror(errno) : "");
	printf("FIONBIO off: %d, O_NONBLOCK %d\n", ioctl(fds[0], FIONBIO, &off),
	       !!(fcntl(fds[0], F_GETFL) & O_NONBLOCK));
	printf("FIOCLEX: %d, FD_CLOEXEC %d\n", ioctl(fds[1], FIOCLEX),
	       fcntl(fds[1], F_GETFD) & FD_CLOEXEC);
	printf("FIONCLEX: %d, FD_CLOEXEC %d\n", ioctl(fds[1], FIONCLEX),
	       fcntl(fds[1], F_GETFD) & FD_CLOEXEC);
	return 0;
}
