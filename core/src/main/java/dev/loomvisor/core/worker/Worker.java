package dev.loomvisor.core.worker;

import dev.loomvisor.core.Task;

/**
 * A worker as the vhost layer sees it: created stopped, started once, woken many times, stopped once. It runs
 * its {@link WorkerFn} on one thread at a time, never concurrently with itself.
 */
public interface Worker {

    /**
     * Sleeps a worker loop takes in one call of its body before returning to the outer loop that calls it again.
     * A worker enters its loop once, most before the JIT compiled it, and that activation stays in the
     * interpreter; a virtual thread that parks with an interpreted frame among those it ran since it last parked
     * takes the slow freeze (frame by frame, into a new stack chunk). Re-entered now and then, the body runs
     * compiled and sleeps without returning into the interpreted frame below it, which stays frozen.
     */
    int SLEEPS_PER_CALL = 64;

    /** Lets the worker run (vhost_task_start / wake_up_new_task); its fn runs once even without a wake. */
    void start();

    /**
     * Makes the worker run its fn again soon; a wake is never lost. Allocation-free and cheap when the worker
     * is already awake. Returns false once the worker was killed or stopped (the wake went nowhere).
     */
    boolean wake();

    /** Asks the loop to leave, wakes it and waits until it has left (vhost_task_stop). Idempotent. */
    void stop();

    /** The task that runs the fn (for a pool worker: the pool thread it is bound to). */
    Task task();

    /** True once a SIGKILL ended the worker before a stop did (handleSigkill was called). */
    boolean isKilled();
}
