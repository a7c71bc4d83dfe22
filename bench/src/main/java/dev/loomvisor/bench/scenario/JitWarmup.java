package dev.loomvisor.bench.scenario;

import dev.loomvisor.core.ErrnoException;
import dev.loomvisor.core.worker.WorkerModel;
import java.time.Duration;
import java.util.HashSet;
import java.util.Set;

/**
 * Warms the JIT before open-loop measurements: 2 VMs (or the floor's two threads) exchange frames at a rate
 * that gives the compiler thousands of frames in well under a second, unmeasured, once per model and frame
 * size in this JVM. Without it a low-rate measurement (10 frames/s per flow) holds the interpreter, the
 * compiler threads' CPU and the deoptimisations of its own first frames, and the model measured first pays
 * for code the others then share.
 */
public final class JitWarmup {

    /** Frames per second per flow while warming: 2 VMs carry 20,000 frames a second. */
    public static final double RATE_PER_FLOW = 10_000;
    /** {@link #RATE_PER_FLOW} as the help text shows it. */
    public static final String RATE_PER_FLOW_TEXT = "10k";

    private final Duration length;
    private final long timerSlackNanos;
    private final Set<String> done = new HashSet<>();

    /** @param length how long each warm-up carries frames (0: none) */
    public JitWarmup(Duration length, long timerSlackNanos) {
        this.length = length;
        this.timerSlackNanos = timerSlackNanos;
    }

    /** Frames a warm-up carries, all flows together (an estimate from its rate and length). */
    public long frames() {
        return Math.round(2 * RATE_PER_FLOW * length.toNanos() / 1e9);
    }

    public Duration length() {
        return length;
    }

    /** Warms {@code model} at {@code frameSize} unless done already in this JVM; true if it ran now. */
    public boolean model(WorkerModel model, int frameSize, DataPathRun.Traffic traffic, DataPathRun.Scale scale)
            throws ErrnoException {
        if (length.isZero() || !done.add(model.modelName() + "/" + frameSize + "/" + traffic)) {
            return false;
        }
        DataPathRun.run(model, 2, frameSize, Duration.ZERO, length, 0, RATE_PER_FLOW, traffic, scale, timerSlackNanos,
                null);
        return true;
    }

    /** Warms the floor's handoff unless done already; true if it ran now. */
    public boolean floor(DataPathRun.Traffic traffic) throws InterruptedException {
        if (length.isZero() || !done.add("floor/" + traffic)) {
            return false;
        }
        Floor.run(2, RATE_PER_FLOW, traffic, Duration.ZERO, length, timerSlackNanos);
        return true;
    }
}
