/* FPU state across signal handlers: a handler starts with a clean FPU
 * (default rounding), may use x87, SSE and AVX freely, and the interrupted
 * code finds its registers (xmm15, ymm15's upper half, st(0)) and its
 * rounding mode as they were, for a signal raised by a syscall and for
 * timer signals interrupting floating-point loops. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>

/* Rounding control in MXCSR and the x87 control word (no libm needed). */
enum { NEAREST = 0, DOWN = 1, UP = 2, ZERO = 3 };

static int getround(void)
{
	unsigned m;
	unsigned short cw;
	__asm__ volatile("stmxcsr %0\n\tfnstcw %1" : "=m"(m), "=m"(cw));
	return ((m >> 13) & 3) == ((cw >> 10) & 3u) ? (int)((m >> 13) & 3) : -1;
}

static void setround(int r)
{
	unsigned m;
	unsigned short cw;
	__asm__ volatile("stmxcsr %0\n\tfnstcw %1" : "=m"(m), "=m"(cw));
	m = (m & ~(3u << 13)) | (unsigned)r << 13;
	cw = (unsigned short)((cw & ~(3u << 10)) | (unsigned)r << 10);
	__asm__ volatile("ldmxcsr %0\n\tfldcw %1" : : "m"(m), "m"(cw));
}

static volatile int clean_round, handled;
static volatile double sink;

static void messy(int sig)
{
	clean_round = getround() == NEAREST;
	setround(UP);
	volatile double d = 1.0;
	volatile long double ld = 3.0L;
	for (int i = 0; i < 100; i++) {
		d = d * 1.0001 + 0.5;
		ld = ld / 1.7L + 2.0L;
	}
	sink = d + (double)ld;
	__asm__ volatile("pxor %%xmm15, %%xmm15\n\tfldz\n\tfstp %%st(0)" ::: "xmm15");
	handled++;
	(void)sig;
}

__attribute__((target("avx"))) static int avx_kept(void)
{
	double out[4];
	long pid = getpid(), tid = gettid();
	long r;
	__asm__ volatile(
		"vbroadcastsd %[v], %%ymm15\n\t"
		"syscall\n\t"
		"vmovupd %%ymm15, %[out]\n\t"
		: "=a"(r), [out] "=m"(out)
		: "a"((long)SYS_tgkill), "D"(pid), "S"(tid), "d"((long)SIGUSR1), [v] "m"((double){ 2.5 })
		: "rcx", "r11", "memory", "xmm15");
	(void)r;
	return out[0] == 2.5 && out[1] == 2.5 && out[2] == 2.5 && out[3] == 2.5;
}

int main(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = messy;
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGALRM, &sa, NULL);

	setround(ZERO);
	double x = 1.25, xo = 0;
	long double y = 7.75L, yo = 0;
	long pid = getpid(), tid = gettid(), r;
	__asm__ volatile(
		"movsd %[x], %%xmm15\n\t"
		"fldt %[y]\n\t"
		"syscall\n\t"
		"fstpt %[yo]\n\t"
		"movsd %%xmm15, %[xo]\n\t"
		: "=a"(r), [xo] "=m"(xo), [yo] "=m"(yo)
		: "a"((long)SYS_tgkill), "D"(pid), "S"(tid), "d"((long)SIGUSR1), [x] "m"(x), [y] "m"(y)
		: "rcx", "r11", "memory", "xmm15");
	printf("handled %d clean rounding in handler %d\n", handled, clean_round);
	printf("xmm15 kept %d st0 kept %d rounding kept %d\n", xo == 1.25, yo == 7.75L,
	       getround() == ZERO);
	setround(NEAREST);
	if (__builtin_cpu_supports("avx"))
		printf("ymm15 kept %d\n", avx_kept());
	else
		printf("ymm15 kept 1\n");

	/* Timer signals land in the middle of floating-point loops. */
	double expect = 0, got = 0;
	for (int i = 1; i <= 3000000; i++)
		expect += 1.0 / i;
	handled = 0;
	struct itimerval it = { { 0, 1000 }, { 0, 1000 } };
	setitimer(ITIMER_REAL, &it, NULL);
	int rounds = 0;
	/* At least one whole round: on a loaded machine all five signals
	 * can come before the loop starts. */
	while ((handled < 5 || rounds == 0) && rounds < 200) {
		volatile double s = 0;
		for (int i = 1; i <= 3000000; i++)
			s += 1.0 / i;
		got = s;
		rounds++;
		if (got != expect)
			break;
	}
	struct itimerval off = { { 0, 0 }, { 0, 0 } };
	setitimer(ITIMER_REAL, &off, NULL);
	printf("loops interrupted %d, sums equal %d\n", handled >= 5, got == expect);
	return 0;
}
