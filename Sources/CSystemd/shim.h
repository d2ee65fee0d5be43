#include <systemd/sd-daemon.h>
#include <systemd/sd-journal.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/uio.h>
#include <signal.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

// sd_notify takes a format string variadically in some helpers; expose the plain form.
static inline int csystemd_notify(const char *state) { return sd_notify(0, state); }

// sd_journal_sendv with a ready iovec array.
static inline int csystemd_journal_sendv(const struct iovec *iov, int n) { return sd_journal_sendv(iov, n); }

// SO_PEERCRED's struct ucred is hidden without _GNU_SOURCE; read its fixed layout here.
static inline int csystemd_peer_credentials(int fd, int *pid, unsigned *uid, unsigned *gid) {
    struct { pid_t pid; uid_t uid; gid_t gid; } cred; // the layout of struct ucred
    socklen_t len = sizeof(cred);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return -1;
    *pid = cred.pid; *uid = cred.uid; *gid = cred.gid;
    return 0;
}

// The peer's supplementary groups (SO_PEERGROUPS, Linux 4.13+); returns the count or -1.
static inline int csystemd_peer_groups(int fd, unsigned *groups, int capacity) {
#ifndef SO_PEERGROUPS
#define SO_PEERGROUPS 59
#endif
    socklen_t len = (socklen_t)(capacity * sizeof(unsigned));
    if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) != 0) return -1;
    return (int)(len / sizeof(unsigned));
}

// Signals through the self-pipe trick: the handler writes the signal number to a
// pipe the main loop polls. Works whatever thread the kernel picks (OpenBLAS's
// threads, made before main, never see a blocked mask).
static int csystemd_signal_pipe[2] = {-1, -1};

static void csystemd_signal_handler(int sig) {
    int saved = errno;
    unsigned char b = (unsigned char)sig;
    if (csystemd_signal_pipe[1] >= 0) { ssize_t r = write(csystemd_signal_pipe[1], &b, 1); (void)r; }
    errno = saved;
}

/// Installs handlers for SIGTERM, SIGINT and SIGHUP, ignores SIGPIPE; returns the
/// pipe's read end (or -1). Idempotent.
static inline int csystemd_install_signal_pipe(void) {
    if (csystemd_signal_pipe[0] >= 0) return csystemd_signal_pipe[0];
    if (pipe2(csystemd_signal_pipe, O_NONBLOCK | O_CLOEXEC) != 0) return -1;
    struct sigaction action;
    memset(&action, 0, sizeof(action));
    action.sa_handler = csystemd_signal_handler;
    action.sa_flags = SA_RESTART;
    sigemptyset(&action.sa_mask);
    sigaction(SIGTERM, &action, NULL);
    sigaction(SIGINT, &action, NULL);
    sigaction(SIGHUP, &action, NULL);
    signal(SIGPIPE, SIG_IGN);
    // A launcher may hand down a blocked mask (Foundation's Process does): unblock ours.
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM); sigaddset(&set, SIGINT); sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    return csystemd_signal_pipe[0];
}
