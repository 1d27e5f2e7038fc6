/* MAP_SHARED memory between processes and against write(2): anonymous
 * shared memory and a file's shared mapping seen by parent and child, a
 * process-shared semaphore ping-pong (futexes on a shared word), write(2)
 * and pwrite seen through a mapping at once and the mapping's bytes by
 * read(2) without msync, a child's munmap leaving the parent's view alone,
 * /dev/zero's shared mapping, a named semaphore, and a truncation under a
 * mapping. */
#include <fcntl.h>
#include <semaphore.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include "proc.h"

#define PAGE 4096

struct shm {
	sem_t ping, pong;
	int counter;
	char text[64];
};

static void wait_child(const char *what, pid_t p)
{
	int st;
	waitpid(p, &st, 0);
	status(what, st);
}

static void anonymous(void)
{
	struct shm *s = mmap(NULL, sizeof *s, PROT_READ | PROT_WRITE,
			     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	sem_init(&s->ping, 1, 0);
	sem_init(&s->pong, 1, 0);
	pid_t p = fork();
	if (p == 0) {
		strcpy(s->text, "written by the child");
		for (int i = 0; i < 200; i++) {
			sem_wait(&s->ping);
			s->counter++;
			sem_post(&s->pong);
		}
		_exit(0);
	}
	for (int i = 0; i < 200; i++) {
		sem_post(&s->ping);
		sem_wait(&s->pong);
		s->counter++;
	}
	wait_child("ping-pong child", p);
	say("anonymous: counter %d text '%s'\n", s->counter, s->text);

	/* The child's munmap and a new private mapping there change nothing here. */
	p = fork();
	if (p == 0) {
		munmap(s, sizeof *s);
		char *q = mmap(s, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
		memset(q, 'x', PAGE);
		_exit(q == (char *)s ? 0 : 1);
	}
	wait_child("munmap child", p);
	say("after the child's munmap: counter %d text '%s'\n", s->counter, s->text);
	/* A grandchild shares it too. */
	p = fork();
	if (p == 0) {
		pid_t q = fork();
		if (q == 0) {
			s->counter = 1000;
			_exit(0);
		}
		waitpid(q, NULL, 0);
		_exit(s->counter == 1000 ? 0 : 1);
	}
	wait_child("grandchild's parent", p);
	say("grandchild wrote %d\n", s->counter);
}

static void file(const char *path)
{
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	ftruncate(fd, 3 * PAGE);
	char *m = mmap(NULL, 3 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	pwrite(fd, "pwritten", 8, 100);
	say("pwrite seen through the mapping: %d\n", memcmp(m + 100, "pwritten", 8) == 0);
	memcpy(m + PAGE, "mapped", 6);
	char buf[8] = { 0 };
	pread(fd, buf, 6, PAGE);
	say("mapping's bytes seen by pread without msync: %d\n", strcmp(buf, "mapped") == 0);
	pid_t p = fork();
	if (p == 0) {
		memcpy(m + 2 * PAGE, "child", 5);
		_exit(0);
	}
	wait_child("file child", p);
	say("the child's write through its mapping: %d\n", memcmp(m + 2 * PAGE, "child", 5) == 0);
	pread(fd, buf, 5, 2 * PAGE);
	say("and in the file: %d\n", memcmp(buf, "child", 5) == 0);
	/* Shrunk under the mapping: the first page stays as it was. */
	ftruncate(fd, PAGE);
	say("after truncation, page 0 holds: %d\n", memcmp(m + 100, "pwritten", 8) == 0);
	munmap(m, 3 * PAGE);
	struct stat st;
	fstat(fd, &st);
	say("file size %ld\n", (long)st.st_size);
	close(fd);
	unlink(path);
}

static void devzero(void)
{
	int fd = open("/dev/zero", O_RDWR);
	int *v = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	pid_t p = fork();
	if (p == 0) {
		*v = 42;
		_exit(0);
	}
	wait_child("/dev/zero child", p);
	say("/dev/zero shared: %d\n", *v);
}

static void named(void)
{
	sem_t *a = sem_open("/hermitux-test-sem", O_CREAT | O_EXCL, 0600, 0);
	if (a == SEM_FAILED) {
		say("sem_open: %s\n", errname(errno));
		return;
	}
	sem_unlink("/hermitux-test-sem");
	pid_t p = fork();
	if (p == 0) {
		sem_post(a);
		_exit(0);
	}
	sem_wait(a);
	say("named semaphore posted by the child\n");
	wait_child("sem child", p);
}

int main(int argc, char **argv)
{
	anonymous();
	file(argc > 1 ? argv[1] : "shm_fork.tmp");
	devzero();
	if (argc < 3) /* "nonamed": no /dev/shm where it runs */
		named();
	return 0;
}
