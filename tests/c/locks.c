/* Record locks (fcntl) and flock on a file of our own. */
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>
#include "report.h"

int main(void)
{
	int fd = open("lock.dat", O_CREAT | O_RDWR | O_TRUNC, 0644);
	write(fd, "0123456789", 10);
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 5 };
	show("F_SETLK write lock", fcntl(fd, F_SETLK, &fl));
	struct flock q = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 10 };
	show("F_GETLK", fcntl(fd, F_GETLK, &q));
	printf("own lock shows as unlocked %d\n", q.l_type == F_UNLCK);
	fl.l_type = F_UNLCK;
	show("F_SETLK unlock", fcntl(fd, F_SETLK, &fl));
	show("flock ex", flock(fd, LOCK_EX));
	show("flock un", flock(fd, LOCK_UN));
	show("flock bad op", flock(fd, 12345));
	show("flock bad fd", flock(99, LOCK_SH));
	unlink("lock.dat");
	return 0;
}
