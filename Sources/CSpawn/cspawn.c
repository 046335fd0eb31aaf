#define _GNU_SOURCE
#include "cspawn.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef MPOL_BIND
#define MPOL_BIND 2
#endif

// Where a child failed before exec; sent to the parent over the CLOEXEC error pipe.
enum spawn_step { STEP_MOVE_FDS = 1, STEP_SIGNALS, STEP_SETPGID, STEP_PDEATHSIG, STEP_PARENT_GONE, STEP_STDIN,
                  STEP_OUTPUT, STEP_AFFINITY, STEP_MEMPOLICY, STEP_EXEC };

static const char *step_name(int step) {
    switch (step) {
    case STEP_MOVE_FDS: return "moving the pipes above stderr";
    case STEP_SIGNALS: return "resetting signals";
    case STEP_SETPGID: return "setpgid";
    case STEP_PDEATHSIG: return "prctl(PR_SET_PDEATHSIG)";
    case STEP_PARENT_GONE: return "parent exited during spawn";
    case STEP_STDIN: return "opening /dev/null as stdin";
    case STEP_OUTPUT: return "redirecting stdout/stderr";
    case STEP_AFFINITY: return "sched_setaffinity";
    case STEP_MEMPOLICY: return "set_mempolicy(MPOL_BIND)";
    case STEP_EXEC: return "exec";
    default: return "unknown step";
    }
}

#define MAX_NODE_BITS 1024
#define NODE_WORDS (MAX_NODE_BITS / (8 * sizeof(unsigned long)))

// Everything the child needs, computed in the parent: between fork and exec in a
// multithreaded process only async-signal-safe calls are allowed (no malloc, no locks).
typedef struct {
    const tandem_spawn_request *request;
    cpu_set_t cpus;
    unsigned long nodes[NODE_WORDS];
    unsigned long node_bits;
    int max_fd;
    // Results.
    pid_t pid;
    int result;
    char *error;
    size_t error_size;
} spawn_job;

static void child_fail(int error_fd, int step) {
    int message[2] = { step, errno };
    ssize_t unused = write(error_fd, message, sizeof message);
    (void)unused;
    _exit(127);
}

// Closes every fd from 3 up except `keep`; 0..2 are never touched.
static void close_other_fds(int keep, int max_fd) {
    if (keep < 3) keep = 2; // Nothing to keep above stderr: close all of 3 and up.
    if (keep > 3 && syscall(SYS_close_range, 3, keep - 1, 0) != 0) {
        for (int fd = 3; fd < keep; fd++) close(fd);
    }
    if (syscall(SYS_close_range, keep + 1, ~0U, 0) != 0) {
        for (int fd = keep + 1; fd < max_fd; fd++) close(fd);
    }
}

static void run_child(spawn_job *job, pid_t parent, int error_fd) {
    const tandem_spawn_request *r = job->request;
    int output_fd = r->output_fd;
    // A supervisor started with stdin/stdout/stderr closed can get pipes numbered 0..2;
    // move them out of the way before 0..2 are redirected. A failed move ends the child
    // here, reported on the error pipe while it is still open.
    if (error_fd <= 2) {
        int moved = fcntl(error_fd, F_DUPFD_CLOEXEC, 3);
        if (moved < 0) child_fail(error_fd, STEP_MOVE_FDS);
        error_fd = moved;
    }
    if (output_fd <= 2) {
        int moved = fcntl(output_fd, F_DUPFD, 3);
        if (moved < 0) child_fail(error_fd, STEP_MOVE_FDS);
        output_fd = moved;
    }

    // The supervisor may block or ignore signals (e.g. SIGPIPE, SIGTERM for its own
    // handling); exec keeps ignored dispositions and the mask, so reset both.
    sigset_t all;
    sigemptyset(&all);
    if (sigprocmask(SIG_SETMASK, &all, NULL) != 0) child_fail(error_fd, STEP_SIGNALS);
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    for (int s = 1; s < NSIG; s++) {
        if (s == SIGKILL || s == SIGSTOP) continue;
        sigaction(s, &dfl, NULL); // Fails harmlessly for reserved real-time signals.
    }

    if (setpgid(0, 0) != 0) child_fail(error_fd, STEP_SETPGID);
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) child_fail(error_fd, STEP_PDEATHSIG);
    // The parent may have died between fork and prctl: then no signal will ever come.
    if (getppid() != parent) { errno = ESRCH; child_fail(error_fd, STEP_PARENT_GONE); }

    int devnull = open("/dev/null", O_RDONLY);
    if (devnull < 0 || dup2(devnull, 0) < 0) child_fail(error_fd, STEP_STDIN);
    if (output_fd < 0 || dup2(output_fd, 1) < 0 || dup2(output_fd, 2) < 0) child_fail(error_fd, STEP_OUTPUT);

    if (r->cpu_count > 0 && sched_setaffinity(0, sizeof job->cpus, &job->cpus) != 0)
        child_fail(error_fd, STEP_AFFINITY);
    // The kernel reads maxnode - 1 bits (the libnuma convention passes size + 1).
    if (r->node_count > 0 &&
        syscall(SYS_set_mempolicy, MPOL_BIND, job->nodes, job->node_bits + 1) != 0)
        child_fail(error_fd, STEP_MEMPOLICY);

    close_other_fds(error_fd, job->max_fd);
    execve(r->path, r->argv, r->envp);
    child_fail(error_fd, STEP_EXEC);
}

