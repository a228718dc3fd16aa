#define _GNU_SOURCE
#include "CLinux.h"
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/openat2.h>
#include <malloc.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/eventfd.h>
#include <stddef.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/sysmacros.h>
#include <termios.h>
#include <spawn.h>
#include <pthread.h>
#include <sys/mount.h>

pid_t cl_clone(unsigned long flags) {
    // Raw clone with a NULL stack behaves like fork; glibc keeps no pid cache since 2.25.
    return (pid_t)syscall(SYS_clone, flags | SIGCHLD, NULL, NULL, NULL, NULL);
}
int cl_unshare(int flags) { return unshare(flags); }
int cl_setns(int fd, int nstype) { return setns(fd, nstype); }
int cl_pivot_root(const char *n, const char *o) { return (int)syscall(SYS_pivot_root, n, o); }
int cl_prctl(int o, unsigned long a2, unsigned long a3, unsigned long a4, unsigned long a5) {
    return prctl(o, a2, a3, a4, a5);
}
int cl_ioctl_int(int fd, unsigned long r, int *arg) { return ioctl(fd, r, arg); }
int cl_ioctl_ptr(int fd, unsigned long r, void *arg) { return ioctl(fd, r, arg); }
int cl_set_ctty(int fd) { return ioctl(fd, TIOCSCTTY, 0); }
int cl_close_range_cloexec(unsigned int first) {
    return (int)syscall(SYS_close_range, first, ~0U, 4 /* CLOSE_RANGE_CLOEXEC */);
}
int cl_eventfd(void) { return eventfd(0, EFD_CLOEXEC); }
int cl_pidfd_open(pid_t pid) { return (int)syscall(SYS_pidfd_open, pid, 0); }
int cl_pidfd_send_signal(int pidfd, int sig) {
    return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
}
/* openat2 with a resolve mode. With ".." in the path the kernel answers EAGAIN when any mount
 * or rename raced the lookup anywhere on the host; the lookup is simply retried. */
static int openat2_retrying(int dirfd, const char *path, int flags, mode_t mode, unsigned long long resolve) {
    struct open_how how = {0};
    how.flags = (unsigned long long)(flags | O_CLOEXEC);
    how.mode = (flags & O_CREAT) ? mode : 0;
    how.resolve = resolve;
    int fd, tries = 0;
    do {
        fd = (int)syscall(SYS_openat2, dirfd, path, &how, sizeof how);
    } while (fd < 0 && (errno == EAGAIN || errno == EINTR) && ++tries < 1000);
    return fd;
}
int cl_openat_in_root(int dirfd, const char *path, int flags) {
    return openat2_retrying(dirfd, path, flags, 0, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS);
}
int cl_openat_beneath(int dirfd, const char *path, int flags, mode_t mode) {
    return openat2_retrying(dirfd, path, flags, mode, RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS);
}
int cl_setresuid(uid_t r, uid_t e, uid_t s) { return (int)syscall(SYS_setresuid, r, e, s); }
int cl_setresgid(gid_t r, gid_t e, gid_t s) { return (int)syscall(SYS_setresgid, r, e, s); }
int cl_setgroups(size_t n, const gid_t *list) { return (int)syscall(SYS_setgroups, n, list); }

int cl_send_fd(int sock, int fd, const char *name) {
    struct iovec iov = {.iov_base = (void *)name, .iov_len = strlen(name)};
    union { char buf[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } u;
    memset(&u, 0, sizeof u);
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
                         .msg_controllen = sizeof u.buf};
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof(int));
    return sendmsg(sock, &msg, MSG_NOSIGNAL) > 0 ? 0 : -1;
}

int cl_recv_fd(int sock) {
    char name[4096];
    return cl_recv_fd_payload(sock, name, sizeof name);
}

