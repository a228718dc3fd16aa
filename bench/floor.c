/* The physical floor for `run` of a /bin/true bundle: clone the same five namespaces,
 * pivot_root into the rootfs, exec, wait. No config, no cgroups, no mounts beyond the
 * root: what no runtime can beat. Used only by the benchmark (bench/bench.py). */
#define _GNU_SOURCE
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static char stack[64 * 1024];
static const char *rootfs;

static int child(void *arg) {
    (void)arg;
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL)) return 10;
    if (mount(rootfs, rootfs, NULL, MS_BIND | MS_REC, NULL)) return 11;
    if (chdir(rootfs)) return 12;
    if (syscall(SYS_pivot_root, ".", ".")) return 13;
    if (umount2(".", MNT_DETACH)) return 14;
    char *argv[] = {"/bin/true", NULL};
    execv(argv[0], argv);
    return 127;
}

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: floor ROOTFS\n"); return 2; }
    rootfs = argv[1];
    int flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET | SIGCHLD;
    pid_t pid = clone(child, stack + sizeof stack, flags, NULL);
    if (pid < 0) { perror("clone"); return 1; }
    int status;
    if (waitpid(pid, &status, 0) < 0) return 1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
