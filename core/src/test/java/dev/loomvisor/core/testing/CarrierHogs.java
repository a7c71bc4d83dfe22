package dev.loomvisor.core.testing;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.BooleanSupplier;

/**
 * Virtual threads that spin until closed: started one per millisecond until a condition holds, so that however
 * many carriers the scheduler has, they end up holding every carrier with one more waiting for one.
 */
public final class CarrierHogs implements AutoCloseable {

    /** More spinning virtual threads than any scheduler here has carriers. */
    public static final int MAX = 256;

    private final AtomicBoolean release = new AtomicBoolean();
    private final List<Thread> threads = new ArrayList<>();

    /** Starts one spinner that runs {@code eachLook} between its spins, until closed. */
    public Thread start(Runnable eachLook) {
        Thread t = Thread.ofVirtual().start(() -> {
            while (!release.get()) {
                eachLook.run();
                Thread.onSpinWait();
            }
        });
        threads.add(t);
        return t;
    }

    /** Starts spinners, one per millisecond and at most {@link #MAX}, until {@code done}; fails with {@code what} after 30 s. */
    public void addUntil(BooleanSupplier done, String what) throws InterruptedException {
        long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (!done.getAsBoolean()) {
            assertTrue(System.nanoTime() - end < 0, what);
            if (threads.size() < MAX) {
                start(() -> { });
            }
            Thread.sleep(1);
        }
    }

    /** Stops every spinner and waits for it. */
    @Override
    public void close() throws InterruptedException {
        release.set(true);
        for (Thread t : threads) {
            t.join();
        }
    }
}
