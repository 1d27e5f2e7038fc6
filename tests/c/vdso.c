/* The vDSO: AT_SYSINFO_EHDR points at an ELF shared object whose dynamic
 * symbols (found here by hand, no dlopen) give clock_gettime,
 * gettimeofday, time, getcpu and clock_getres at version LINUX_2.6; libc's
 * calls and the vDSO's agree, the monotonic clocks never go back, CPU
 * clocks and unknown ids still work (the vDSO makes the syscall), in a
 * fork child and after exec too, with a timer's signals arriving meanwhile;
 * /proc/self/maps shows [vdso] and [vvar].
 * `vdso exec` is the image the full run execs. */
#define _GNU_SOURCE
#include <elf.h>
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/auxv.h>
#include <sys/time.h>
#include <sys/wait.h>
#include "report.h"

#define LOOPS 20000

typedef int (*gettime_fn)(clockid_t, struct timespec *);
typedef int (*gettimeofday_fn)(struct timeval *, void *);
typedef time_t (*time_fn)(time_t *);
typedef long (*getcpu_fn)(unsigned *, unsigned *, void *);

static const Elf64_Ehdr *eh;
static const Elf64_Sym *syms;
static const char *strs;
static const Elf64_Word *hash;
static const Elf64_Half *versym;
static const Elf64_Verdef *verdef;
static unsigned long base;
static gettime_fn vgettime;
static volatile sig_atomic_t ticks;

static const char *CLOCKS[] = { "REALTIME", "MONOTONIC", "PROCESS_CPUTIME", "THREAD_CPUTIME",
				"MONOTONIC_RAW", "REALTIME_COARSE", "MONOTONIC_COARSE", "BOOTTIME" };

/* Reads the vDSO's ELF header, program headers and dynamic section. */
static int parse(void)
{
	const Elf64_Phdr *ph;
	const Elf64_Dyn *dyn = 0;
	const char *soname = 0;
	unsigned long soname_off = 0;
	int load = 0, has_soname = 0, gnu_hash = 0;

	eh = (const Elf64_Ehdr *)getauxval(AT_SYSINFO_EHDR);
	printf("AT_SYSINFO_EHDR present: %d\n", eh != 0);
	if (!eh)
		return 0;
	printf("ELF magic: %d class 64: %d ET_DYN: %d x86-64: %d\n",
	       memcmp(eh->e_ident, ELFMAG, SELFMAG) == 0, eh->e_ident[EI_CLASS] == ELFCLASS64,
	       eh->e_type == ET_DYN, eh->e_machine == EM_X86_64);
	printf("page-aligned: %d\n", ((unsigned long)eh & 4095) == 0);
	ph = (const Elf64_Phdr *)((const char *)eh + eh->e_phoff);
	for (int i = 0; i < eh->e_phnum; i++) {
		if (ph[i].p_type == PT_LOAD && !load++)
			base = (unsigned long)eh + ph[i].p_offset - ph[i].p_vaddr;
		if (ph[i].p_type == PT_DYNAMIC)
			dyn = (const Elf64_Dyn *)((const char *)eh + ph[i].p_offset);
	}
	printf("PT_LOAD: %d PT_DYNAMIC: %d\n", load > 0, dyn != 0);
	if (!load || !dyn)
		return 0;
	for (; dyn->d_tag != DT_NULL; dyn++) {
		const void *p = (const void *)(base + dyn->d_un.d_ptr);
		switch (dyn->d_tag) {
		case DT_STRTAB: strs = p; break;
		case DT_SYMTAB: syms = p; break;
		case DT_HASH: hash = p; break;
		case DT_GNU_HASH: gnu_hash = 1; break;
		case DT_VERSYM: versym = p; break;
		case DT_VERDEF: verdef = p; break;
		case DT_SONAME: soname_off = dyn->d_un.d_val; has_soname = 1; break;
		}
	}
	if (has_soname && strs)
		soname = strs + soname_off;
	printf("DT_HASH %d DT_GNU_HASH %d DT_VERSYM %d DT_VERDEF %d soname %s\n", hash != 0, gnu_hash,
	       versym != 0, verdef != 0, soname ? soname : "-");
	return strs && syms && hash && versym && verdef;
}

