// "fill": writes a pattern over 96 MiB of anonymous memory, 8 MiB of heap
// and the stack. "check": counts the pattern's bytes in the same kinds of
// fresh memory, as 8-byte words: a stray byte of start-up data may match. RAM a VM leaves is reused for the next VM of
// the process, so the second guest must find nothing of the first.
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define ANON (96u << 20)
#define HEAP (8u << 20)
#define STACK (256u << 10)

#define PATTERN 0xa5
#define WORD 0xa5a5a5a5a5a5a5a5ull

static size_t seen(const void *p, size_t n) {
  const unsigned long long *w = p;
  size_t bad = 0;
  for (size_t i = 0; i < n / 8; i++) bad += w[i] == WORD;
  return bad;
}

// Below the caller's frame: stack that start-up code may have used, but
// never with the pattern.
static size_t __attribute__((noinline)) stack(int fill) {
  volatile unsigned long long buf[STACK / 8];
  if (fill) {
    memset((void *)buf, PATTERN, sizeof buf);
    return buf[7];
  }
  return seen((const void *)buf, sizeof buf);
}

int main(int argc, char **argv) {
  int fill = argc > 1 && strcmp(argv[1], "fill") == 0;
  unsigned char *anon = mmap(0, ANON, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  // brk itself: musl's sbrk only reports the break.
  unsigned char *heap = (unsigned char *)syscall(SYS_brk, 0);
  if (anon == MAP_FAILED || syscall(SYS_brk, heap + HEAP) != (long)(heap + HEAP)) return 1;
  if (fill) {
    memset(anon, PATTERN, ANON);
    memset(heap, PATTERN, HEAP);
    stack(1);
    puts("filled");
    return 0;
  }
  printf("anonymous %zu, heap %zu, stack %zu\n", seen(anon, ANON), seen(heap, HEAP), stack(0));
  return 0;
}
