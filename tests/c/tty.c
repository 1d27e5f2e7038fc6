/* stdio fds as the guest sees them: tty or not, window size, stat type. */
#include <stdio.h>
#include <unistd.h>
#include <termios.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
int main(void)
{
	for (int fd = 0; fd < 3; fd++) {
		struct winsize w;
		struct termios t;
		struct stat st;
		int ws = ioctl(fd, TIOCGWINSZ, &w);
		int tc = tcgetattr(fd, &t);
		fstat(fd, &st);
		printf("fd %d: isatty %d winsz %d tcgetattr %d chr %d fifo %d reg %d\n", fd, isatty(fd),
		       ws == 0, tc == 0, S_ISCHR(st.st_mode), S_ISFIFO(st.st_mode), S_ISREG(st.st_mode));
	}
	printf("bad ioctl on stdout: %d\n", ioctl(1, 0x12345678, 0));
	return 0;
}
