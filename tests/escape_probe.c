/* Escape probes for tests/test_escapes.py: each tries one way out of a container, harmlessly.
 *
 * Usage: escape_probe MAJOR MINOR HOST_MARKER HOST_PID [PROBE...]  (no PROBE: all of them)
 * MAJOR:MINOR name a loop device of the test's own; HOST_MARKER is a path that exists
 * only on the host, in the mount namespace of the host process HOST_PID (the test). Each probe prints one line: "<name> escaped <detail>" when the way
 * out worked, "<name> blocked <errno name>" when the kernel refused it, or
 * "<name> absent <why>" when this kernel has no such thing. Every probe is harmless
 * when it succeeds: it writes back what it read, sets the clock to the time it is,
 * reads 512 bytes of the test's own loop device, unmounts what it mounted, and makes
 * namespace or keyring changes only in a child process or its own process keyring.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/keyctl.h>
#include <linux/perf_event.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/klog.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/swap.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

enum { BLOCKED, ESCAPED, ABSENT };

static unsigned disk_major, disk_minor;
static const char *host_marker;
static const char *host_pid;
static char detail[256];

static int refused(void) { snprintf(detail, sizeof detail, "%s", strerrorname_np(errno) ? strerrorname_np(errno) : "?"); return errno == ENOSYS ? ABSENT : BLOCKED; }
static int worked(const char *what) { snprintf(detail, sizeof detail, "%s", what); return ESCAPED; }
static int missing(const char *what) { snprintf(detail, sizeof detail, "%s", what); return ABSENT; }

/* A call that reaches the kernel code behind a capability check answers with another errno than EPERM. */
static int reached(long result, const char *what) {
    if (result >= 0 || (errno != EPERM && errno != ENOSYS)) return worked(what);
    return refused();
}

static int read_512(const char *path) {
    char buf[512];
    int fd = open(path, O_RDONLY);
    if (fd < 0) return refused();
    ssize_t n = read(fd, buf, sizeof buf);
    close(fd);
    if (n != 512) return n < 0 ? refused() : missing("short read");
    return worked("read 512 bytes of the disk");
}

static int read_some(const char *path) {
    char buf[64];
    int fd = open(path, O_RDONLY);
    if (fd < 0) return errno == ENOENT ? missing("no such file on this kernel") : refused();
    ssize_t n = read(fd, buf, sizeof buf);
    close(fd);
    if (n > 0) return worked("read the host's data");
    if (n == 0) { snprintf(detail, sizeof detail, "empty (masked)"); return BLOCKED; }
    return refused();
}

/* In a child process, so that the probe's own namespaces, root and caps never change. */
static int in_child(int (*body)(void)) {
    pid_t pid = fork();
    if (pid == 0) _exit(body());
    int status;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : BLOCKED;
}

static int probe_sysrq(void) {
    int fd = open("/proc/sysrq-trigger", O_WRONLY);
    if (fd < 0) return errno == ENOENT ? missing("no /proc/sysrq-trigger on this kernel") : refused();
    ssize_t n = write(fd, "h", 1); /* h: print the help to the kernel log */
    close(fd);
    return n == 1 ? worked("wrote h") : refused();
}

static int probe_core_pattern(void) {
    char buf[4096];
    int fd = open("/proc/sys/kernel/core_pattern", O_RDONLY);
    if (fd < 0) return refused();
    ssize_t n = read(fd, buf, sizeof buf);
    close(fd);
    if (n <= 0) return refused();
    fd = open("/proc/sys/kernel/core_pattern", O_WRONLY);
    if (fd < 0) return refused();
    ssize_t w = write(fd, buf, n); /* the same pattern back */
    close(fd);
    return w == n ? worked("wrote core_pattern back") : refused();
}

static int probe_settimeofday(void) {
    struct timeval now;
    gettimeofday(&now, NULL);
    return settimeofday(&now, NULL) == 0 ? worked("set the clock to now") : refused();
}

static int probe_clock_settime(void) {
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return clock_settime(CLOCK_REALTIME, &now) == 0 ? worked("set the clock to now") : refused();
}

static int probe_image_node(void) { return read_512("/probe-disk"); }

static int mknod_and_read(const char *path, mode_t kind, unsigned major, unsigned minor, int read_it) {
    unlink(path);
    if (mknod(path, kind | 0600, makedev(major, minor)) != 0) return refused();
    int result;
    if (read_it) {
        result = read_512(path);
    } else {
        int fd = open(path, O_RDONLY);
        result = fd >= 0 ? worked("opened") : refused();
        if (fd >= 0) close(fd);
    }
    unlink(path);
    return result;
}

static int probe_mknod_root(void) { return mknod_and_read("/probe-mknod", S_IFBLK, disk_major, disk_minor, 1); }
static int probe_mknod_dev(void) { return mknod_and_read("/dev/probe-mknod", S_IFBLK, disk_major, disk_minor, 1); }
static int probe_mknod_mem(void) { return mknod_and_read("/probe-mem", S_IFCHR, 1, 1, 0); } /* /dev/mem, only opened */

