package dev.loomvisor.bench.scenario;

import dev.loomvisor.bench.machine.MachineState;
import dev.loomvisor.core.timer.Hrtimer;
import dev.loomvisor.core.timer.HrtimerBase;
import java.time.Duration;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.LongAdder;
import java.util.concurrent.locks.LockSupport;
import org.HdrHistogram.Histogram;
import org.HdrHistogram.Recorder;

/**
 * The floor under every model: the same VMs, pacing and latency recording as {@link DataPathRun}, with
 * everything between two guests taken out. Each "VM" is one virtual thread that parks, as a guest's vCPU
 * does, until its next send time (an {@link Hrtimer} on a clock with the same slack, unparking it) or a
 * frame from its peer (the peer unparks it, as an interrupt unparks a vCPU); a frame is its intended send
 * time handed over through a single-producer mailbox. What is left is what the JVM's scheduler and the pacing
 * cost; a model's latency over this is what its rings, workers and switch add.
 */
public final class Floor {

    /** What one floor run saw. Latencies in nanoseconds. */
    public record Measurement(int vms, double ratePerFlow, DataPathRun.Traffic traffic, long frames, long nanos,
                              Histogram latency, double cpuSeconds, long dropped, Histogram sendLateness) {

        public double framesPerSecond() {
            return frames * 1e9 / nanos;
        }
    }

    private static final int MAILBOX = 1 << 12;
    /**
     * Parks before a VM's {@code rounds} returns to its loop and is called again, as the guest driver's vCPU
     * does: a loop entered once per thread stays interpreted, and a virtual thread parking with an interpreted
     * frame thawed takes the JDK's slow freeze (a new stack chunk per park). The floor pays what the models pay.
     */
    private static final int PARKS_PER_CALL = 64;

    private Floor() {}

    /**
     * @param vms an even count; pairs as in {@link DataPathRun}
     * @param ratePerFlow frames per second each sending VM sends (above 0)
     */
    public static Measurement run(int vms, double ratePerFlow, DataPathRun.Traffic traffic, Duration warmup,
                                  Duration duration) throws InterruptedException {
        return run(vms, ratePerFlow, traffic, warmup, duration, HrtimerBase.DEFAULT_SLACK_NANOS);
    }

    /** @param timerSlackNanos the pacing clock's slack, as the models' ({@link HrtimerBase}) */
    public static Measurement run(int vms, double ratePerFlow, DataPathRun.Traffic traffic, Duration warmup,
                                  Duration duration, long timerSlackNanos) throws InterruptedException {
        if (vms < 2 || vms % 2 != 0) {
            throw new IllegalArgumentException("vms must be even and at least 2: " + vms);
        }
        if (!(ratePerFlow > 0)) {
            throw new IllegalArgumentException("the floor is an open loop: rate " + ratePerFlow);
        }
        long interval = Math.max(1, Math.round(1e9 / ratePerFlow));
        var recorder = new Recorder(3);
        var lateness = new Recorder(3);
        var recording = new AtomicBoolean();
        var stop = new AtomicBoolean();
        var dropped = new LongAdder();
        try (var clock = new HrtimerBase("floor-hrtimer", Math.max(HrtimerBase.DEFAULT_CAPACITY, vms), timerSlackNanos)) {
            Vm[] all = new Vm[vms];
            Thread[] threads = new Thread[vms];
            long start = System.nanoTime();
            for (int i = 0; i < vms; i++) {
                int k = i;
                boolean echo = traffic == DataPathRun.Traffic.PING_PONG && (i & 1) == 1;
                // Senders start spread over one interval, as guests booted at different times would.
                long first = start + interval * i / vms;
                threads[i] = Thread.ofVirtual().name("floor-vm" + i).unstarted(() ->
                        all[k].loop(all[k ^ 1], echo ? 0 : interval, first, echo, recorder, lateness, recording, stop,
                                dropped));
                all[i] = new Vm(clock, threads[i]);
            }
            for (Thread t : threads) {
                t.start();
            }
            sleep(warmup.toNanos());
            recording.setOpaque(true);
            recorder.getIntervalHistogram();
            lateness.getIntervalHistogram();
            double cpu0 = MachineState.processCpuSeconds();
            long t0 = System.nanoTime();
            sleep(duration.toNanos());
            long nanos = System.nanoTime() - t0;
            double cpu = MachineState.processCpuSeconds() - cpu0;
            recording.setOpaque(false);
            stop.set(true);
            for (Vm vm : all) {
                LockSupport.unpark(vm.thread);
            }
            for (Thread t : threads) {
                t.join();
            }
            for (Vm vm : all) {
                vm.timer.close();
            }
            // Read once every VM has left, so a value recorded as the window closed is in it. The frame count is
            // the histogram's: a separate counter would race the recorder's reset at the window's start.
            Histogram h = recorder.getIntervalHistogram();
            long frames = h.getTotalCount();
            return new Measurement(vms, ratePerFlow, traffic, frames, nanos, h, cpu, dropped.sum(),
                    lateness.getIntervalHistogram());
        }
    }

