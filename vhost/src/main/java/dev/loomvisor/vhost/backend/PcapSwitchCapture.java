package dev.loomvisor.vhost.backend;

/**
 * The capture of this process's in-process switches ({@code --pcap} on the measuring commands): while one
 * is set, every switch port wired to a guest is wrapped in a {@link PcapBackend} writing to it, so the
 * file holds the frames of every VM, both directions. With none set, ports are wired bare.
 */
public final class PcapSwitchCapture {

    private static volatile PcapWriter writer;

    private PcapSwitchCapture() {
    }

    /** Captures the ports wired from now on into {@code w} (null: none). */
    public static void set(PcapWriter w) {
        writer = w;
    }

    /** {@code port} as a guest's backend: wrapped if a capture is set, else itself. */
    public static NetBackend wrap(NetBackend port) {
        PcapWriter w = writer;
        return w == null ? port : new PcapBackend(port, w);
    }
}
