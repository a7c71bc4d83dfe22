package dev.loomvisor.vhost.backend;

import org.agrona.DirectBuffer;

/**
 * A backend that captures: every frame the guest sends ({@link #transmit}) and every frame the guest
 * takes ({@link #receive}) goes to a {@link PcapWriter}, then on to or from the backend it wraps. Only a
 * capture wraps a backend, so a run without one pays nothing; with one, a frame costs a copy into the
 * writer's buffer and no allocation (the receive side reuses this object as the receiver it hands down).
 */
public final class PcapBackend implements NetBackend, FrameReceiver, AutoCloseable {

    private final NetBackend inner;
    private final PcapWriter pcap;
    /** The guest's receiver of the {@link #receive} call in progress (one RX thread per backend). */
    private FrameReceiver guest;

    public PcapBackend(NetBackend inner, PcapWriter pcap) {
        this.inner = inner;
        this.pcap = pcap;
    }

    /** The backend this one captures for. */
    public NetBackend inner() {
        return inner;
    }

    @Override
    public boolean transmit(DirectBuffer frame, int offset, int length) {
        pcap.write(frame, offset, length);
        return inner.transmit(frame, offset, length);
    }

    @Override
    public void flushTransmit() {
        inner.flushTransmit();
    }

    @Override
    public int receive(FrameReceiver receiver, int limit) {
        guest = receiver;
        try {
            return inner.receive(this, limit);
        } finally {
            guest = null;
        }
    }

    /** A frame on its way to the guest: captured only if the guest took it (a left frame comes again). */
    @Override
    public boolean onFrame(DirectBuffer buffer, int offset, int length) {
        boolean taken = guest.onFrame(buffer, offset, length);
        if (taken) {
            pcap.write(buffer, offset, length);
        }
        return taken;
    }

    @Override
    public boolean rxPending() {
        return inner.rxPending();
    }

    @Override
    public void setRxListener(Runnable listener) {
        inner.setRxListener(listener);
    }

    @Override
    public long discardPending() {
        return inner.discardPending();
    }

    /** Closes the wrapped backend if it is closeable; the writer is shared and closed by its owner. */
    @Override
    public void close() throws Exception {
        pcap.flush();
        if (inner instanceof AutoCloseable c) {
            c.close();
        }
    }
}
