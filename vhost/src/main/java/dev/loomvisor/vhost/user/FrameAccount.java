package dev.loomvisor.vhost.user;

import java.util.Locale;

/**
 * Where a session's frames went, exactly. TX (front-end to backend): every frame the front-end made
 * available was either delivered to the backend or dropped for one reason (a readable part shorter than the
 * virtio-net header, a frame above 64 KiB, or the backend refused it: its own counters say why). RX
 * (backend to front-end): every frame the backend offered was written into a guest buffer, dropped (larger
 * than the buffers the guest offers, or a chain with a device-readable part), or was still queued when the
 * session closed and was discarded then.
 */
public record FrameAccount(long txDelivered, long txBytes, long txDropBadHeader, long txDropTooBig,
                           long txDropBackend, long rxDelivered, long rxBytes, long rxDropTooBig,
                           long rxDropBadChain, long rxDiscardedAtClose) {

    public static final FrameAccount ZERO = new FrameAccount(0, 0, 0, 0, 0, 0, 0, 0, 0, 0);

    /** Frames the front-end transmitted (delivered or dropped). */
    public long txReceived() {
        return txDelivered + txDropped();
    }

    public long txDropped() {
        return txDropBadHeader + txDropTooBig + txDropBackend;
    }

    /** Frames the backend offered to the front-end (delivered, dropped or discarded at close). */
    public long rxOffered() {
        return rxDelivered + rxDropped();
    }

    public long rxDropped() {
        return rxDropTooBig + rxDropBadChain + rxDiscardedAtClose;
    }

    public FrameAccount plus(FrameAccount o) {
        return new FrameAccount(txDelivered + o.txDelivered, txBytes + o.txBytes, txDropBadHeader + o.txDropBadHeader,
                txDropTooBig + o.txDropTooBig, txDropBackend + o.txDropBackend, rxDelivered + o.rxDelivered,
                rxBytes + o.rxBytes, rxDropTooBig + o.rxDropTooBig, rxDropBadChain + o.rxDropBadChain,
                rxDiscardedAtClose + o.rxDiscardedAtClose);
    }

    /**
     * {@code tx 10 received, 8 delivered, 2 dropped (bad_header 0, too_big 0, backend 2); rx 5 offered, 4
     * delivered, 1 dropped (too_big 0, bad_chain 0, discarded_at_close 1)}.
     */
    @Override
    public String toString() {
        return String.format(Locale.ROOT,
                "tx %d received, %d delivered, %d dropped (bad_header %d, too_big %d, backend %d); "
                        + "rx %d offered, %d delivered, %d dropped (too_big %d, bad_chain %d, discarded_at_close %d)",
                txReceived(), txDelivered, txDropped(), txDropBadHeader, txDropTooBig, txDropBackend,
                rxOffered(), rxDelivered, rxDropped(), rxDropTooBig, rxDropBadChain, rxDiscardedAtClose);
    }
}
