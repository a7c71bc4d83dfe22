package dev.loomvisor.core.worker;

/**
 * The body a worker runs each time it is woken (vhost_task's {@code bool (*fn)(void *)} of 6.10): returns
 * true if it did work, and the worker then runs it again at once; it sleeps only after a false.
 */
@FunctionalInterface
public interface WorkerFn {
    boolean run();
}
