package dev.loomvisor.bench.machine;

import java.util.Arrays;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The core-to-core round trip of this machine right now: two platform threads bounce a counter through
 * one cache line. On these shared VMs the two vCPUs are sometimes close (~0.1 us) and sometimes far apart
 * (~0.4 us), which moves every throughput figure; a run records this at its start and end so a reader can
 * judge a comparison across runs.
 */
public final class CoreToCore {

    /** Median and spread of the per-round-trip time over several batches, in nanoseconds. */
    public record Result(double medianNanos, double minNanos, double maxNanos, int batches, int roundTripsPerBatch) {}

    private CoreToCore() {}

    public static Result measure(int batches, int roundTripsPerBatch) {
        if (batches < 1 || roundTripsPerBatch < 1) {
            throw new IllegalArgumentException("batches and round trips must be at least 1");
        }
        // Odd values are the pinger's, even values the ponger's; the ponger answers each odd value with
        // the next even one. -1 tells it to leave.
        var ball = new AtomicLong();
        Thread ponger = Thread.ofPlatform().name("loomvisor-c2c-pong").daemon().start(() -> {
            long v;
            while ((v = ball.get()) != -1) {
                if ((v & 1) == 1) {
                    ball.set(v + 1);
                } else {
                    Thread.onSpinWait();
                }
            }
        });
        double[] perTrip = new double[batches];
        long next = 0;
        try {
            for (int b = 0; b < batches; b++) {
                long t0 = System.nanoTime();
                for (int i = 0; i < roundTripsPerBatch; i++) {
                    ball.set(next + 1);
                    next += 2;
                    while (ball.get() != next) {
                        Thread.onSpinWait();
                    }
                }
                perTrip[b] = (double) (System.nanoTime() - t0) / roundTripsPerBatch;
            }
        } finally {
            ball.set(-1);
        }
        try {
            ponger.join();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        Arrays.sort(perTrip);
        double median = batches % 2 == 1 ? perTrip[batches / 2]
                : (perTrip[batches / 2 - 1] + perTrip[batches / 2]) / 2;
        return new Result(median, perTrip[0], perTrip[batches - 1], batches, roundTripsPerBatch);
    }
}