    /** One VM of the floor: its thread, its pacing timer and the mailbox its peer sends into. */
    private static final class Vm {
        final Thread thread;
        final Hrtimer timer;
        /** Intended send times in flight to this VM (single producer: the peer; single consumer: this VM). */
        final long[] mailbox = new long[MAILBOX];
        final AtomicLong head = new AtomicLong();
        final AtomicLong tail = new AtomicLong();

        Vm(HrtimerBase clock, Thread thread) {
            this.thread = thread;
            this.timer = clock.timer(thread);
        }

        boolean offer(long stamp) {
            long t = tail.getPlain();
            if (t - head.getAcquire() >= MAILBOX) {
                return false;
            }
            mailbox[(int) (t & (MAILBOX - 1))] = stamp;
            tail.setRelease(t + 1);
            return true;
        }

        /** The next send time and the expiry the timer is armed for, kept across calls of {@link #rounds}. */
        private long next;
        private long armed = Long.MAX_VALUE;

        void loop(Vm peer, long interval, long first, boolean echo, Recorder recorder, Recorder lateness,
                  AtomicBoolean recording, AtomicBoolean stop, LongAdder dropped) {
            next = first;
            HrtimerBase clock = timer.base();
            clock.idleExit();
            try {
                while (rounds(peer, interval, echo, recorder, lateness, recording, stop, dropped)) {
                    // Back into rounds, compiled by now: see PARKS_PER_CALL.
                }
            } finally {
                clock.idleEnter();
            }
        }

        /** The VM's rounds, until {@link #PARKS_PER_CALL} parks: false when the run is over. */
        private boolean rounds(Vm peer, long interval, boolean echo, Recorder recorder, Recorder lateness,
                               AtomicBoolean recording, AtomicBoolean stop, LongAdder dropped) {
            for (int parks = 0; parks < PARKS_PER_CALL; parks++) {
                if (stop.get()) {
                    return false;
                }
                // Frames from the peer: record them (one-way or the echo's return) or send them back.
                long h = head.getPlain();
                long t = tail.getAcquire();
                boolean sentBack = false;
                for (; h != t; h++) {
                    long stamp = mailbox[(int) (h & (MAILBOX - 1))];
                    if (echo) {
                        sentBack |= send(peer, stamp, dropped);
                    } else {
                        if (recording.getOpaque()) {
                            recorder.recordValue(Math.max(0, System.nanoTime() - stamp));
                        }
                    }
                }
                head.setRelease(h);
                if (sentBack) {
                    LockSupport.unpark(peer.thread);
                }
                if (interval > 0) {
                    long now = System.nanoTime();
                    boolean sent = false;
                    while (next - now <= 0) {
                        if (recording.getOpaque()) {
                            lateness.recordValue(now - next); // as the driver's: the sender's own lateness
                        }
                        sent |= send(peer, next, dropped);
                        next += interval;
                    }
                    if (sent) {
                        LockSupport.unpark(peer.thread);
                    }
                    // Armed once per send time, as the driver's pacer: a wake by the peer leaves it armed.
                    if (armed != next || !timer.isActive()) {
                        armed = next;
                        timer.start(next);
                    }
                }
                // As a halting vCPU: due send times fired from this carrier, and the clock told (idleEnter).
                HrtimerBase clock = timer.base();
                clock.idleEnter();
                // The permit makes an unpark between the checks above and here wake this park at once.
                LockSupport.park(this);
                clock.idleExit();
            }
            return true;
        }

        private static boolean send(Vm peer, long stamp, LongAdder dropped) {
            if (peer.offer(stamp)) {
                return true;
            }
            dropped.increment();
            return false;
        }
    }

    private static void sleep(long nanos) {
        long end = System.nanoTime() + nanos;
        long left;
        while ((left = end - System.nanoTime()) > 0) {
            LockSupport.parkNanos(left);
        }
    }
}
