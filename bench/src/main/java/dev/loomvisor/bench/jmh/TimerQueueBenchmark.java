package dev.loomvisor.bench.jmh;

import dev.loomvisor.core.Notifier;
import dev.loomvisor.core.timer.Hrtimer;
import dev.loomvisor.core.timer.HrtimerBase;
import dev.loomvisor.core.timer.TimerQueue;
import java.util.concurrent.TimeUnit;
import org.agrona.DeadlineTimerWheel;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * The clock thread's data structure, weighed: {@code timers} paced senders, each re-armed one period after
 * it expires (an open-loop sender at period / timers apart), on simulated time. One op advances the clock by
 * period / timers, expires what is due and re-arms it. The heap ({@link TimerQueue}) against Agrona's
 * {@link DeadlineTimerWheel}; the wheel must also be polled once per tick while anything is armed (the
 * {@code wheelTicks} counter), where the heap knows its next expiry and sleeps until then.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(1)
public class TimerQueueBenchmark {

    private static final long PERIOD = 100_000_000L; // 10 frames/s per sender

    @Param({"100", "10000"})
    int timers;

    private HrtimerBase base;
    private Hrtimer[] handles;
    private TimerQueue heap;
    private DeadlineTimerWheel wheel;
    private long now;
    private long step;
    private long expired;
    private DeadlineTimerWheel.TimerHandler rearm;

    @Setup(Level.Trial)
    public void setUp() {
        base = new HrtimerBase("bench-hrtimer", timers);
        handles = new Hrtimer[timers];
        heap = new TimerQueue(timers);
        // 16 us ticks, 8192 spokes: one turn covers 134 ms, more than a period.
        wheel = new DeadlineTimerWheel(TimeUnit.NANOSECONDS, 0, 1 << 14, 1 << 13);
        step = Math.max(1, PERIOD / timers);
        rearm = this::rearm;
        for (int i = 0; i < timers; i++) {
            handles[i] = base.timer(new Notifier()); // never armed: only the queue sees them
            heap.add(handles[i], i * step);
            wheel.scheduleTimer(i * step);
        }
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        base.close();
    }

    @Benchmark
    public long heap() {
        now += step;
        while (heap.size() != 0 && heap.firstExpires() - now <= 0) {
            long due = heap.firstExpires();
            heap.add(heap.first(), due + PERIOD); // expire, then re-arm one period on
            expired++;
        }
        return expired;
    }

    @Benchmark
    public long wheel() {
        now += step;
        // The wheel advances at most one tick per poll: poll until its current tick is past now.
        do {
            wheel.poll(now, rearm, Integer.MAX_VALUE);
        } while (wheel.currentTickTime() <= now);
        return expired;
    }

    private boolean rearm(TimeUnit unit, long at, long timerId) {
        wheel.scheduleTimer(at + PERIOD);
        expired++;
        return true;
    }
}
