package dev.loomvisor.core;

/** The Java thread that carries a worker's task: the axis of the benchmark the kernel does not have. */
public enum Carrier {
    /** A virtual thread: unmounts when it parks, cheap to create. */
    VIRTUAL,
    /** A platform (OS) thread, as every kernel task is. */
    PLATFORM;

    /** An unstarted thread of this kind; platform threads are daemons so a leaked worker never holds the JVM. */
    public Thread newThread(String name, Runnable body) {
        return switch (this) {
            case VIRTUAL -> Thread.ofVirtual().name(name).unstarted(body);
            case PLATFORM -> Thread.ofPlatform().name(name).daemon(true).unstarted(body);
        };
    }
}
