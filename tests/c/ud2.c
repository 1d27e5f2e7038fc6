/* An invalid opcode: SIGILL (status 132). */
int main(void) { __builtin_trap(); }
