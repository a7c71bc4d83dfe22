package dev.loomvisor.core.worker;

/** TEMPORARY SHIM of core's agreed SPI, deleted when branch core lands. */
public interface Worker {
    void start();

    boolean wake();

    void stop();

    boolean isKilled();
}
