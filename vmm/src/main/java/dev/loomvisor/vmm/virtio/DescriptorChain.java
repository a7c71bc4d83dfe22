package dev.loomvisor.vmm.virtio;

import dev.loomvisor.vmm.memory.GuestMemory;
import java.util.Arrays;
import org.agrona.DirectBuffer;
import org.agrona.MutableDirectBuffer;
import org.agrona.concurrent.UnsafeBuffer;

/**
 * One popped descriptor chain, reused from pop to pop: its head index and its segments, the device-readable
 * ones first, then the device-writable ones (the order {@link DeviceQueue#nextAvail} enforces). Each segment
 * is a validated view into guest memory: a region buffer, an offset that lies inside it and a length that
 * ends inside it.
 *
 * <p>{@link DeviceQueue#newChain()} sizes a chain for the usual worst case (queue size direct descriptors,
 * then an indirect table of at most queue size entries); a larger indirect table (up to
 * {@link #MAX_INDIRECT_ENTRIES}) or a queue reconfigured larger grows it once, on the pop that first needs
 * it. Steady-state popping never allocates. The readable and writable parts can be treated as byte streams: {@link #readReadable}
 * and {@link #writeWritable} copy across segment boundaries.
 */
public final class DescriptorChain {

    /**
     * The most entries an indirect table may hold when that is more than the queue size: QEMU's
     * VIRTQUEUE_MAX_SIZE, the most segments its virtqueue_pop maps for one chain. A Linux guest on a small queue
     * builds tables longer than the queue (virtio_ring.c sizes them by the scatterlist, not the ring), which the
     * spec's queue-size rule would refuse; Linux vhost accepts up to 65,536 entries (get_indirect) but maps at
     * most UIO_MAXIOV, 1,024, segments per chain, so both real backends stop a chain at 1,024.
     */
    public static final int MAX_INDIRECT_ENTRIES = 1024;

    /** Entries an indirect table on a queue of {@code queueSize} may hold: the larger of the two bounds. */
    public static int indirectLimit(int queueSize) {
        return Math.max(queueSize, MAX_INDIRECT_ENTRIES);
    }

    /** Region index of each segment: ints, so a pop stores no references (no GC write barriers). */
    private int[] regions;
    private int[] offsets;
    private int[] lengths;
    private GuestMemory memory;
    private int head = -1;
    private int count;
    private int readableCount;
    private long readableLength;
    private long writableLength;

    public DescriptorChain(int capacity) {
        capacity = Math.max(capacity, 1); // room for the one-descriptor chain, which pops without a capacity check
        regions = new int[capacity];
        offsets = new int[capacity];
        lengths = new int[capacity];
    }

    public int capacity() {
        return regions.length;
    }

    /**
     * Grows the segment arrays to hold {@code capacity} segments, keeping the ones added so far (allocates only
     * when they are smaller).
     */
    void ensureCapacity(int capacity) {
        if (regions.length < capacity) {
            regions = Arrays.copyOf(regions, capacity);
            offsets = Arrays.copyOf(offsets, capacity);
            lengths = Arrays.copyOf(lengths, capacity);
        }
    }

    /** The head descriptor index: the id to give back in {@link DeviceQueue#addUsed(int, int)}. */
    public int head() {
        return head;
    }

    public int segmentCount() {
        return count;
    }

    public int readableCount() {
        return readableCount;
    }

    public int writableCount() {
        return count - readableCount;
    }

    /** Total device-readable bytes (below 2^32, enforced at pop). */
    public long readableLength() {
        return readableLength;
    }

    /** Total device-writable bytes (below 2^32, enforced at pop). */
    public long writableLength() {
        return writableLength;
    }

    /** Segment {@code i}'s region buffer; {@link #segmentOffset(int)} indexes it. */
    public UnsafeBuffer segmentBuffer(int i) {
        return memory.region(regions[i]).buffer();
    }

    public int segmentOffset(int i) {
        return offsets[i];
    }

    public int segmentLength(int i) {
        return lengths[i];
    }

    /** Segment {@code i}'s guest-physical address. */
    public long segmentAddress(int i) {
        return memory.region(regions[i]).guestBase() + offsets[i];
    }

    /** Readable segments come first: segment {@code i} is device-writable iff {@code i >= readableCount()}. */
    public boolean isWritable(int i) {
        return i >= readableCount;
    }

    void reset(int head, GuestMemory memory) {
        if (this.memory != memory) {
            this.memory = memory;
        }
        this.head = head;
        count = 0;
        readableCount = 0;
        readableLength = 0;
        writableLength = 0;
    }

