/* A deliberate NULL dereference: must die with SIGSEGV (status 139). */
#include <stdio.h>
int *volatile target;
__attribute__((noinline)) void crash_here(void) { *target = 42; }
int main(void) { puts("about to crash"); fflush(stdout); crash_here(); return 0; }
