#pragma once
// Worker process creation for the supervisor: fork + exec with everything that must happen
// between the two (process group, parent-death signal, output pipe, CPU affinity, memory
// binding, a clean fd table and signal state), which Swift cannot express safely.
//
// All forks happen on one dedicated, never-exiting thread owned by this module (see
// cspawn.c): Linux delivers PR_SET_PDEATHSIG when the *thread* that forked the child exits,
// and Swift concurrency / Dispatch worker threads may exit when idle, which would kill a
// healthy worker for no reason.

#include <stddef.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    /// Absolute or relative path of the binary to execute (no PATH search).
    const char *path;
    /// NULL-terminated argument vector, argv[0] included.
    char *const *argv;
    /// NULL-terminated environment, given explicitly (nothing is inherited).
    char *const *envp;
    /// File descriptor that becomes the child's stdout and stderr (a pipe's write end).
    int output_fd;
    /// CPUs to pin the child to; cpu_count == 0 leaves the inherited affinity alone.
    const int *cpus;
    size_t cpu_count;
    /// NUMA nodes to bind the child's memory to (MPOL_BIND); node_count == 0: no binding.
    const int *numa_nodes;
    size_t node_count;
} tandem_spawn_request;

/// Starts the spawner thread if needed, then forks and execs on it. Blocks until the child
/// has either exec'd (returns 0, *pid_out set) or failed before exec (returns -1, message
/// with the failing step and errno text in `error`).
/// Reaping: a child that failed before exec has already been reaped here (waitpid on its
/// pid). A child that exec'd is the caller's to reap, by waiting on *pid_out itself; this
/// module never waits for any other child of the process.
int tandem_spawn(const tandem_spawn_request *request, pid_t *pid_out, char *error, size_t error_size);

/// pipe2(fds, O_CLOEXEC) (pipe2 needs _GNU_SOURCE, which Swift's Glibc import lacks).
int tandem_pipe_cloexec(int fds[2]);

/// Decoding of a raw wait status (macros are not importable into Swift).
int tandem_exited(int status);
int tandem_exit_status(int status);
int tandem_signaled(int status);
int tandem_term_signal(int status);

#ifdef __cplusplus
}
#endif
