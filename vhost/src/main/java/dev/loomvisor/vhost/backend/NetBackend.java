package dev.loomvisor.vhost.backend;

import org.agrona.DirectBuffer;

/**
 * What vhost-net's VHOST_NET_SET_BACKEND attaches to a device: the socket frames leave the guest into and
 * come to the guest from. Implementations are allocation-free per frame and run on the calling worker's
 * thread; they start no threads of their own.
 *
 * <p>Threading: {@link #transmit} is called by the worker serving the device's TX ring and
 * {@link #receive} by the one serving its RX ring (never two threads at once for one side of one
 * backend); the RX listener may be called from any thread.
 */
public interface NetBackend {

    /**
     * The guest sent {@code length} bytes of Ethernet frame (the virtio-net header already taken off).
     *
     * @return true if the backend took the frame, false if it dropped it (and counted why)
     */
    boolean transmit(DirectBuffer frame, int offset, int length);

    /**
     * End of a TX batch (at most 64 frames, and at the end of every handler run): a backend that defers
     * waking its receivers wakes them now. Frames are delivered at {@link #transmit}; only the wake-up is
     * batched, which saves a queueing per frame without adding more than a batch of latency.
     */
    default void flushTransmit() {
    }

    /**
     * Hands up to {@code limit} waiting frames, oldest first, to {@code receiver}; stops at the first one
     * the receiver leaves.
     *
     * @return frames consumed
     */
    int receive(FrameReceiver receiver, int limit);

    /** True if at least one frame waits for the guest (a snapshot). */
    boolean rxPending();

    /**
     * The socket's wait queue: {@code listener} is called (from any thread, must not block) whenever a
     * frame becomes available for the guest. vhost-net hangs its RX poll here. Null removes it. If frames
     * already wait, the listener is called once at once, as vhost_poll_start does for a readable fd.
     */
    void setRxListener(Runnable listener);

    /**
     * The device is gone: drops every frame still waiting for the guest, counts them in the backend's own
     * counters, and returns how many (a session's close accounts for every frame). Called only after the
     * RX worker stopped.
     */
    default long discardPending() {
        return 0;
    }
}
