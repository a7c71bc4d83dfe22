package dev.loomvisor.vmm.memory;

import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.concurrent.atomic.AtomicBoolean;
import org.agrona.concurrent.UnsafeBuffer;

/**
 * One contiguous piece of guest-physical memory: {@code [guestBase, guestBase + size)} backed by a host
 * {@link MemorySegment}. The ring core reads and writes it only through {@link #buffer()}, an Agrona
 * {@link UnsafeBuffer} whose capacity is exactly the region, so even a translation bug is caught by
 * Agrona's bounds check instead of touching host memory next to the region.
 *
 * <p>Agrona buffers index with an {@code int}, so a region is at most {@link #MAX_SIZE} bytes; a larger
 * guest is several regions, as KVM memory slots are.
 */
public final class GuestRegion {

    /** Largest region: Agrona buffers are int-indexed. */
    public static final long MAX_SIZE = Integer.MAX_VALUE;

    /** How a region's host memory is provided. */
    public enum Backing {
        /** Private off-heap memory of this JVM. */
        ANONYMOUS,
        /** A shared mapping of a file another process can map too. */
        FILE,
        /** A shared mapping of a memfd (anonymous file), shareable by passing its fd, as vhost-user does. */
        MEMFD
    }

    private final long guestBase;
    private final long size;
    private final MemorySegment segment;
    private final UnsafeBuffer buffer;
    private final Backing backing;
    private final Path path;
    private final int fd;
    /** Zero pages nobody has written yet (a fresh mapping), until {@link #claimZeroFilled()} hands them out. */
    private final AtomicBoolean zeroFilled;

    GuestRegion(long guestBase, MemorySegment segment, Backing backing, Path path, int fd) {
        this(guestBase, segment, backing, path, fd, false);
    }

    GuestRegion(long guestBase, MemorySegment segment, Backing backing, Path path, int fd, boolean zeroFilled) {
        long size = segment.byteSize();
        if (size <= 0 || size > MAX_SIZE) {
            throw new IllegalArgumentException("region size " + size + " outside (0, " + MAX_SIZE + "]");
        }
        if (guestBase < 0 || guestBase > Long.MAX_VALUE - size) {
            // Guest-physical addresses are kept in the positive long range so end = base + size never wraps.
            throw new IllegalArgumentException("region base " + Long.toUnsignedString(guestBase)
                    + " + size " + size + " leaves the guest-physical address space");
        }
        this.guestBase = guestBase;
        this.size = size;
        this.segment = segment;
        this.buffer = new UnsafeBuffer(segment.address(), (int) size);
        this.backing = backing;
        this.path = path;
        this.fd = fd;
        this.zeroFilled = new AtomicBoolean(zeroFilled);
    }

    /**
     * True once, for the first caller, if the region is a fresh mapping nothing has written yet: its pages are
     * the kernel's zero pages, and a guest allocator handing them out need not zero (and so touch) them.
     * False for every later caller and for memory that came with contents (a file, a wrapped segment).
     */
    public boolean claimZeroFilled() {
        return zeroFilled.getAndSet(false);
    }

    public long guestBase() {
        return guestBase;
    }

    public long size() {
        return size;
    }

    /** First guest-physical address after the region. */
    public long guestEnd() {
        return guestBase + size;
    }

    /** The host memory; for sharing (vhost-user) and for tests, not for the data path. */
    public MemorySegment segment() {
        return segment;
    }

    /** The region as an Agrona buffer: index 0 is {@link #guestBase()}. */
    public UnsafeBuffer buffer() {
        return buffer;
    }

    public Backing backing() {
        return backing;
    }

    /** The backing file for {@link Backing#FILE}, the /proc path of the memfd for {@link Backing#MEMFD}, else null. */
    public Path path() {
        return path;
    }

    /** The memfd's descriptor for {@link Backing#MEMFD}, else -1. */
    public int fd() {
        return fd;
    }

    /** True if {@code [gpa, gpa + len)} lies wholly inside this region; len >= 0, no overflow assumed checked. */
    boolean contains(long gpa, long len) {
        // gpa - guestBase cannot overflow: both are non-negative here.
        return gpa >= guestBase && gpa - guestBase <= size - len;
    }

    @Override
    public String toString() {
        return "GuestRegion[0x" + Long.toHexString(guestBase) + "+0x" + Long.toHexString(size) + " " + backing + "]";
    }
}
