/* Shared by the test programs: errno names and one line per result, so
 * output compares across libcs (strerror texts differ between them). */
#include <errno.h>
#include <stdio.h>

static const char *ename(int e)
{
	switch (e) {
	case EPERM: return "EPERM";
	case ENOENT: return "ENOENT";
	case ESRCH: return "ESRCH";
	case EINTR: return "EINTR";
	case EBADF: return "EBADF";
	case EEXIST: return "EEXIST";
	case EAGAIN: return "EAGAIN";
	case ENOTDIR: return "ENOTDIR";
	case ELOOP: return "ELOOP";
	case EISDIR: return "EISDIR";
	case EXDEV: return "EXDEV";
	case EROFS: return "EROFS";
	case EACCES: return "EACCES";
	case EPIPE: return "EPIPE";
	case ENOTEMPTY: return "ENOTEMPTY";
	case EMLINK: return "EMLINK";
	case ERANGE: return "ERANGE";
	case EFAULT: return "EFAULT";
	case EINVAL: return "EINVAL";
	case ENOSYS: return "ENOSYS";
	case EOPNOTSUPP: return "EOPNOTSUPP";
	case ENODATA: return "ENODATA";
	case E2BIG: return "E2BIG";
	case ENXIO: return "ENXIO";
	case ESPIPE: return "ESPIPE";
	case ECHILD: return "ECHILD";
	}
	return "other";
}

/* A raw syscall's outcome: its value, or -1 and the errno name. */
static void show(const char *what, long r)
{
	if (r < 0)
		printf("%s: -1 %s\n", what, ename(errno));
	else
		printf("%s: %ld\n", what, r);
}
