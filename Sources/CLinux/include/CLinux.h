// The small C surface srunc needs: syscalls glibc hides behind _GNU_SOURCE or has no wrapper
// for, variadic calls Swift cannot import, and the cmsg macros for SCM_RIGHTS.
#ifndef CLINUX_H
#define CLINUX_H

#include <sys/types.h>
#include <sys/capability.h>
#include <seccomp.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/vfs.h>
#include <sys/signalfd.h>
#include <sys/epoll.h>
#include <sys/xattr.h>

// Namespace and clone flags (hidden from Swift behind _GNU_SOURCE in <sched.h>).
#define CL_NEWTIME 0x00000080
#define CL_NEWNS 0x00020000
#define CL_NEWCGROUP 0x02000000
#define CL_NEWUTS 0x04000000
#define CL_NEWIPC 0x08000000
#define CL_NEWUSER 0x10000000
#define CL_NEWPID 0x20000000
#define CL_NEWNET 0x40000000
/// O_PATH, also hidden behind _GNU_SOURCE.
#define CL_O_PATH 010000000

/// fork-like clone with namespace flags: returns 0 in the child, the child's pid in the parent.
pid_t cl_clone(unsigned long flags);
int cl_unshare(int flags);
int cl_setns(int fd, int nstype);
int cl_pivot_root(const char *new_root, const char *put_old);
/* Makes the mount open at fd, and every mount below it, read-only (mount_setattr). */
int cl_mount_setattr_rdonly_recursive(int fd);
/* mount_setattr(2) with AT_RECURSIVE: MOUNT_ATTR_* bits to set, and to clear first. */
int cl_mount_setattr_recursive(int fd, unsigned long long set, unsigned long long clear);
/* A detached clone of the mount tree at path (open_tree OPEN_TREE_CLONE, AT_RECURSIVE if asked). */
int cl_open_tree_clone(const char *path, int recursive);
/* Idmaps a detached mount (open_tree clone) through a user namespace's mappings. */
int cl_mount_setattr_idmap(int fd, int userns_fd, int recursive);
/* move_mount of a detached tree onto the file or directory open at target_fd. */
int cl_move_mount_onto(int tree_fd, int target_fd);
/* Brings `lo` up in the current network namespace. */
int cl_loopback_up(void);
/* A fixed mmap threshold: large allocations always mmap'd, so freeing returns them. */
int cl_fixed_mmap_threshold(int bytes);
int cl_prctl(int option, unsigned long a2, unsigned long a3, unsigned long a4, unsigned long a5);
int cl_ioctl_int(int fd, unsigned long request, int *arg);
int cl_ioctl_ptr(int fd, unsigned long request, void *arg);
int cl_set_ctty(int fd);
int cl_close_range_cloexec(unsigned int first);
/// An eventfd, close-on-exec (its header is not in Swift's Glibc module).
int cl_eventfd(void);
int cl_pidfd_open(pid_t pid);
int cl_pidfd_send_signal(int pidfd, int sig);
/// openat2 with RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS: `path` can never leave `dirfd`.
int cl_openat_in_root(int dirfd, const char *path, int flags);
/// openat2 with RESOLVE_BENEATH: fails (EXDEV) rather than leave dirfd's tree through "..",
/// an absolute symlink or a magic link. How image layers are unpacked.
int cl_openat_beneath(int dirfd, const char *path, int flags, mode_t mode);
int cl_setresuid(uid_t r, uid_t e, uid_t s);
int cl_setresgid(gid_t r, gid_t e, gid_t s);
int cl_setgroups(size_t n, const gid_t *list);
/// Send one fd over a unix socket (SCM_RIGHTS) with its name as payload, as runc does.
int cl_send_fd(int sock, int fd, const char *name);
/// Receive one fd sent with cl_send_fd; -1 on error.
int cl_recv_fd(int sock);
/// The same, keeping the payload (NUL-terminated) in `buf`.
int cl_recv_fd_payload(int sock, char *buf, size_t len);
/// Exports libseccomp's program from ctx behind runc's ENOSYS stub for syscalls above `largest`
/// (0: no stub); *code is malloc'd, *len instructions long.
int cl_seccomp_export_with_stub(void *ctx, unsigned int largest, unsigned int native_arch, void **code, unsigned int *len);
/// Installs a BPF program as this thread's seccomp filter; the notify fd, 0, or -1.
int cl_seccomp_install(const void *code, unsigned int len, unsigned int flags);
/// Answers one seccomp user notification with a positive errno; returns the syscall number or -1.
int cl_seccomp_answer_one(int fd, int error);
int cl_mkfifo(const char *path, mode_t mode);
int cl_pipe2(int fds[2], int flags);
int cl_ptsname(int fd, char *buf, size_t len);
int cl_unlockpt(int fd);
/// Blocks every signal and returns a signalfd that receives them (srunc run's event loop).
int cl_signalfd_all(int *unused);
/// Default dispositions and an empty mask, for the container process right before exec.
int cl_sigmask_restore(void);
int cl_wifexited(int status);
int cl_wexitstatus(int status);
int cl_wifsignaled(int status);
int cl_wtermsig(int status);
unsigned long cl_cap_last(void);
/// Clears FD_CLOEXEC so a --preserve-fds descriptor survives exec.
int cl_clear_cloexec(int fd);
dev_t cl_makedev(unsigned int major, unsigned int minor);
unsigned int cl_major(dev_t dev);
unsigned int cl_minor(dev_t dev);
int cl_raw_tty(int fd, void *saved, size_t len);

/// posix_spawn with stdin from /dev/null, stdout/stderr onto the given fds, every other fd
/// closed and `cwd` as working directory: the test harness's way to run a runtime without
/// handing the container any descriptor of the (multi-threaded) test process.
pid_t cl_spawn(const char *path, char *const argv[], const char *cwd, int outfd, int errfd);
/// The same with an explicit environment and stdin (-1: /dev/null): how hooks are started.
pid_t cl_spawn_env(const char *path, char *const argv[], char *const envp[], const char *cwd, int infd, int outfd, int errfd);

/// A fresh session keyring for the container, as runc gives each one (unless --no-new-keyring).
long cl_join_session_keyring(const char *name);

/// accept4 (a GNU extension Swift cannot see): the new socket with flags such as SOCK_CLOEXEC.
int cl_accept4(int fd, int flags);

/// A new network namespace kept alive by a bind mount at `path` (an existing file): made by a
/// short-lived thread that unshares it, so the caller's own namespace never changes.
int cl_netns_create(const char *path);

/// clone3 with CLONE_INTO_CGROUP: the child is born in the cgroup open (O_DIRECTORY) at
/// cgroup_fd, so nothing migrates it later. Like cl_clone: 0 in the child, its pid in the parent.
pid_t cl_clone_into_cgroup(unsigned long long flags, int cgroup_fd);
/// Loads `count` eBPF instructions as a cgroup device program; its fd, or -1 (the verifier's
/// words in `log` when given).
int cl_bpf_load_device_program(const void *insns, unsigned int count, char *log, unsigned int log_size);
/// Attaches a device program to a cgroup (multi), atomically replacing `replace_fd` if >= 0.
int cl_bpf_attach_device_program(int cgroup_fd, int prog_fd, int replace_fd);
int cl_bpf_detach_device_program(int cgroup_fd, int prog_fd);
/// The ids of the device programs attached to a cgroup (at most `capacity`); their count or -1.
int cl_bpf_query_device_programs(int cgroup_fd, unsigned int *ids, unsigned int capacity);
/// A new fd for the loaded program with this id.
int cl_bpf_program_fd(unsigned int id);

#endif
