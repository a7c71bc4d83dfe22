package dev.loomvisor.vhost.backend;

import org.agrona.DirectBuffer;

/** Takes one frame from a backend towards a guest (the RX side of vhost-net). */
@FunctionalInterface
public interface FrameReceiver {

    /**
     * Offers one Ethernet frame; the bytes are valid only during the call.
     *
     * @return true if the frame was consumed (delivered, or dropped and counted by the receiver); false
     *     to leave it, and every frame after it, in the backend for a later call (no guest buffer yet)
     */
    boolean onFrame(DirectBuffer buffer, int offset, int length);
}
