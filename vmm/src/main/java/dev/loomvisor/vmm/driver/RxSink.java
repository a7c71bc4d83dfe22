package dev.loomvisor.vmm.driver;

/**
 * Told about every test frame a vCPU receives (after the driver's own order/loss bookkeeping), on the vCPU
 * thread; e.g. a latency recorder in the bench module. Must not block.
 */
@FunctionalInterface
public interface RxSink {

    /** @param type {@link FrameFormat#DATA}, {@link FrameFormat#PING} or {@link FrameFormat#PONG} */
    void onFrame(int pair, byte type, long seq, long sendNanos, long receiveNanos, int length);

    RxSink NONE = (pair, type, seq, sendNanos, receiveNanos, length) -> { };
}
