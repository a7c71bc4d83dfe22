package dev.loomvisor.core;

/**
 * The resource limits of a thread group (signal->rlim) that copy_process reads. Shared by the threads of a
 * process, copied into a new process (reference section 1, step 7).
 *
 * @param nproc RLIMIT_NPROC soft limit: the most tasks the process's real user may own, or {@link #INFINITY}
 */
public record Rlimits(long nproc) {

    /** RLIM_INFINITY ("unlimited" in /proc/self/limits). */
    public static final long INFINITY = Long.MAX_VALUE;

    public Rlimits {
        if (nproc < 0) {
            throw new IllegalArgumentException("RLIMIT_NPROC " + nproc + " is negative");
        }
    }

    public static Rlimits unlimited() {
        return new Rlimits(INFINITY);
    }

    public static Rlimits nproc(long nproc) {
        return new Rlimits(nproc);
    }
}
