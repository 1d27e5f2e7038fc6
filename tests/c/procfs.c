/* /proc of processes: the program's own entries (/proc/self, thread-self,
 * stat, status, task/ with a second thread), a child's while it sleeps
 * (stat, status, cmdline, comm, exe, fd/, task/), the same child as a
 * zombie, and nothing once it is reaped; a forked child's new name.
 * Prints relations between the numbers (pids, ids, start times), never
 * the numbers themselves.
 * "list" instead prints what /proc lists: the program, its thread's
 * entry and init's, by name (hermitux lists only the guest's processes). */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "proc.h"

static char text[8192];

/* The whole of a file into text; its length, or -1 with errno. */
static int slurp(const char *path)
{
	int fd = open(path, O_RDONLY), n = 0, r;
	if (fd < 0)
		return -1;
	while ((r = read(fd, text + n, sizeof text - 1 - n)) > 0)
		n += r;
	close(fd);
	text[n] = 0;
	return r < 0 ? -1 : n;
}

/* /proc/PID/stat's fields: f[1] is comm, f[2] the state, f[k] field k+1. */
struct stat_line {
	char comm[64];
	char state;
	long long f[53];
};

static int stat_of(const char *who, struct stat_line *s)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%s/stat", who);
	if (slurp(path) < 0)
		return -1;
	char *open_paren = strchr(text, '('), *close_paren = strrchr(text, ')');
	memset(s, 0, sizeof *s);
	snprintf(s->comm, sizeof s->comm, "%.*s", (int)(close_paren - open_paren - 1), open_paren + 1);
	s->f[0] = atoll(text);
	s->state = close_paren[2];
	char *at = close_paren + 4;
	for (int k = 3; k < 53 && *at; k++) {
		s->f[k] = strtoll(at, &at, 10);
		while (*at == ' ')
			at++;
	}
	return 0;
}

/* The value of "Key:" in the text last read. */
static const char *field(const char *key)
{
	static char ring[16][256];
	static int turn;
	char *out = ring[turn++ % 16];
	size_t len = strlen(key);
	for (char *line = text; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : 0) {
		if (strncmp(line, key, len) || line[len] != ':')
			continue;
		char *v = line + len + 1;
		while (*v == '\t' || *v == ' ')
			v++;
		size_t n = strcspn(v, "\n");
		snprintf(out, sizeof ring[0], "%.*s", (int)n, v);
		return out;
	}
	return "(none)";
}

static const char *link_of(const char *path)
{
	static char buf[PATH_MAX];
	ssize_t n = readlink(path, buf, sizeof buf - 1);
	if (n < 0)
		return ename(errno);
	buf[n] = 0;
	return buf;
}

/* The names in a directory, sorted numerically, as one line; its count. */
static int names(const char *path, char *out, size_t size)
{
	DIR *d = opendir(path);
	int ids[256], n = 0;
	if (!d) {
		snprintf(out, size, "%s", ename(errno));
		return -1;
	}
	for (struct dirent *e; (e = readdir(d)) && n < 256;)
		if (e->d_name[0] != '.')
			ids[n++] = atoi(e->d_name);
	closedir(d);
	for (int i = 1; i < n; i++)
		for (int j = i; j > 0 && ids[j - 1] > ids[j]; j--) {
			int t = ids[j];
			ids[j] = ids[j - 1];
			ids[j - 1] = t;
		}
	out[0] = 0;
	for (int i = 0; i < n; i++)
		snprintf(out + strlen(out), size - strlen(out), "%s%d", i ? " " : "", ids[i]);
	return n;
}

static int pipe_fds[2];

static void *sleeper(void *arg)
{
	char c, path[64];
	snprintf(path, sizeof path, "%d/task/%ld", getpid(), syscall(SYS_gettid));
	say("thread: thread-self names it %d\n", !strcmp(link_of("/proc/thread-self"), path));
	*(long *)arg = syscall(SYS_gettid);
	read(pipe_fds[0], &c, 1);
	return NULL;
}

static void list(void)
{
	long tid = 0;
	char who[32];
	pipe(pipe_fds);
	pthread_t t;
	pthread_create(&t, NULL, sleeper, &tid);
	while (!__atomic_load_n(&tid, __ATOMIC_SEQ_CST))
		sleep_ms(1);
	DIR *d = opendir("/proc");
	int self = 0, thread = 0, init = 0, others = 0, links = 0;
	for (struct dirent *e; (e = readdir(d));) {
		links += (!strcmp(e->d_name, "self") || !strcmp(e->d_name, "thread-self")) &&
			 e->d_type == DT_LNK;
		if (e->d_name[0] < '1' || e->d_name[0] > '9')
			continue;
		int n = atoi(e->d_name);
		self += n == getpid(), thread += n == tid, init += n == 1;
		others += n != getpid() && n != tid && n != 1;
	}
	closedir(d);
	say("/proc lists: self %d, thread %d, init %d, others %d; self and thread-self links %d\n",
	    self, thread, init, others, links);
	struct stat st;
	snprintf(who, sizeof who, "/proc/%ld", tid);
	say("thread's own entry: %s\n", stat(who, &st) ? ename(errno) : "exists");
	snprintf(who, sizeof who, "/proc/%d/stat", getppid());
	say("parent's stat: %s\n", slurp(who) < 0 ? ename(errno) : "read");
	say("init's stat: %s\n", slurp("/proc/1/stat") < 0 ? ename(errno) : "read");
	write(pipe_fds[1], "x", 1);
	pthread_join(t, NULL);
}