int cl_recv_fd_payload(int sock, char *buf, size_t len) {
    struct iovec iov = {.iov_base = buf, .iov_len = len - 1};
    union { char buf[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } u;
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
                         .msg_controllen = sizeof u.buf};
    ssize_t n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
    if (n <= 0) return -1;
    buf[n] = 0;
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    if (!c || c->cmsg_type != SCM_RIGHTS) { errno = EBADMSG; return -1; }
    int fd;
    memcpy(&fd, CMSG_DATA(c), sizeof(int));
    return fd;
}

/// Answers one seccomp notification on `fd` with `error` (a positive errno) and returns the
/// syscall number it was for, or -1. For tests and listeners; libseccomp does the ioctls.
int cl_seccomp_answer_one(int fd, int error) {
    struct seccomp_notif *req;
    struct seccomp_notif_resp *resp;
    if (seccomp_notify_alloc(&req, &resp) != 0) return -1;
    int nr = -1;
    if (seccomp_notify_receive(fd, req) == 0) {
        resp->id = req->id;
        resp->val = 0;
        resp->error = -error;
        resp->flags = 0;
        if (seccomp_notify_respond(fd, resp) == 0) nr = req->data.nr;
    }
    seccomp_notify_free(req, resp);
    return nr;
}

int cl_mkfifo(const char *path, mode_t mode) { return mkfifo(path, mode); }
int cl_pipe2(int fds[2], int flags) { return pipe2(fds, flags); }
int cl_ptsname(int fd, char *buf, size_t len) { return ptsname_r(fd, buf, len); }
int cl_unlockpt(int fd) { return unlockpt(fd); }

int cl_signalfd_all(int *unused) {
    (void)unused;
    sigset_t all;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, NULL);
    return signalfd(-1, &all, SFD_CLOEXEC);
}
int cl_sigmask_restore(void) {
    // Ignored signals survive exec: give the container default dispositions and an empty mask.
    for (int sig = 1; sig < NSIG; sig++) signal(sig, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    return sigprocmask(SIG_SETMASK, &none, NULL);
}
int cl_wifexited(int s) { return WIFEXITED(s); }
int cl_wexitstatus(int s) { return WEXITSTATUS(s); }
int cl_wifsignaled(int s) { return WIFSIGNALED(s); }
int cl_wtermsig(int s) { return WTERMSIG(s); }
unsigned long cl_cap_last(void) {
    FILE *f = fopen("/proc/sys/kernel/cap_last_cap", "re");
    unsigned long v = 40;
    if (f) { if (fscanf(f, "%lu", &v) != 1) v = 40; fclose(f); }
    return v;
}
int cl_clear_cloexec(int fd) { return fcntl(fd, F_SETFD, 0); }
dev_t cl_makedev(unsigned int major, unsigned int minor) { return makedev(major, minor); }
unsigned int cl_major(dev_t dev) { return major(dev); }
unsigned int cl_minor(dev_t dev) { return minor(dev); }
int cl_raw_tty(int fd, void *saved, size_t len) {
    struct termios t;
    if (len < sizeof t || tcgetattr(fd, &t) != 0) return -1;
    memcpy(saved, &t, sizeof t);
    cfmakeraw(&t);
    return tcsetattr(fd, TCSANOW, &t);
}

extern char **environ;
pid_t cl_spawn_env(const char *, char *const[], char *const[], const char *, int, int, int);
pid_t cl_spawn(const char *path, char *const argv[], const char *cwd, int outfd, int errfd) {
    return cl_spawn_env(path, argv, environ, cwd, -1, outfd, errfd);
}

pid_t cl_spawn_env(const char *path, char *const argv[], char *const envp[], const char *cwd, int infd, int outfd, int errfd) {
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (infd < 0) posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    else posix_spawn_file_actions_adddup2(&fa, infd, 0);
    posix_spawn_file_actions_adddup2(&fa, outfd, 1);
    posix_spawn_file_actions_adddup2(&fa, errfd, 2);
    posix_spawn_file_actions_addclosefrom_np(&fa, 3);
    if (cwd) posix_spawn_file_actions_addchdir_np(&fa, cwd);
    // The caller may be a thread with signals blocked: the child starts with none blocked.
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    pid_t pid;
    int err = posix_spawn(&pid, path, &fa, &attr, argv, envp);
    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&fa);
    if (err) { errno = err; return -1; }
    return pid;
}