    /**
     * The whole chain is one direct descriptor: {@link #reset} and one {@link #add}, storing only what differs
     * from the last pop. A stream of receive buffers differs in head and offset only; every store left out keeps a
     * store-buffer entry free for the frame copies, whose stores wait on lines the driver's CPU holds.
     */
    void single(int head, GuestMemory memory, int region, int offset, int length, boolean writable) {
        if (this.memory != memory) {
            this.memory = memory;
        }
        this.head = head;
        offsets[0] = offset;
        if (count != 1) {
            count = 1;
        }
        if (regions[0] != region) {
            regions[0] = region;
        }
        if (lengths[0] != length) {
            lengths[0] = length;
        }
        long l = length & 0xffffffffL;
        int readable = writable ? 0 : 1;
        if (readableCount != readable) {
            readableCount = readable;
        }
        long w = writable ? l : 0;
        long r = writable ? 0 : l;
        if (writableLength != w) {
            writableLength = w;
        }
        if (readableLength != r) {
            readableLength = r;
        }
    }

    /** A packed chain learns its buffer id from its last descriptor (virtio 1.2 §2.8.6), after the walk. */
    void setHead(int head) {
        this.head = head;
    }

    void add(int region, int offset, int length, boolean writable) {
        int i = count++;
        regions[i] = region;
        offsets[i] = offset;
        lengths[i] = length;
        if (writable) {
            writableLength += length & 0xffffffffL;
        } else {
            readableCount++;
            readableLength += length & 0xffffffffL;
        }
    }

    /**
     * Copies device-readable bytes, starting {@code from} bytes into the readable part (12 skips a
     * virtio_net_hdr), into {@code dst} at {@code dstOffset}: at most {@code length} bytes, fewer if the
     * readable part ends first. Returns the number copied.
     */
    public int readReadable(int from, MutableDirectBuffer dst, int dstOffset, int length) {
        if (readableCount == 1 && from >= 0 && from <= lengths[0]) {
            // One readable segment (the usual TX chain): one copy, no loop.
            int n = Math.min(lengths[0] - from, length);
            memory.region(regions[0]).buffer().getBytes(offsets[0] + from, dst, dstOffset, n);
            return n;
        }
        int copied = 0;
        int skip = from;
        for (int i = 0; i < readableCount && copied < length; i++) {
            int segLen = lengths[i];
            if (skip >= segLen) {
                skip -= segLen;
                continue;
            }
            int n = Math.min(segLen - skip, length - copied);
            memory.region(regions[i]).buffer().getBytes(offsets[i] + skip, dst, dstOffset + copied, n);
            copied += n;
            skip = 0;
        }
        return copied;
    }

    /**
     * Copies {@code length} bytes of {@code src} at {@code srcOffset} into the device-writable part,
     * starting {@code from} bytes into it (12 leaves room for a virtio_net_hdr); fewer if the writable part
     * ends first. Returns the number written.
     */
    public int writeWritable(int from, DirectBuffer src, int srcOffset, int length) {
        int written = 0;
        int skip = from;
        for (int i = readableCount; i < count && written < length; i++) {
            int segLen = lengths[i];
            if (skip >= segLen) {
                skip -= segLen;
                continue;
            }
            int n = Math.min(segLen - skip, length - written);
            memory.region(regions[i]).buffer().putBytes(offsets[i] + skip, src, srcOffset + written, n);
            written += n;
            skip = 0;
        }
        return written;
    }

    /** Zeroes {@code length} bytes of the writable part from {@code from}; returns the number zeroed. */
    public int zeroWritable(int from, int length) {
        int done = 0;
        int skip = from;
        for (int i = readableCount; i < count && done < length; i++) {
            int segLen = lengths[i];
            if (skip >= segLen) {
                skip -= segLen;
                continue;
            }
            int n = Math.min(segLen - skip, length - done);
            memory.region(regions[i]).buffer().setMemory(offsets[i] + skip, n, (byte) 0);
            done += n;
            skip = 0;
        }
        return done;
    }

    /** Copies this chain's state into {@code other} (capacity permitting), e.g. to keep the first RX chain. */
    public void copyTo(DescriptorChain other) {
        other.reset(head, memory);
        other.ensureCapacity(count);
        for (int i = 0; i < count; i++) {
            other.add(regions[i], offsets[i], lengths[i], i >= readableCount);
        }
    }
}