/* The version a symbol's versym entry names. */
static const char *version_of(Elf64_Half v)
{
	const Elf64_Verdef *d = verdef;

	for (;;) {
		if (!(d->vd_flags & VER_FLG_BASE) && (d->vd_ndx & 0x7fff) == (v & 0x7fff)) {
			const Elf64_Verdaux *a = (const void *)((const char *)d + d->vd_aux);
			return strs + a->vda_name;
		}
		if (!d->vd_next)
			return "";
		d = (const void *)((const char *)d + d->vd_next);
	}
}

/* A function the vDSO exports as `name` at version LINUX_2.6, or 0. */
static void *lookup(const char *name)
{
	for (Elf64_Word i = 0; i < hash[1]; i++) {
		const Elf64_Sym *s = &syms[i];
		if (ELF64_ST_TYPE(s->st_info) != STT_FUNC || s->st_shndx == SHN_UNDEF)
			continue;
		if (strcmp(strs + s->st_name, name) == 0 && strcmp(version_of(versym[i]), "LINUX_2.6") == 0)
			return (void *)(base + s->st_value);
	}
	return 0;
}

static long long ns(const struct timespec *t) { return t->tv_sec * 1000000000LL + t->tv_nsec; }

/* Each clock through libc, the vDSO, libc again: in that order. */
static void agree(void)
{
	struct timespec t;

	for (int c = 0; c < 8; c++) {
		struct timespec a, b, d;
		int ra = clock_gettime(c, &a);
		int rb = vgettime(c, &b);
		int rd = clock_gettime(c, &d);
		printf("clock %s: %d %d %d ordered %d\n", CLOCKS[c], ra, rb, rd,
		       ns(&a) <= ns(&b) && ns(&b) <= ns(&d));
	}
	errno = 0;
	int r = clock_gettime(1234, &t);
	int e = errno;
	printf("unknown clock: libc %d %s vDSO %d\n", r, ename(e), vgettime(1234, &t));
	/* The vDSO's own syscall, again (rewritten after its first run with --rewrite=lazy). */
	for (int i = 0; i < 3; i++)
		printf("vDSO CPU clock %d: %d\n", i, vgettime(CLOCK_PROCESS_CPUTIME_ID, &t));
}

/* Many calls of each: monotonic clocks never go back. */
static void loops(void)
{
	static const clockid_t mono[] = { CLOCK_MONOTONIC, CLOCK_MONOTONIC_RAW, CLOCK_BOOTTIME,
					  CLOCK_MONOTONIC_COARSE };
	struct timespec t;
	struct timeval tv;
	long long last, back;

	for (unsigned i = 0; i < sizeof mono / sizeof mono[0]; i++) {
		last = back = 0;
		for (int n = 0; n < LOOPS; n++) {
			(n & 1 ? vgettime : clock_gettime)(mono[i], &t);
			back += ns(&t) < last;
			last = ns(&t);
		}
		printf("clock %s: %d calls, went back %lld times\n", CLOCKS[mono[i]], LOOPS, back);
	}
	last = back = 0;
	for (int n = 0; n < LOOPS; n++) {
		gettimeofday(&tv, 0);
		back += tv.tv_sec * 1000000LL + tv.tv_usec < last;
		last = tv.tv_sec * 1000000LL + tv.tv_usec;
	}
	printf("gettimeofday: %d calls, went back %lld times\n", LOOPS, back);
	time_t t0 = time(0), t1 = t0;
	for (int n = 0; n < LOOPS; n++)
		t1 = time(0);
	clock_gettime(CLOCK_REALTIME, &t);
	printf("time: %d calls, forward %d, agrees with REALTIME %d, after 2024 %d\n", LOOPS, t1 >= t0,
	       t.tv_sec - t1 <= 1 && t1 - t.tv_sec <= 1, t1 > 1704067200);
	int bad = 0;
	for (int n = 0; n < LOOPS; n++) {
		int c = sched_getcpu();
		bad += c < 0 || c >= CPU_SETSIZE;
	}
	printf("sched_getcpu: %d calls, out of range %d\n", LOOPS, bad);
}