static void perform_spawn(spawn_job *job) {
    const tandem_spawn_request *r = job->request;
    job->result = -1;

    CPU_ZERO(&job->cpus);
    for (size_t i = 0; i < r->cpu_count; i++) {
        if (r->cpus[i] < 0 || r->cpus[i] >= CPU_SETSIZE) {
            snprintf(job->error, job->error_size, "CPU %d is out of range 0..%d", r->cpus[i], CPU_SETSIZE - 1);
            return;
        }
        CPU_SET(r->cpus[i], &job->cpus);
    }
    memset(job->nodes, 0, sizeof job->nodes);
    job->node_bits = 0;
    for (size_t i = 0; i < r->node_count; i++) {
        int n = r->numa_nodes[i];
        if (n < 0 || n >= MAX_NODE_BITS) {
            snprintf(job->error, job->error_size, "NUMA node %d is out of range 0..%d", n, MAX_NODE_BITS - 1);
            return;
        }
        job->nodes[n / (8 * sizeof(unsigned long))] |= 1UL << (n % (8 * sizeof(unsigned long)));
        if ((unsigned long)n + 1 > job->node_bits) job->node_bits = (unsigned long)n + 1;
    }
    struct rlimit limit;
    job->max_fd = (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < 65536) ? (int)limit.rlim_cur : 65536;

    int error_pipe[2];
    if (pipe2(error_pipe, O_CLOEXEC) != 0) {
        snprintf(job->error, job->error_size, "pipe2: %s", strerror(errno));
        return;
    }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(job->error, job->error_size, "fork: %s", strerror(errno));
        close(error_pipe[0]);
        close(error_pipe[1]);
        return;
    }
    if (pid == 0) {
        close(error_pipe[0]);
        run_child(job, parent, error_pipe[1]);
    }
    close(error_pipe[1]);
    int message[2];
    ssize_t got;
    do { got = read(error_pipe[0], message, sizeof message); } while (got < 0 && errno == EINTR);
    close(error_pipe[0]);
    if (got == (ssize_t)sizeof message) {
        // The child failed before exec and exits with 127: collect it here, since nobody
        // else knows its pid.
        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
        if (message[0] == STEP_EXEC)
            snprintf(job->error, job->error_size, "cannot execute %s: %s", r->path, strerror(message[1]));
        else
            snprintf(job->error, job->error_size, "worker setup failed at %s: %s", step_name(message[0]), strerror(message[1]));
        return;
    }
    job->pid = pid;
    job->result = 0;
}

// The spawner thread and its one-job mailbox.
static pthread_once_t spawner_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t spawner_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t callers_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t job_posted = PTHREAD_COND_INITIALIZER;
static pthread_cond_t job_done = PTHREAD_COND_INITIALIZER;
static spawn_job *pending_job;
static int job_finished;
static int spawner_start_error;

static void *spawner_main(void *unused) {
    (void)unused;
    pthread_mutex_lock(&spawner_lock);
    for (;;) { // Never exits: see the PR_SET_PDEATHSIG note in cspawn.h.
        while (pending_job == NULL) pthread_cond_wait(&job_posted, &spawner_lock);
        spawn_job *job = pending_job;
        pending_job = NULL;
        pthread_mutex_unlock(&spawner_lock);
        perform_spawn(job);
        pthread_mutex_lock(&spawner_lock);
        job_finished = 1;
        pthread_cond_broadcast(&job_done);
    }
    return NULL;
}

static void start_spawner(void) {
    pthread_t thread;
    spawner_start_error = pthread_create(&thread, NULL, spawner_main, NULL);
    if (spawner_start_error == 0) pthread_detach(thread);
}

int tandem_spawn(const tandem_spawn_request *request, pid_t *pid_out, char *error, size_t error_size) {
    pthread_once(&spawner_once, start_spawner);
    if (spawner_start_error != 0) {
        snprintf(error, error_size, "cannot start the spawner thread: %s", strerror(spawner_start_error));
        return -1;
    }
    spawn_job job;
    memset(&job, 0, sizeof job);
    job.request = request;
    job.error = error;
    job.error_size = error_size;
    if (error_size > 0) error[0] = '\0';

    pthread_mutex_lock(&callers_lock);
    pthread_mutex_lock(&spawner_lock);
    job_finished = 0;
    pending_job = &job;
    pthread_cond_signal(&job_posted);
    while (!job_finished) pthread_cond_wait(&job_done, &spawner_lock);
    pthread_mutex_unlock(&spawner_lock);
    pthread_mutex_unlock(&callers_lock);

    if (job.result == 0) *pid_out = job.pid;
    return job.result;
}

int tandem_exited(int status) { return WIFEXITED(status); }
int tandem_exit_status(int status) { return WEXITSTATUS(status); }
int tandem_signaled(int status) { return WIFSIGNALED(status); }
int tandem_term_signal(int status) { return WTERMSIG(status); }

int tandem_pipe_cloexec(int fds[2]) { return pipe2(fds, O_CLOEXEC); }
