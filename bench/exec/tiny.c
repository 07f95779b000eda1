/*
 * The program the exec storm runs: it does nothing and exits 0. Built without
 * libc where the architecture allows (x86-64, arm64), so each exec costs the
 * kernel's exec path and almost nothing else — any overhead an observer adds
 * to exec is then as visible as it can be.
 */
#if defined(OSPREY_TINY_NOLIBC) && defined(__x86_64__)
__attribute__((naked, noreturn)) void _start(void) {
  __asm__ volatile("mov $60, %eax\n\txor %edi, %edi\n\tsyscall\n");
}
#elif defined(OSPREY_TINY_NOLIBC) && defined(__aarch64__)
__attribute__((naked, noreturn)) void _start(void) {
  __asm__ volatile("mov x8, #93\n\tmov x0, #0\n\tsvc #0\n");
}
#else
int main(void) { return 0; }
#endif
