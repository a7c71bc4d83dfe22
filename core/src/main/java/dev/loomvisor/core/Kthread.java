package dev.loomvisor.core;

/**
 * struct kthread: what kthreadd keeps for each kernel thread it forked (the task's worker_private). Only
 * {@link Kthreadd} reads or writes it.
 */
final class Kthread {

    /** KTHREAD_SHOULD_STOP. */
    volatile boolean shouldStop;

    /** The mm lent by kthread_use_mm, or null. */
    volatile Mm borrowedMm;
}
