package dev.loomvisor.bench.jmh;

import dev.loomvisor.core.Notifier;
import dev.loomvisor.core.timer.Hrtimer;
import dev.loomvisor.core.timer.HrtimerBase;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * A paced sender's wait for its next send time, 100 us ahead: its own timed park (subject to the thread's
 * 50 us timer slack) against an {@link Hrtimer} on the shared clock thread signalling the sender's notifier.
 * Sampled: each op is 100 us plus how late the sender woke.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.SampleTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 2, time = 1)
@Measurement(iterations = 3, time = 2)
@Fork(1)
public class HrtimerWakeBenchmark {

    private static final long AHEAD = 100_000;

    private HrtimerBase base;
    private Notifier notifier;
    private Hrtimer timer;

    @Setup(Level.Trial)
    public void setUp() {
        base = new HrtimerBase("bench-hrtimer");
        notifier = new Notifier();
        timer = base.timer(notifier);
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        base.close();
    }

    @Benchmark
    public long timedPark() {
        long deadline = System.nanoTime() + AHEAD;
        long left;
        while ((left = deadline - System.nanoTime()) > 0) {
            LockSupport.parkNanos(left);
        }
        return deadline;
    }

    @Benchmark
    public long hrtimer() throws InterruptedException {
        long deadline = System.nanoTime() + AHEAD;
        timer.start(deadline);
        while (deadline - System.nanoTime() > 0) {
            notifier.await();
        }
        return deadline;
    }
}
