/* Resource limits: getrlimit/setrlimit/prlimit agree; lowering works;
 * soft above hard is EINVAL; bad resource EINVAL. */
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "report.h"

int main(void)
{
	struct rlimit r, q;
	show("getrlimit NOFILE", getrlimit(RLIMIT_NOFILE, &r));
	show("prlimit NOFILE", prlimit(0, RLIMIT_NOFILE, NULL, &q));
	printf("agree %d\n", r.rlim_cur == q.rlim_cur && r.rlim_max == q.rlim_max);
	struct rlimit lower = { 100, r.rlim_max };
	show("setrlimit lower soft", setrlimit(RLIMIT_NOFILE, &lower));
	getrlimit(RLIMIT_NOFILE, &q);
	printf("soft now 100 %d\n", q.rlim_cur == 100);
	struct rlimit bad = { 200, 100 };
	show("soft above hard", setrlimit(RLIMIT_NOFILE, &bad));
	show("bad resource", syscall(SYS_getrlimit, 99, &r));
	show("raw getrlimit STACK", syscall(SYS_getrlimit, RLIMIT_STACK, &r));
	show("prlimit other pid", prlimit(999999, RLIMIT_STACK, NULL, &r));
	return 0;
}
