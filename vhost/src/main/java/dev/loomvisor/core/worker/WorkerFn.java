package dev.loomvisor.core.worker;

/** TEMPORARY SHIM of core's agreed SPI, deleted when branch core lands. */
@FunctionalInterface
public interface WorkerFn {
    boolean run();
}