long cl_join_session_keyring(const char *name) {
    return syscall(SYS_keyctl, 1 /* KEYCTL_JOIN_SESSION_KEYRING */, name, 0, 0, 0);
}

int cl_accept4(int fd, int flags) {
    return accept4(fd, NULL, NULL, flags);
}

/* glibc's malloc options are not in Swift's Glibc module. */
int cl_fixed_mmap_threshold(int bytes) { return mallopt(M_MMAP_THRESHOLD, bytes); }

/* Brings the loopback interface of the current network namespace up (runc and crun do). */
int cl_loopback_up(void) {
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
    int r = ioctl(fd, SIOCGIFFLAGS, &ifr);
    if (r == 0 && !(ifr.ifr_flags & IFF_UP)) {
        ifr.ifr_flags |= IFF_UP;
        r = ioctl(fd, SIOCSIFFLAGS, &ifr);
    }
    int saved = errno;
    close(fd);
    errno = saved;
    return r;
}

/* Recursive read-only (the "rro" mount option): mount_setattr(2) with AT_RECURSIVE on an open
   mount. The struct is mount_attr's layout; <linux/mount.h> clashes with <sys/mount.h>. */
int cl_mount_setattr_rdonly_recursive(int fd) {
#ifdef SYS_mount_setattr
    struct { unsigned long long attr_set, attr_clr, propagation, userns_fd; } attr = { 0x1 /* MOUNT_ATTR_RDONLY */, 0, 0, 0 };
    return (int)syscall(SYS_mount_setattr, fd, "", 0x1000 /* AT_EMPTY_PATH */ | 0x8000 /* AT_RECURSIVE */, &attr, sizeof attr);
#else
    errno = ENOSYS;
    return -1;
#endif
}

/* Sets mount attributes (MOUNT_ATTR_* in `set`, cleared first in `clear`) on the mount open at
   fd and, with AT_RECURSIVE, on every mount below it: one call for a tree of bind mounts. */
int cl_mount_setattr_recursive(int fd, unsigned long long set, unsigned long long clear) {
#ifdef SYS_mount_setattr
    struct { unsigned long long attr_set, attr_clr, propagation, userns_fd; } attr = { set, clear, 0, 0 };
    return (int)syscall(SYS_mount_setattr, fd, "", 0x1000 /* AT_EMPTY_PATH */ | 0x8000 /* AT_RECURSIVE */, &attr, sizeof attr);
#else
    errno = ENOSYS;
    return -1;
#endif
}

/* Idmaps the detached mount open at fd through the user namespace open at userns_fd
   (MOUNT_ATTR_IDMAP); every mount of the tree when `recursive`. */
int cl_mount_setattr_idmap(int fd, int userns_fd, int recursive) {
#ifdef SYS_mount_setattr
    struct { unsigned long long attr_set, attr_clr, propagation, userns_fd; } attr = { 0x00100000 /* MOUNT_ATTR_IDMAP */, 0, 0, (unsigned long long)userns_fd };
    return (int)syscall(SYS_mount_setattr, fd, "", 0x1000 /* AT_EMPTY_PATH */ | (recursive ? 0x8000 /* AT_RECURSIVE */ : 0), &attr, sizeof attr);
#else
    errno = ENOSYS;
    return -1;
#endif
}

/* A detached copy of the mount tree at `path` (open_tree with OPEN_TREE_CLONE): made with the
   caller's rights, attachable later by move_mount in another mount namespace. */
