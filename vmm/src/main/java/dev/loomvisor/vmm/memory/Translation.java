package dev.loomvisor.vmm.memory;

import org.agrona.concurrent.UnsafeBuffer;

/** A reusable result of {@link GuestMemory#translate}: where a guest range lives on the host. */
public final class Translation {
    GuestRegion region;
    int offset;
    int length;

    /** The region the range lies in. */
    public GuestRegion region() {
        return region;
    }

    /** The region's buffer; {@link #offset()} indexes it. */
    public UnsafeBuffer buffer() {
        return region.buffer();
    }

    /** Offset of the range's first byte inside the region. */
    public int offset() {
        return offset;
    }

    public int length() {
        return length;
    }
}
