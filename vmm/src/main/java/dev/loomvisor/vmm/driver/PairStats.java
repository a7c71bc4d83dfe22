package dev.loomvisor.vmm.driver;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;

/**
 * Counters of one queue pair's driver. Written by the one vCPU thread serving the pair, read by anyone:
 * opaque writes and reads (visible soon, never hoisted, no fence per frame on the vCPU's hot path).
 */
public final class PairStats {

    static final int TX_FRAMES = 0;
    static final int TX_BYTES = 1;
    static final int TX_COMPLETED = 2;
    static final int RX_FRAMES = 3;
    static final int RX_BYTES = 4;
    static final int RX_IN_ORDER = 5;
    static final int RX_LOST = 6;
    static final int RX_GAPS = 7;
    static final int RX_OUT_OF_ORDER = 8;
    static final int RX_CORRUPT = 9;
    static final int ECHOED = 10;
    static final int ECHO_DROPPED = 11;
    static final int INTERRUPTS = 12;
    static final int KICKS = 13;
    static final int RX_KICKS = 14;
    static final int HALTS = 15;
    static final int SLICE_YIELDS = 16;
    private static final int COUNT = 17;
    private static final VarHandle C = MethodHandles.arrayElementVarHandle(long[].class);

    private final long[] c = new long[COUNT];

    /** Single writer: the vCPU serving the pair. */
    void add(int counter, long delta) {
        C.setOpaque(c, counter, c[counter] + delta);
    }

    private long get(int counter) {
        return (long) C.getOpaque(c, counter);
    }

    /** Frames the pair's source transmitted (echoes not included). */
    public long txFrames() {
        return get(TX_FRAMES);
    }

    public long txBytes() {
        return get(TX_BYTES);
    }

    /** TX chains the device gave back (source frames and echoes). */
    public long txCompleted() {
        return get(TX_COMPLETED);
    }

    public long rxFrames() {
        return get(RX_FRAMES);
    }

    public long rxBytes() {
        return get(RX_BYTES);
    }

    /** Received frames whose seq was the next expected one of their flow. */
    public long rxInOrder() {
        return get(RX_IN_ORDER);
    }

    /** Seq numbers skipped over (frames never seen, as far as the receiver knows). */
    public long rxLost() {
        return get(RX_LOST);
    }

    /** Places where a flow's seq jumped forward (one per run of lost frames). */
    public long rxGaps() {
        return get(RX_GAPS);
    }

    /** Frames whose seq was not above the last one of their flow: late or duplicated. */
    public long rxOutOfOrder() {
        return get(RX_OUT_OF_ORDER);
    }

    /** Frames whose payload was not what the sender wrote, or too short to be a test frame. */
    public long rxCorrupt() {
        return get(RX_CORRUPT);
    }

    /** PINGs answered with a PONG. */
    public long echoed() {
        return get(ECHOED);
    }

    /** PINGs not answered: no TX buffer, or too long for one. */
    public long echoDropped() {
        return get(ECHO_DROPPED);
    }

    /** Waits on the interrupt vector that an interrupt ended. */
    public long interrupts() {
        return get(INTERRUPTS);
    }

    /** QueueNotify writes, both rings. */
    public long kicks() {
        return get(KICKS);
    }

    /** QueueNotify writes of the RX ring (refills the device asked to hear about), included in {@link #kicks()}. */
    public long rxKicks() {
        return get(RX_KICKS);
    }

    /**
     * Times the vCPU blocked for an interrupt or its next send time (KVM's halt exits): each one is a wake-up
     * someone (an interrupt, the pacing timer, a stop) paid for.
     */
    public long halts() {
        return get(HALTS);
    }

    /** Times a busy vCPU gave up its carrier at the end of a time slice (a host preempting it). */
    public long sliceYields() {
        return get(SLICE_YIELDS);
    }

    @Override
    public String toString() {
        return "tx=" + txFrames() + " txDone=" + txCompleted() + " rx=" + rxFrames() + " lost=" + rxLost()
                + " ooo=" + rxOutOfOrder() + " corrupt=" + rxCorrupt() + " echoed=" + echoed();
    }
}
