/* Test helper copied into a container rootfs: calls each syscall number given (bad arguments,
   so nothing happens) and prints the errno text, to see what a seccomp filter answers. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>
int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        long r = syscall(atol(argv[i]), -1L, 0L, 0L, 0L, 0L, 0L);
        printf("%s: %s\n", argv[i], r < 0 ? strerror(errno) : "ok");
    }
    return 0;
}