static void others(void)
{
	gettimeofday_fn vtod = (gettimeofday_fn)lookup("__vdso_gettimeofday");
	time_fn vtime = (time_fn)lookup("__vdso_time");
	getcpu_fn vgetcpu = (getcpu_fn)lookup("__vdso_getcpu");
	struct timeval tv;
	struct timespec r;
	time_t t;
	unsigned cpu = ~0u, node = ~0u;

	int ret = vtod(&tv, 0);
	clock_gettime(CLOCK_REALTIME, &r);
	printf("vDSO gettimeofday: %d agrees: %d\n", ret,
	       r.tv_sec - tv.tv_sec <= 1 && tv.tv_usec < 1000000);
	time_t now = vtime(&t);
	printf("vDSO time agrees: %d\n", now == t && r.tv_sec - t <= 1 && t - r.tv_sec <= 1);
	printf("vDSO time(NULL): %d\n", vtime(0) > 1704067200);
	long got = vgetcpu(&cpu, &node, 0);
	printf("vDSO getcpu: %ld cpu set %d node set %d\n", got, cpu < CPU_SETSIZE, node < 1024);
	printf("vDSO getcpu(NULL, NULL): %ld\n", vgetcpu(0, 0, 0));
	for (int c = 0; c < 8; c++) {
		struct timespec res = { -1, -1 };
		ret = clock_getres(c, &res);
		printf("clock_getres %s: %d %lld\n", CLOCKS[c], ret, ns(&res));
	}
}

static void tick(int sig)
{
	struct timespec t;

	vgettime(CLOCK_MONOTONIC, &t);
	ticks++;
}

/* /proc/self/maps names the vDSO (where AT_SYSINFO_EHDR says) and its data. */
static void maps(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	int vdso = 0, vvar = 0;

	while (f && fgets(line, sizeof line, f)) {
		unsigned long lo = 0;
		sscanf(line, "%lx", &lo);
		if (strstr(line, "[vdso]"))
			vdso = lo == (unsigned long)eh && strstr(line, " r-xp ") != 0;
		if (strstr(line, "[vvar]"))
			vvar = strstr(line, " r--p ") != 0;
	}
	if (f)
		fclose(f);
	printf("maps: [vdso] r-xp at AT_SYSINFO_EHDR %d, [vvar] r--p %d\n", vdso, vvar);
}

/* A fork child has the vDSO where its parent had it, and its clocks. */
static void forked(void)
{
	struct timespec before, now;
	int status;

	clock_gettime(CLOCK_MONOTONIC, &before);
	pid_t pid = fork();
	if (pid == 0) {
		vgettime(CLOCK_MONOTONIC, &now);
		/* A new VM's TSC starts near 0 on hardware KVM: a clock counted
		 * from the parent's would have jumped by years. */
		printf("child: same vDSO %d, clock forward %d, by less than a minute %d\n",
		       getauxval(AT_SYSINFO_EHDR) == (unsigned long)eh, ns(&now) >= ns(&before),
		       ns(&now) - ns(&before) < 60000000000LL);
		_exit(0);
	}
	waitpid(pid, &status, 0);
	printf("child exited %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

/* An interval timer's signals land while the program is in the vDSO. */
static void timer(void)
{
	struct sigaction sa = { 0 };
	struct itimerval it = { { 0, 2000 }, { 0, 2000 } };
	struct timespec t;
	long long last = 0, back = 0;

	sa.sa_handler = tick;
	sigaction(SIGALRM, &sa, 0);
	setitimer(ITIMER_REAL, &it, 0);
	while (ticks < 5) {
		vgettime(CLOCK_MONOTONIC, &t);
		back += ns(&t) < last;
		last = ns(&t);
	}
	it = (struct itimerval){ 0 };
	setitimer(ITIMER_REAL, &it, 0);
	printf("timer signals: at least 5, clock went back %lld times\n", back);
}

int main(int argc, char **argv)
{
	static const char *names[] = { "__vdso_clock_gettime", "__vdso_gettimeofday", "__vdso_time",
				       "__vdso_getcpu", "__vdso_clock_getres", "clock_gettime",
				       "gettimeofday", "time", "getcpu", "clock_getres" };

	setvbuf(stdout, 0, _IOLBF, 0);
	if (!parse())
		return 1;
	for (unsigned i = 0; i < sizeof names / sizeof names[0]; i++)
		printf("%s@LINUX_2.6: %d\n", names[i], lookup(names[i]) != 0);
	vgettime = (gettime_fn)lookup("__vdso_clock_gettime");
	if (!vgettime)
		return 1;
	if (argc > 1 && strcmp(argv[1], "exec") == 0) {
		loops();
		forked();
		return 0;
	}
	agree();
	loops();
	others();
	maps();
	forked();
	timer();
	execl(argv[0], argv[0], "exec", (char *)0);
	printf("execl failed: %s\n", ename(errno));
	return 1;
}