int cl_open_tree_clone(const char *path, int recursive) {
#ifdef SYS_open_tree
    unsigned int flags = 1 /* OPEN_TREE_CLONE */ | O_CLOEXEC | (recursive ? 0x8000 /* AT_RECURSIVE */ : 0);
    return (int)syscall(SYS_open_tree, AT_FDCWD, path, flags);
#else
    errno = ENOSYS;
    return -1;
#endif
}

/* Attaches the detached tree `tree_fd` onto the directory or file open at `target_fd`. */
int cl_move_mount_onto(int tree_fd, int target_fd) {
#ifdef SYS_move_mount
    return (int)syscall(SYS_move_mount, tree_fd, "", target_fd, "", 0x4 /* F_EMPTY_PATH */ | 0x40 /* T_EMPTY_PATH */);
#else
    errno = ENOSYS;
    return -1;
#endif
}

/* Exports the filter built in `ctx` with runc's stub in front: syscalls of the native
   architecture numbered above `largest` (newer than anything the profile names) get ENOSYS
   instead of the profile's default, so that callers fall back to older calls (glibc does for
   clone3, faccessat2...). libseccomp cannot compare syscall numbers, so its program is exported
   and the stub prepended; the jumps inside both stay relative. `largest` 0 means no stub.
   On success *code is a malloc'd program of *len instructions (the caller frees it). */
int cl_seccomp_export_with_stub(void *ctx, unsigned int largest, unsigned int native_arch, void **code_out, unsigned int *len) {
    int mfd = (int)syscall(SYS_memfd_create, "seccomp", 1 /* MFD_CLOEXEC */);
    if (mfd < 0) return -1;
    int r = seccomp_export_bpf((scmp_filter_ctx)ctx, mfd);
    off_t size = lseek(mfd, 0, SEEK_END);
    if (r < 0 || size <= 0 || size % sizeof(struct sock_filter) != 0) { close(mfd); errno = r < 0 ? -r : EINVAL; return -1; }
    struct sock_filter stub[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, native_arch, 0, 4),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, 0x40000000 /* x32 */, 2, 0),
        BPF_JUMP(BPF_JMP | BPF_JGT | BPF_K, largest, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
    };
    size_t stubLen = largest ? sizeof stub / sizeof stub[0] : 0, bodyLen = (size_t)size / sizeof(struct sock_filter);
    if (stubLen + bodyLen > BPF_MAXINSNS) { close(mfd); errno = E2BIG; return -1; }
    struct sock_filter *code = malloc((stubLen + bodyLen) * sizeof *code);
    if (!code) { close(mfd); errno = ENOMEM; return -1; }
    memcpy(code, stub, stubLen * sizeof *code);
    ssize_t got = pread(mfd, code + stubLen, (size_t)size, 0);
    close(mfd);
    if (got != size) { free(code); errno = EIO; return -1; }
    *code_out = code;
    *len = (unsigned int)(stubLen + bodyLen);
    return 0;
}

/* Installs a classic BPF seccomp program of `len` instructions with the kernel's filter flags.
   Returns the notify fd with SECCOMP_FILTER_FLAG_NEW_LISTENER in `flags`, else 0; -1 on error. */
int cl_seccomp_install(const void *code, unsigned int len, unsigned int flags) {
    struct sock_fprog prog = { .len = (unsigned short)len, .filter = (struct sock_filter *)code };
    return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
}

struct netns_job { const char *path; int err; };

static void *netns_thread(void *arg) {
    struct netns_job *job = arg;
    if (unshare(CLONE_NEWNET) != 0) job->err = errno;
    else if (mount("/proc/thread-self/ns/net", job->path, NULL, MS_BIND, NULL) != 0) job->err = errno;
    return NULL;
}

int cl_netns_create(const char *path) {
    struct netns_job job = { path, 0 };
    pthread_t thread;
    int rc = pthread_create(&thread, NULL, netns_thread, &job);
    if (rc != 0) { errno = rc; return -1; }
    pthread_join(thread, NULL);
    if (job.err != 0) { errno = job.err; return -1; }
    return 0;
}
