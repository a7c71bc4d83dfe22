package dev.loomvisor.core.worker;

import dev.loomvisor.core.ErrnoException;
import dev.loomvisor.core.Task;

/** How a vhost device gets its worker: the switch the benchmark turns (see {@link WorkerModel}). */
public interface WorkerFactory extends AutoCloseable {

    /**
     * Creates a worker on behalf of {@code caller} (the owner's calling thread), not yet started.
     *
     * @param fn the body, run when woken until it returns false
     * @param handleSigkill called once on the worker's thread if a SIGKILL ends it before a stop does (user
     *     workers only; kthreads ignore signals)
     * @param name the task's comm; null for {@code vhost-<caller tid>}
     * @throws ErrnoException the clone's error (EAGAIN over RLIMIT_NPROC or pids.max, ...)
     */
    Worker create(Task caller, WorkerFn fn, Runnable handleSigkill, String name) throws ErrnoException;

    /** The model's name as the CLI lists it ({@link WorkerModel#modelName()}). */
    String modelName();

    /** Releases what the factory owns (a pool's threads); a no-op for factories that own nothing. */
    @Override
    default void close() {
    }

    /** vhost's default worker name: {@code vhost-<tid of the caller>} (reference section 3). */
    static String defaultName(Task caller) {
        return "vhost-" + caller.tid();
    }
}
