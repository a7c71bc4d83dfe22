package dev.loomvisor.vhost.backend;

import org.agrona.MutableDirectBuffer;
import org.agrona.concurrent.ControlledMessageHandler;
import org.agrona.concurrent.ringbuffer.RingBuffer;

/**
 * The receive side of a backend queue: hands the frames waiting in an Agrona ring buffer to a
 * {@link FrameReceiver} until a limit or the first frame the receiver refuses (which stays queued for the
 * next call). Itself the read handler, so no lambda is captured per call. Used by one thread at a time (the
 * RX worker).
 */
final class RingDrain implements ControlledMessageHandler {

    private final RingBuffer queue;
    private FrameReceiver receiver;
    private long bytes;
    private boolean aborted;

    RingDrain(RingBuffer queue) {
        this.queue = queue;
    }

    /** Delivers up to {@code limit} frames; returns how many the receiver took ({@link #bytes()}: their bytes). */
    int drain(FrameReceiver r, int limit) {
        receiver = r;
        bytes = 0;
        aborted = false;
        int total = 0;
        try {
            // One Agrona read stops at the end of the buffer (and may only skip the padding there), so read
            // again until the limit, a refusal, or a read that moved nothing.
            while (total < limit && !aborted) {
                long before = queue.consumerPosition();
                total += queue.controlledRead(this, limit - total);
                if (queue.consumerPosition() == before) {
                    break;
                }
            }
        } finally {
            receiver = null;
        }
        return total;
    }

    /** Bytes of the frames the last {@link #drain} delivered. */
    long bytes() {
        return bytes;
    }

    @Override
    public Action onMessage(int msgTypeId, MutableDirectBuffer buffer, int index, int length) {
        if (!receiver.onFrame(buffer, index, length)) {
            aborted = true;
            return Action.ABORT;
        }
        bytes += length;
        return Action.CONTINUE;
    }
}
