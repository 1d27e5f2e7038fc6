/* Threads running `mov $39, %eax; syscall` sites while they are rewritten
 * (--rewrite=stub): four threads start together on eight fresh sites and
 * call each many times; every call must return the pid, whatever state of
 * the site a thread meets (mov+syscall, jmp+syscall, jmp+ud2, or the old
 * mov and then the new ud2). The aligned sites are rewritten; the one
 * whose mov straddles a 16-byte block stays as built (another thread could
 * see a torn write). States go to stderr, the rest compares with native. */
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

#define SITE(n)                                                         \
	".globl site" #n "\n.type site" #n ",@function\n"                \
	"site" #n ":\n.cfi_startproc\n\tmov $39, %eax\n"                \
	".globl sys" #n "\nsys" #n ":\n\tsyscall\n\tret\n"              \
	".cfi_endproc\n.size site" #n ", .-site" #n "\n"
#define ALIGNED(n) ".p2align 4\n" SITE(n)

__asm__(".text\n" ALIGNED(0) ALIGNED(1) ALIGNED(2) ALIGNED(3) ALIGNED(4) ALIGNED(5)
	ALIGNED(6) ALIGNED(7) ".p2align 4\n.skip 13, 0x90\n" SITE(8));

long site0(void), site1(void), site2(void), site3(void), site4(void), site5(void),
	site6(void), site7(void), site8(void);
extern const unsigned char sys0[], sys1[], sys2[], sys3[], sys4[], sys5[], sys6[], sys7[],
	sys8[];

static long (*const sites[])(void) = { site0, site1, site2, site3, site4, site5, site6, site7,
				       site8 };
static const unsigned char *const syss[] = { sys0, sys1, sys2, sys3, sys4, sys5, sys6, sys7,
					     sys8 };
#define NSITES 9
#define THREADS 4
#define ROUNDS 3000

static pthread_barrier_t start;
static pid_t pid;
static int wrong[THREADS];

static void *run(void *arg)
{
	long id = (long)arg;

	pthread_barrier_wait(&start);
	for (int r = 0; r < ROUNDS; r++)
		for (int k = 0; k < NSITES; k++)
			/* Each thread starts on another site: first uses overlap. */
			if (sites[(k + id * 2) % NSITES]() != pid)
				wrong[id]++;
	return NULL;
}

static const char *state(const unsigned char *sys)
{
	if (sys[-5] == 0xe9 && sys[0] == 0x0f && sys[1] == 0x0b)
		return "yes";
	return sys[-5] == 0xb8 && sys[0] == 0x0f && sys[1] == 0x05 ? "no" : "corrupt";
}

int main(void)
{
	pthread_t t[THREADS];
	int bad = 0;

	pid = getpid();
	pthread_barrier_init(&start, NULL, THREADS);
	for (long i = 0; i < THREADS; i++)
		pthread_create(&t[i], NULL, run, (void *)i);
	for (int i = 0; i < THREADS; i++) {
		pthread_join(t[i], NULL);
		bad += wrong[i];
	}
	printf("%d threads x %d calls: %d wrong\n", THREADS, ROUNDS * NSITES, bad);
	fprintf(stderr, "rewritten");
	for (int k = 0; k < NSITES; k++)
		fprintf(stderr, " %s", state(syss[k]));
	fprintf(stderr, "\n");
	return 0;
}