int main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "list")) {
		list();
		return 0;
	}
	if (argc > 1 && !strcmp(argv[1], "child")) {
		char c;
		write(10, "r", 1);
		read(12, &c, 1); /* until the parent closes its end */
		_exit(5);
	}
	char me[32], path[128], buf[1024], own_comm[16], uids[64];
	struct stat_line own, ch;
	snprintf(me, sizeof me, "%d", getpid());
	const char *base = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
	snprintf(own_comm, sizeof own_comm, "%s", base);

	/* The program's own entries. */
	say("/proc/self names the pid %d\n", !strcmp(link_of("/proc/self"), me));
	snprintf(path, sizeof path, "%s/task/%s", me, me);
	say("/proc/thread-self names the thread %d\n", !strcmp(link_of("/proc/thread-self"), path));
	stat_of("self", &own);
	say("self stat: pid %d comm %d state %c ppid %d pgrp %d session %d threads %lld\n",
	    own.f[0] == getpid(), !strcmp(own.comm, own_comm), own.state, own.f[3] == getppid(),
	    own.f[4] == getpgrp(), own.f[5] == getsid(0), own.f[19]);
	slurp("/proc/self/status");
	snprintf(uids, sizeof uids, "%d\t%d\t%d\t%d", getuid(), getuid(), getuid(), getuid());
	say("self status: Name %d State %s Pid %d PPid %d Uid %d Threads %s\n",
	    !strcmp(field("Name"), own_comm), field("State"), atoi(field("Pid")) == getpid(),
	    atoi(field("PPid")) == getppid(), !strcmp(field("Uid"), uids), field("Threads"));
	slurp("/proc/self/comm");
	say("self comm: %d\n", !strncmp(text, own_comm, strlen(own_comm)) && text[strlen(own_comm)] == '\n');

	/* A child that execs this program again, then sleeps in read(). */
	int ready[2], hold[2];
	pipe(ready);
	pipe(hold);
	pid_t c = fork();
	if (c == 0) {
		int null = open("/dev/null", O_RDONLY);
		dup2(ready[1], 10);
		dup2(null, 11);
		dup2(hold[0], 12);
		for (int fd = 3; fd < 10; fd++)
			close(fd);
		execv(argv[0], (char *[]){argv[0], "child", "two words", "", NULL});
		_exit(99);
	}
	close(ready[1]);
	close(hold[0]);
	read(ready[0], buf, 1);
	char cs[32];
	snprintf(cs, sizeof cs, "%d", c);
	for (int i = 0; i < 500 && !stat_of(cs, &ch) && ch.state != 'S'; i++)
		sleep_ms(10);
	say("child stat: pid %d comm %d state %c ppid %d pgrp %d session %d tty %d threads %lld\n",
	    ch.f[0] == c, !strcmp(ch.comm, own_comm), ch.state, ch.f[3] == getpid(),
	    ch.f[4] == getpgrp(), ch.f[5] == getsid(0), ch.f[6] == own.f[6], ch.f[19]);
	say("child stat: started after us %d, vsize %d, exit signal %lld\n", ch.f[21] >= own.f[21],
	    ch.f[22] > 0, ch.f[37]);
	snprintf(path, sizeof path, "/proc/%d/status", c);
	slurp(path);
	say("child status: Name %d State %s Tgid %d Pid %d PPid %d Uid %d Threads %s VmRSS %d\n",
	    !strcmp(field("Name"), own_comm), field("State"), atoi(field("Tgid")) == c,
	    atoi(field("Pid")) == c, atoi(field("PPid")) == getpid(), !strcmp(field("Uid"), uids),
	    field("Threads"), atoi(field("VmRSS")) > 0);
	snprintf(path, sizeof path, "/proc/%d/cmdline", c);
	int n = slurp(path);
	char want[PATH_MAX + 32];
	int wn = snprintf(want, sizeof want, "%s%cchild%ctwo words%c%c", argv[0], 0, 0, 0, 0);
	say("child cmdline: %d bytes as argv %d\n", n == wn, n == wn && !memcmp(text, want, wn));
	char real[PATH_MAX];
	snprintf(path, sizeof path, "/proc/%d/exe", c);
	say("child exe is the program %d\n", realpath(argv[0], real) && !strcmp(link_of(path), real));
	snprintf(path, sizeof path, "/proc/%d/fd", c);
	names(path, buf, sizeof buf);
	say("child fds: %s\n", buf + (strncmp(buf, "0 1 2 ", 6) ? 0 : 6));
	snprintf(path, sizeof path, "/proc/%d/fd/11", c);
	say("child fd 11: %s\n", link_of(path));
	char mine[64];
	snprintf(mine, sizeof mine, "/proc/self/fd/%d", ready[0]);
	snprintf(mine, sizeof mine, "%s", link_of(mine));
	snprintf(path, sizeof path, "/proc/%d/fd/10", c);
	say("child fd 10: a pipe %d, the one we read %d\n", !strncmp(link_of(path), "pipe:[", 6),
	    !strcmp(link_of(path), mine));
	snprintf(path, sizeof path, "/proc/%d/task", c);
	names(path, buf, sizeof buf);
	say("child tasks: just it %d\n", atoi(buf) == c && !strchr(buf, ' '));
	struct stat st;
	snprintf(path, sizeof path, "/proc/%d", c);
	say("child dir: %d, ours %d\n", !stat(path, &st) && S_ISDIR(st.st_mode) && (st.st_mode & 0777) == 0555,
	    st.st_uid == getuid());
	snprintf(path, sizeof path, "/proc/%d/stat", c);
	say("child stat file: %d\n", !lstat(path, &st) && S_ISREG(st.st_mode) && (st.st_mode & 0777) == 0444);
	snprintf(path, sizeof path, "/proc/%d/nothing", c);
	say("a name it has not: %s\n", open(path, O_RDONLY) < 0 ? ename(errno) : "opened");

	/* The child ends: a zombie until waited for. */
	close(hold[1]);
	for (int i = 0; i < 500 && !stat_of(cs, &ch) && ch.state != 'Z'; i++)
		sleep_ms(10);
	say("zombie stat: state %c ppid %d exit code %lld\n", ch.state, ch.f[3] == getpid(), ch.f[51]);
	snprintf(path, sizeof path, "/proc/%d/status", c);
	slurp(path);
	say("zombie status: Name %d State %s VmRSS %s\n", !strcmp(field("Name"), own_comm),
	    field("State"), field("VmRSS"));
	snprintf(path, sizeof path, "/proc/%d/cmdline", c);
	say("zombie cmdline: %d bytes\n", slurp(path));
	snprintf(path, sizeof path, "/proc/%d/exe", c);
	say("zombie exe: %s\n", link_of(path));
	snprintf(path, sizeof path, "/proc/%d/fd", c);
	say("zombie fds: %d\n", names(path, buf, sizeof buf));
	int ws;
	waitpid(c, &ws, 0);
	status("reaped", ws);
	snprintf(path, sizeof path, "/proc/%d", c);
	say("after reaping: %s\n", stat(path, &st) ? ename(errno) : "still there");
	say("its stat: %s\n", stat_of(cs, &ch) ? ename(errno) : "still there");

	/* A forked child renames itself: the name is its own. */
	int named[2], stay[2];
	pipe(named);
	pipe(stay);
	pid_t k = fork();
	if (k == 0) {
		close(stay[1]);
		prctl(PR_SET_NAME, "renamed");
		write(named[1], "n", 1);
		read(stay[0], buf, 1);
		_exit(0);
	}
	read(named[0], buf, 1);
	snprintf(path, sizeof path, "/proc/%d/comm", k);
	slurp(path);
	say("renamed child: %s", text);
	slurp("/proc/self/comm");
	say("we keep our name %d\n", !strncmp(text, own_comm, strlen(own_comm)));
	close(stay[1]);
	waitpid(k, &ws, 0);

	/* A second thread: in task/ and in the counts. */
	long tid = 0;
	pipe(pipe_fds);
	pthread_t t;
	pthread_create(&t, NULL, sleeper, &tid);
	while (!__atomic_load_n(&tid, __ATOMIC_SEQ_CST))
		sleep_ms(1);
	names("/proc/self/task", buf, sizeof buf);
	/* In order: after pids wrap around, the thread's id may be the lower. */
	long pid = getpid();
	snprintf(path, sizeof path, "%ld %ld", pid < tid ? pid : tid, pid < tid ? tid : pid);
	say("two threads: task/ lists both %d\n", !strcmp(buf, path));
	stat_of("self", &own);
	slurp("/proc/self/status");
	say("two threads: stat %lld, status %s\n", own.f[19], field("Threads"));
	snprintf(path, sizeof path, "/proc/self/task/%ld/stat", tid);
	slurp(path);
	say("the thread's stat names it %d\n", atol(text) == tid);
	write(pipe_fds[1], "x", 1);
	pthread_join(t, NULL);
	return 0;
}
