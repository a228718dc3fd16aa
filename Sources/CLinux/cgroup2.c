// cgroup v2 syscalls srunc needs: clone3 into a cgroup, and the bpf(2) calls that load, attach,
// list and detach a BPF_PROG_TYPE_CGROUP_DEVICE program. bpf_attr is a union of per-command
// structs; <linux/bpf.h> gives its layout, which Swift would otherwise have to hand-copy.
#define _GNU_SOURCE
#include "CLinux.h"
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <linux/bpf.h>
#include <linux/sched.h>

pid_t cl_clone_into_cgroup(unsigned long long flags, int cgroup_fd) {
#ifdef SYS_clone3
    struct clone_args args;
    memset(&args, 0, sizeof args);
    args.flags = flags | CLONE_INTO_CGROUP;
    args.exit_signal = SIGCHLD;
    args.cgroup = (unsigned long long)cgroup_fd;
    return (pid_t)syscall(SYS_clone3, &args, sizeof args);
#else
    errno = ENOSYS;
    return -1;
#endif
}

static int bpf_call(int cmd, union bpf_attr *attr) {
    return (int)syscall(SYS_bpf, cmd, attr, sizeof *attr);
}

int cl_bpf_load_device_program(const void *insns, unsigned int count, char *log, unsigned int log_size) {
    union bpf_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
    attr.insns = (unsigned long long)(uintptr_t)insns;
    attr.insn_cnt = count;
    attr.license = (unsigned long long)(uintptr_t)"Apache";
    if (log && log_size) {
        attr.log_buf = (unsigned long long)(uintptr_t)log;
        attr.log_size = log_size;
        attr.log_level = 1;
    }
    strncpy(attr.prog_name, "srunc_devices", sizeof attr.prog_name - 1);
    int fd = bpf_call(BPF_PROG_LOAD, &attr);
    if (fd < 0 && log && log_size && errno == ENOSPC) {
        /* The verifier's log overflowed; the program itself may be fine: load it without. */
        attr.log_buf = 0; attr.log_size = 0; attr.log_level = 0;
        fd = bpf_call(BPF_PROG_LOAD, &attr);
    }
    return fd;
}

int cl_bpf_attach_device_program(int cgroup_fd, int prog_fd, int replace_fd) {
    union bpf_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.target_fd = (unsigned int)cgroup_fd;
    attr.attach_bpf_fd = (unsigned int)prog_fd;
    attr.attach_type = BPF_CGROUP_DEVICE;
    attr.attach_flags = BPF_F_ALLOW_MULTI;
    if (replace_fd >= 0) {
        attr.attach_flags |= BPF_F_REPLACE;
        attr.replace_bpf_fd = (unsigned int)replace_fd;
    }
    return bpf_call(BPF_PROG_ATTACH, &attr);
}

int cl_bpf_detach_device_program(int cgroup_fd, int prog_fd) {
    union bpf_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.target_fd = (unsigned int)cgroup_fd;
    attr.attach_bpf_fd = (unsigned int)prog_fd;
    attr.attach_type = BPF_CGROUP_DEVICE;
    return bpf_call(BPF_PROG_DETACH, &attr);
}

int cl_bpf_query_device_programs(int cgroup_fd, unsigned int *ids, unsigned int capacity) {
    union bpf_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.query.target_fd = (unsigned int)cgroup_fd;
    attr.query.attach_type = BPF_CGROUP_DEVICE;
    attr.query.prog_ids = (unsigned long long)(uintptr_t)ids;
    attr.query.prog_cnt = capacity;
    if (bpf_call(BPF_PROG_QUERY, &attr) < 0) return -1;
    return (int)attr.query.prog_cnt;
}

int cl_bpf_program_fd(unsigned int id) {
    union bpf_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.prog_id = id;
    return bpf_call(BPF_PROG_GET_FD_BY_ID, &attr);
}
