package dev.loomvisor.vmm.driver;

/**
 * Counters of one queue pair's driver. Written by the one vCPU thread serving the pair, read by anyone
 * (volatile, single writer).
 */
public final class PairStats {
    volatile long txFrames;
    volatile long txBytes;
    volatile long txCompleted;
    volatile long rxFrames;
    volatile long rxBytes;
    volatile long rxInOrder;
    volatile long rxLost;
    volatile long rxOutOfOrder;
    volatile long rxCorrupt;
    volatile long echoed;
    volatile long echoDropped;
    volatile long interrupts;
    volatile long kicks;

    public long txFrames() {
        return txFrames;
    }

    public long txBytes() {
        return txBytes;
    }

    /** TX chains the device gave back. */
    public long txCompleted() {
        return txCompleted;
    }

    public long rxFrames() {
        return rxFrames;
    }

    public long rxBytes() {
        return rxBytes;
    }

    /** Received frames whose seq was the next expected one. */
    public long rxInOrder() {
        return rxInOrder;
    }

    /** Seq numbers skipped over (frames never seen, as far as the receiver knows). */
    public long rxLost() {
        return rxLost;
    }

    /** Frames whose seq was below the next expected one: late or duplicated. */
    public long rxOutOfOrder() {
        return rxOutOfOrder;
    }

    /** Frames whose payload was not what the sender wrote. */
    public long rxCorrupt() {
        return rxCorrupt;
    }

    /** PINGs answered with a PONG. */
    public long echoed() {
        return echoed;
    }

    /** PINGs not answered because the TX ring was full. */
    public long echoDropped() {
        return echoDropped;
    }

    public long interrupts() {
        return interrupts;
    }

    public long kicks() {
        return kicks;
    }

    @Override
    public String toString() {
        return "tx=" + txFrames + " txDone=" + txCompleted + " rx=" + rxFrames + " lost=" + rxLost + " ooo="
                + rxOutOfOrder + " corrupt=" + rxCorrupt + " echoed=" + echoed;
    }
}
