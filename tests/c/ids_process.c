/* Process identity beyond getpid: umask, process group and session,
 * supplementary groups, real/effective/saved ids, setuid/setgid to the
 * current ids. Prints relations only (the native process is not its own
 * group leader until setpgid(0, 0)). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include "report.h"

#define NOPE 0xdeadbeefu

int main(void)
{
	/* umask: returns the old mask, keeps only the permission bits. */
	mode_t old = umask(077);
	printf("umask old within 0777: %d\n", (old & ~0777) == 0);
	printf("umask(077) then umask returns 077: %d\n", umask(0x1ffff) == 077);
	printf("umask keeps only 0777 bits: %d\n", (long)syscall(SYS_umask, old) == 0777);
	printf("umask restored: %d\n", umask(old) == old);

	/* process group and session */
	pid_t pg = getpgrp();
	printf("getpgrp positive: %d\n", pg > 0);
	printf("raw getpgrp agrees: %d\n", (long)syscall(SYS_getpgrp) == pg);
	printf("getpgid(0) == getpgrp: %d\n", getpgid(0) == pg);
	printf("getpgid(self) == getpgrp: %d\n", getpgid(getpid()) == pg);
	pid_t sid = getsid(0);
	printf("getsid positive: %d getsid(self) agrees: %d\n", sid > 0, getsid(getpid()) == sid);
	printf("getpgid(self + 2^32) agrees: %d\n", (long)syscall(SYS_getpgid, getpid() + 0x100000000L) == pg);
	show("getpgid(no such pid)", syscall(SYS_getpgid, 0x7ffffffe));
	show("getpgid(-1)", syscall(SYS_getpgid, -1));
	show("getsid(no such pid)", syscall(SYS_getsid, 0x7ffffffe));
	show("getsid(-1)", syscall(SYS_getsid, -1));
	show("setpgid(0, -1)", syscall(SYS_setpgid, 0, -1));
	show("setpgid(no such pid, 0)", syscall(SYS_setpgid, 0x7ffffffe, 0));
	show("setpgid(no such pid, -1)", syscall(SYS_setpgid, 0x7ffffffe, -1));
	show("setpgid(0, no such group)", syscall(SYS_setpgid, 0, 0x7ffffffe));
	show("setpgid(0, 0)", syscall(SYS_setpgid, 0, 0));
	printf("after setpgid(0, 0) getpgrp == getpid: %d\n", getpgrp() == getpid());
	printf("after setpgid(0, 0) getpgid(0) == getpid: %d\n", getpgid(0) == getpid());
	show("setpgid(self, self)", syscall(SYS_setpgid, getpid(), getpid()));
	show("setpgid(self, 0)", syscall(SYS_setpgid, getpid(), 0));
	show("setpgid(0, self)", syscall(SYS_setpgid, 0, getpid()));
	printf("libc setpgid: %d\n", setpgid(0, 0));
	printf("getsid unchanged: %d\n", getsid(0) == sid);

	/* supplementary groups */
	long n = syscall(SYS_getgroups, 0, NULL);
	printf("getgroups(0) non-negative: %d\n", n >= 0);
	static gid_t groups[65536];
	printf("getgroups(n) == n: %d\n", (long)syscall(SYS_getgroups, n, groups) == n);
	printf("getgroups(big) == n: %d\n", (long)syscall(SYS_getgroups, 65536, groups) == n);
	printf("libc getgroups == n: %d\n", getgroups(65536, groups) == n);
	printf("getgroups(2^32) counts: %d\n", (long)syscall(SYS_getgroups, 0x100000000L, NULL) == n);
	show("getgroups(-1)", syscall(SYS_getgroups, -1, groups));
	show("getgroups(-1, NULL)", syscall(SYS_getgroups, -1, NULL));
	/* The bad pointer only faults when there is a group to copy. */
	printf("getgroups(n or 1, bad pointer) %s\n",
	       syscall(SYS_getgroups, n ? n : 1, (void *)8) < 0 ? ename(errno) : "counts");
	if (n >= 2)
		show("getgroups(too small)", syscall(SYS_getgroups, 1, groups));
	else
		printf("getgroups(too small): fewer than 2 groups\n");

	/* real, effective and saved ids */
	uid_t r = NOPE, e = NOPE, s = NOPE;
	show("getresuid", syscall(SYS_getresuid, &r, &e, &s));
	printf("getresuid matches getuid/geteuid: %d saved == real: %d\n", r == getuid() && e == geteuid(), s == r);
	gid_t gr = NOPE, ge = NOPE, gs = NOPE;
	show("getresgid", syscall(SYS_getresgid, &gr, &ge, &gs));
	printf("getresgid matches getgid/getegid: %d saved == real: %d\n", gr == getgid() && ge == getegid(), gs == gr);
	printf("libc getresuid: %d libc getresgid: %d\n", getresuid(&r, &e, &s), getresgid(&gr, &ge, &gs));
	show("getresuid(NULL, NULL, NULL)", syscall(SYS_getresuid, NULL, NULL, NULL));
	r = e = s = NOPE;
	show("getresuid(&r, bad, &s)", syscall(SYS_getresuid, &r, (void *)8, &s));
	printf("getresuid wrote ruid: %d left suid: %d\n", r == getuid(), s == NOPE);
	r = e = s = NOPE;
	show("getresuid(&r, &e, bad)", syscall(SYS_getresuid, &r, &e, (void *)8));
	printf("getresuid wrote ruid and euid: %d\n", r == getuid() && e == geteuid());
	gr = ge = gs = NOPE;
	show("getresgid(bad, &e, &s)", syscall(SYS_getresgid, (void *)8, &ge, &gs));
	printf("getresgid left egid and sgid: %d\n", ge == NOPE && gs == NOPE);
	show("getresgid(&r, &e, NULL)", syscall(SYS_getresgid, &gr, &ge, NULL));

	/* setuid/setgid to the current ids succeed; -1 is not an id. */
	show("setuid(getuid())", syscall(SYS_setuid, getuid()));
	show("setgid(getgid())", syscall(SYS_setgid, getgid()));
	show("setuid(getuid() + 2^32)", syscall(SYS_setuid, getuid() + 0x100000000L));
	show("setgid(getgid() + 2^32)", syscall(SYS_setgid, getgid() + 0x100000000L));
	show("setuid(-1)", syscall(SYS_setuid, -1));
	show("setgid(-1)", syscall(SYS_setgid, -1));
	show("setuid((uid_t)-1)", syscall(SYS_setuid, 0xffffffffL));
	printf("libc setuid: %d libc setgid: %d\n", setuid(getuid()), setgid(getgid()));
	printf("ids unchanged: %d\n", getuid() == geteuid() && getgid() == getegid());
	return 0;
}