static int probe_sys_firmware(void) {
    DIR *dir = opendir("/sys/firmware");
    if (!dir) return errno == ENOENT ? missing("no /sys/firmware") : refused();
    int entries = 0;
    struct dirent *entry;
    while ((entry = readdir(dir))) entries += entry->d_name[0] != '.';
    closedir(dir);
    if (entries) return worked("listed the firmware tables");
    snprintf(detail, sizeof detail, "empty (masked)");
    return BLOCKED;
}

static int probe_kcore(void) { return read_some("/proc/kcore"); }
static int probe_timer_list(void) { return read_some("/proc/timer_list"); }
static int probe_keys_file(void) { return read_some("/proc/keys"); }

static int probe_remount_sys(void) {
    if (mount(NULL, "/sys", NULL, MS_REMOUNT | MS_BIND, NULL) != 0) return refused(); /* no MS_RDONLY: read-write */
    return access("/sys/kernel", W_OK) == 0 || errno != EROFS ? worked("remounted /sys read-write") : refused();
}

static int probe_mount_device(void) {
    mkdir("/probe-mnt", 0700);
    if (mount("/probe-disk", "/probe-mnt", "ext2", MS_RDONLY, NULL) != 0) return refused();
    umount2("/probe-mnt", MNT_DETACH);
    return worked("mounted the disk");
}

static int probe_mount_proc(void) {
    mkdir("/probe-proc", 0700);
    if (mount("proc", "/probe-proc", "proc", 0, NULL) != 0) return refused();
    umount2("/probe-proc", MNT_DETACH);
    return worked("mounted an unmasked proc");
}

static int probe_tiocsti(void) {
    if (!isatty(0)) return missing("stdin is not a terminal");
    char c = '#';
    return ioctl(0, TIOCSTI, &c) == 0 ? worked("typed into the caller's terminal") : refused();
}

static int probe_keyctl(void) {
    return syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_PROCESS_KEYRING, 1) >= 0 ? worked("made a keyring")
                                                                                          : refused();
}

static int probe_add_key(void) {
    return syscall(SYS_add_key, "user", "lxclab-probe", "x", 1, KEY_SPEC_PROCESS_KEYRING) >= 0
               ? worked("added a key") : refused();
}

static int probe_bpf(void) {
    union bpf_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.map_type = BPF_MAP_TYPE_ARRAY;
    attr.key_size = 4;
    attr.value_size = 4;
    attr.max_entries = 1;
    int fd = syscall(SYS_bpf, BPF_MAP_CREATE, &attr, sizeof attr);
    if (fd < 0) return refused();
    close(fd);
    return worked("created a BPF map");
}

static int probe_perf_event_open(void) {
    struct perf_event_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.type = PERF_TYPE_SOFTWARE;
    attr.size = sizeof attr;
    attr.config = PERF_COUNT_SW_CPU_CLOCK;
    attr.disabled = 1;
    int fd = syscall(SYS_perf_event_open, &attr, 0, -1, -1, 0);
    if (fd < 0) return refused();
    close(fd);
    return worked("opened a performance counter");
}

static int probe_userfaultfd(void) {
    int fd = syscall(SYS_userfaultfd, O_CLOEXEC);
    if (fd < 0) return refused();
    close(fd);
    return worked("opened a userfaultfd");
}

static int unshare_user_body(void) { return unshare(CLONE_NEWUSER) == 0 ? ESCAPED : BLOCKED; }
static int unshare_mount_body(void) { return unshare(CLONE_NEWNS) == 0 ? ESCAPED : BLOCKED; }
static int probe_unshare_user(void) { return in_child(unshare_user_body) == ESCAPED ? worked("a new user namespace") : (snprintf(detail, sizeof detail, "refused"), BLOCKED); }
static int probe_unshare_mount(void) { return in_child(unshare_mount_body) == ESCAPED ? worked("a new mount namespace") : (snprintf(detail, sizeof detail, "refused"), BLOCKED); }

static int setns_body(void) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%s/ns/mnt", host_pid);
    int fd = open(path, O_RDONLY);
    if (fd < 0 || setns(fd, CLONE_NEWNS) != 0) return BLOCKED;
    return access(host_marker, F_OK) == 0 ? ESCAPED : BLOCKED;
}
static int probe_setns_host(void) { return in_child(setns_body) == ESCAPED ? worked("joined the host's mounts") : (snprintf(detail, sizeof detail, "host not reached"), BLOCKED); }

static int chroot_body(void) {
    mkdir("/probe-jail", 0700);
    if (chroot("/probe-jail") != 0) return BLOCKED;
    for (int i = 0; i < 64; i++) chdir("..");
    if (chroot(".") != 0) return BLOCKED;
    return access(host_marker, F_OK) == 0 ? ESCAPED : BLOCKED;
}
static int probe_chroot_escape(void) { return in_child(chroot_body) == ESCAPED ? worked("climbed out to the host's root") : (snprintf(detail, sizeof detail, "host not reached"), BLOCKED); }

