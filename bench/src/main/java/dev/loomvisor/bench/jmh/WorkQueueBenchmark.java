package dev.loomvisor.bench.jmh;

import dev.loomvisor.vhost.work.VhostWork;
import dev.loomvisor.vhost.work.WorkList;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;
import org.openjdk.jmh.infra.Blackhole;

/**
 * The vhost work list on its own: queue {@code works} distinct works (a device's rings and polls) and run
 * the batch, as one worker round does; and re-queueing an already queued work, the common case of a kick
 * storm, which must be a single failed bit test. Must allocate nothing ({@code -prof gc}).
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(1)
public class WorkQueueBenchmark {

    @Param({"1", "8"})
    int works;

    private WorkList list;
    private VhostWork[] items;
    private long ran;

    @Setup
    public void setUp() {
        list = new WorkList();
        items = new VhostWork[works];
        for (int i = 0; i < works; i++) {
            items[i] = new VhostWork(w -> ran++);
        }
    }

    /** One round: queue every work, then the worker takes the batch and runs it in order. */
    @Benchmark
    public long queueAndRunBatch() {
        for (VhostWork w : items) {
            list.queue(w);
        }
        list.runAll();
        return ran;
    }

    /** Queueing a work that is already queued: the QUEUED bit turns it into a no-op. */
    @Benchmark
    public void requeueQueued(Blackhole bh) {
        VhostWork w = items[0];
        list.queue(w);
        bh.consume(list.queue(w));
        list.runAll();
    }
}
