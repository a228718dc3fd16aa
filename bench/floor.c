/* The physical floor for `run` of a /bin/true bundle: clone the same five namespaces,
 * pivot_root into the rootfs, exec, wait. No config, no mounts beyond the root: what no
 * runtime can beat. With `--cgroups NAME`, it also does what every runtime must: mkdir NAME
 * in every mounted cgroup hierarchy (v1 controllers and cgroup2), the child joins each before
 * it execs, and the directories are removed after. Used only by the benchmark (bench/bench.py). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static char stack[64 * 1024];
static const char *rootfs;
static char dirs[32][512];
static int ndirs;

/* Every cgroup/cgroup2 mount point from mountinfo, with NAME appended. */
static void find_hierarchies(const char *name) {
    FILE *f = fopen("/proc/self/mountinfo", "r");
    char line[4096];
    while (f && fgets(line, sizeof line, f) && ndirs < 32) {
        char *sep = strstr(line, " - ");
        if (!sep || (strncmp(sep + 3, "cgroup ", 7) && strncmp(sep + 3, "cgroup2 ", 8))) continue;
        char *field = line;
        for (int i = 0; i < 4; i++) field = strchr(field, ' ') + 1;
        *strchr(field, ' ') = 0;
        snprintf(dirs[ndirs++], sizeof dirs[0], "%s/%s", field, name);
    }
    if (f) fclose(f);
}

/* A new cpuset is empty and refuses tasks: copy the parent's cpus and mems, as runtimes do. */
static void seed_cpuset(const char *dir) {
    const char *files[] = {"cpuset.cpus", "cpuset.mems"};
    for (int i = 0; i < 2; i++) {
        char parent[1024], child[1024], value[256] = {0};
        snprintf(parent, sizeof parent, "%.*s/%s", (int)(strrchr(dir, '/') - dir), dir, files[i]);
        snprintf(child, sizeof child, "%s/%s", dir, files[i]);
        int in = open(parent, O_RDONLY), out;
        if (in < 0) return;
        ssize_t n = read(in, value, sizeof value - 1);
        close(in);
        if (n > 0 && (out = open(child, O_WRONLY)) >= 0) { if (write(out, value, n) < 0) {} close(out); }
    }
}

static int join_cgroups(void) {
    char path[1024];
    for (int i = 0; i < ndirs; i++) {
        snprintf(path, sizeof path, "%.511s/cgroup.procs", dirs[i]);
        int fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0 || write(fd, "0", 1) != 1) return 1;
        close(fd);
    }
    return 0;
}

static int child(void *arg) {
    (void)arg;
    if (join_cgroups()) return 9;
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
    if (argc != 2 && !(argc == 4 && !strcmp(argv[2], "--cgroups"))) {
        fprintf(stderr, "usage: floor ROOTFS [--cgroups NAME]\n");
        return 2;
    }
    rootfs = argv[1];
    if (argc == 4) find_hierarchies(argv[3]);
    for (int i = 0; i < ndirs; i++)
        if (mkdir(dirs[i], 0755) && errno != EEXIST) { perror(dirs[i]); return 1; } else seed_cpuset(dirs[i]);
    int flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET | SIGCHLD;
    pid_t pid = clone(child, stack + sizeof stack, flags, NULL);
    if (pid < 0) { perror("clone"); return 1; }
    int status;
    if (waitpid(pid, &status, 0) < 0) return 1;
    for (int i = 0; i < ndirs; i++) rmdir(dirs[i]);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