static int probe_host_proc_root(void) {
    char path[4096];
    snprintf(path, sizeof path, "/proc/%s/root%s", host_pid, host_marker);
    if (access(path, F_OK) == 0) return worked("saw the host's files through /proc/PID/root");
    snprintf(detail, sizeof detail, "host not reached");
    return BLOCKED;
}

static int probe_finit_module(void) { return reached(syscall(SYS_finit_module, -1, "", 0), "reached the module loader"); }

static int probe_kexec_file_load(void) {
#ifdef SYS_kexec_file_load
    return reached(syscall(SYS_kexec_file_load, -1, -1, 0, "", 0), "reached the kexec loader");
#else
    return missing("no kexec_file_load here");
#endif
}

static int probe_open_by_handle(void) {
    struct { struct file_handle handle; unsigned char bytes[128]; } h;
    int mount_id;
    h.handle.handle_bytes = 128;
    /* /dev: a tmpfs in every runner, which gives file handles (an overlay root may not) */
    if (name_to_handle_at(AT_FDCWD, "/dev", &h.handle, &mount_id, 0) != 0) return refused();
    int root = open("/dev", O_RDONLY | O_DIRECTORY);
    int fd = open_by_handle_at(root, &h.handle, O_RDONLY);
    close(root);
    if (fd < 0) return refused();
    close(fd);
    return worked("opened a file by its handle");
}

static int probe_iopl(void) {
#if defined(__x86_64__)
    if (syscall(SYS_iopl, 3) != 0) return refused();
    syscall(SYS_iopl, 0);
    return worked("raised the I/O privilege level");
#else
    return missing("no iopl on this architecture");
#endif
}

static int probe_swapoff(void) { return reached(swapoff("/probe-no-such-swap"), "reached swapoff"); }
static int probe_syslog(void) { return klogctl(10, NULL, 0) >= 0 ? worked("read the kernel log size") : refused(); }

static int probe_io_uring(void) {
#ifdef SYS_io_uring_setup
    unsigned char params[120];
    memset(params, 0, sizeof params);
    int fd = syscall(SYS_io_uring_setup, 1, params);
    if (fd < 0) return refused();
    close(fd);
    return worked("set up an io_uring");
#else
    return missing("no io_uring here");
#endif
}

static const struct { const char *name; int (*run)(void); } PROBES[] = {
    {"sysrq_trigger", probe_sysrq}, {"core_pattern", probe_core_pattern},
    {"settimeofday", probe_settimeofday}, {"clock_settime", probe_clock_settime},
    {"image_device_node", probe_image_node}, {"mknod_in_root", probe_mknod_root},
    {"mknod_in_dev", probe_mknod_dev}, {"mknod_dev_mem", probe_mknod_mem},
    {"sys_firmware", probe_sys_firmware}, {"proc_kcore", probe_kcore},
    {"proc_timer_list", probe_timer_list}, {"proc_keys", probe_keys_file},
    {"remount_sys_rw", probe_remount_sys}, {"mount_device", probe_mount_device},
    {"mount_proc", probe_mount_proc}, {"tiocsti", probe_tiocsti},
    {"keyctl", probe_keyctl}, {"add_key", probe_add_key}, {"bpf", probe_bpf},
    {"perf_event_open", probe_perf_event_open}, {"userfaultfd", probe_userfaultfd},
    {"unshare_user", probe_unshare_user}, {"unshare_mount", probe_unshare_mount},
    {"setns_host", probe_setns_host}, {"chroot_escape", probe_chroot_escape},
    {"host_proc_root", probe_host_proc_root}, {"finit_module", probe_finit_module},
    {"kexec_file_load", probe_kexec_file_load}, {"open_by_handle_at", probe_open_by_handle},
    {"iopl", probe_iopl}, {"swapoff", probe_swapoff}, {"syslog", probe_syslog},
    {"io_uring", probe_io_uring},
};

int main(int argc, char **argv) {
    static const char *verdicts[] = {"blocked", "escaped", "absent"};
    if (argc < 5) {
        fprintf(stderr, "usage: %s MAJOR MINOR HOST_MARKER HOST_PID [PROBE...]\n", argv[0]);
        return 2;
    }
    disk_major = strtoul(argv[1], NULL, 10);
    disk_minor = strtoul(argv[2], NULL, 10);
    host_marker = argv[3];
    host_pid = argv[4];
    for (size_t i = 0; i < sizeof PROBES / sizeof PROBES[0]; i++) {
        int wanted = argc == 5;
        for (int a = 5; a < argc; a++) wanted |= strcmp(argv[a], PROBES[i].name) == 0;
        if (!wanted) continue;
        detail[0] = '\0';
        errno = 0;
        int verdict = PROBES[i].run();
        printf("%s %s %s\n", PROBES[i].name, verdicts[verdict], detail);
        fflush(stdout);
    }
    return 0;
}
