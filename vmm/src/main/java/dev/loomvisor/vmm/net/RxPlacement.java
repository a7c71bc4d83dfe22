package dev.loomvisor.vmm.net;

import dev.loomvisor.vmm.virtio.DescriptorChain;
import dev.loomvisor.vmm.virtio.DeviceVirtqueue;
import dev.loomvisor.vmm.virtio.RingError;
import java.nio.ByteOrder;
import org.agrona.DirectBuffer;
import org.agrona.concurrent.UnsafeBuffer;

/**
 * Places received frames, each behind a virtio_net_hdr, into the guest's buffers of one virtio-net receive
 * queue: the one placement every data path uses (vhost-net's RX handler, and the tests' loopback cable).
 * Without MRG_RXBUF a frame takes one chain and num_buffers is 1; with it a frame fills as many chains as it
 * needs, every one but the last to its end, num_buffers counting them in the first chain's header (virtio 1.2
 * §5.1.6.3.2, §5.1.6.4).
 *
 * <p>Used elements are staged, not published: the caller makes a batch of frames visible with one used.idx
 * store ({@link DeviceVirtqueue#publishUsed()}), so all buffers of a frame always appear together. Allocation-free
 * per frame; arrays grow only when the queue is configured larger. One instance per queue, used by the one
 * thread serving it.
 */
public final class RxPlacement {

    private DeviceVirtqueue queue;
    private final UnsafeBuffer header = new UnsafeBuffer(new byte[VirtioNetHeader.SIZE]);
    private DescriptorChain first;
    private DescriptorChain chain;
    private int[] heads = new int[0];
    private int[] lens = new int[0];
    private int hdrLen = VirtioNetHeader.SIZE;
    private boolean mergeable;
    /** Chains the last NO_BUFFERS frame popped and gave back: too few for it, already seen. */
    private int heldOnFailure;
    private long delivered;
    private long framesTooLarge;
    private long badChains;
    private long noBuffers;

    public RxPlacement(DeviceVirtqueue queue) {
        this.queue = queue;
    }

    /** A placement for these negotiated features. */
    public RxPlacement(DeviceVirtqueue queue, long features) {
        this(queue);
        setFeatures(features);
    }

    /** A placement with the VERSION_1 header, with or without MRG_RXBUF. */
    public RxPlacement(DeviceVirtqueue queue, boolean mergeable) {
        this(queue, NetFeatures.VERSION_1 | (mergeable ? NetFeatures.MRG_RXBUF : 0));
    }

    /** Takes the negotiated features: the header's length and MRG_RXBUF. */
    public void setFeatures(long features) {
        hdrLen = VirtioNetHeader.length(features);
        mergeable = NetFeatures.has(features, NetFeatures.MRG_RXBUF);
    }

    public DeviceVirtqueue queue() {
        return queue;
    }

    /** Places into another queue from now on (a ring restarted on the other layout). */
    public void setQueue(DeviceVirtqueue queue) {
        this.queue = queue;
    }

    /** The header length in use (12, or 10 for a legacy driver). */
    public int headerLength() {
        return hdrLen;
    }

    /**
     * Writes {@code frame[off, off + len)} behind a header into the queue and stages the used elements.
     *
     * @return {@link RxResult#DELIVERED}; {@link RxResult#NO_BUFFERS} (nothing consumed: the frame waits for a
     *         refill, see {@link #enableNotifications()}); {@link RxResult#FRAME_TOO_LARGE} or
     *         {@link RxResult#BAD_CHAIN} (the frame is dropped, counted); {@link RxResult#RING_BROKEN}
     */
    public RxResult place(DirectBuffer frame, int off, int len) {
        if (queue.isBroken()) {
            return RxResult.RING_BROKEN;
        }
        if (heads.length < queue.size()) {
            grow();
        }
        DescriptorChain c = chain;
        if (!queue.nextAvail(c)) {
            return noChain(0);
        }
        int h = hdrLen;
        if (c.segmentCount() == 1 && c.readableCount() == 0 && len >= 0
                && (c.segmentLength(0) & 0xffffffffL) >= (long) h + len) {
            // The usual receive buffer: one device-writable descriptor that holds header and frame (what DPDK's
            // and Linux's drivers post). Two stores for the header, one copy for the frame; num_buffers is 1
            // with or without MRG_RXBUF (virtio 1.2 §5.1.6.3.2), every other field 0 (no offloads).
            UnsafeBuffer b = c.segmentBuffer(0);
            int o = c.segmentOffset(0);
            b.putLong(o, 0L);
            if (h == VirtioNetHeader.SIZE) {
                b.putInt(o + VirtioNetHeader.CSUM_OFFSET, 1 << 16, ByteOrder.LITTLE_ENDIAN);
            } else {
                b.putShort(o + VirtioNetHeader.CSUM_OFFSET, (short) 0);
            }
            b.putBytes(o + h, frame, off, len);
            queue.stageUsed(c.head(), h + len);
            delivered++;
            return RxResult.DELIVERED;
        }
        return placeChains(c, frame, off, len);
    }

    private void grow() {
        int size = queue.size();
        heads = new int[size];
        lens = new int[size];
        first = queue.newChain();
        chain = queue.newChain();
    }

    /** No chain to pop after {@code count} popped for this frame: they go back, unused. */
    private RxResult noChain(int count) {
        queue.discard(count);
        heldOnFailure = count;
        if (queue.isBroken()) {
            return RxResult.RING_BROKEN;
        }
        noBuffers++;
        return RxResult.NO_BUFFERS;
    }

    /** The general placement, from the frame's first popped chain {@code c}: any segments, any buffer count. */
    private RxResult placeChains(DescriptorChain c, DirectBuffer frame, int off, int len) {
        int size = queue.size();
        int count = 0;
        int written = 0;
        boolean firstCopied = false;
        while (true) {
            if (count > 0 && !queue.nextAvail(c)) {
                return noChain(count);
            }
            if (c.readableCount() > 0) {
                // A device-readable part in a receive buffer (vhost's "unexpected descriptor format for RX"): the
                // device must not write there (virtio 1.2 §2.7.5.1). Drop the frame and give this frame's chains
                // back empty, so the guest can reclaim them.
                for (int i = 0; i < count; i++) {
                    queue.stageUsed(heads[i], 0);
                }
                queue.stageUsed(c.head(), 0);
                badChains++;
                return RxResult.BAD_CHAIN;
            }
            if (c.writableLength() < hdrLen) {
                // With MRG_RXBUF every buffer must hold a header (virtio 1.2 §5.1.6.3.1); without it the one
                // buffer must hold at least the header. Left at the head of the ring such a buffer would take
                // no frame ever again: the driver broke the queue, it needs a reset.
                queue.discard(count + 1);
                queue.fail(RingError.RX_BUFFER_TOO_SMALL);
                return RxResult.RING_BROKEN;
            }
            int from = count == 0 ? hdrLen : 0;
            int n = c.writeWritable(from, frame, off + written, len - written);
            heads[count] = c.head();
            lens[count] = from + n;
            count++;
            written += n;
            if (written == len) {
                break;
            }
            if (!mergeable || count == size) {
                // Without MRG_RXBUF the one buffer is too small; with it, the whole ring is: waiting for more
                // buffers would hold the frame (and its sender) for ever. vhost-net truncates and discards on
                // overrun: the buffers go back unused, the frame is lost and counted.
                queue.discard(count);
                framesTooLarge++;
                return RxResult.FRAME_TOO_LARGE;
            }
            if (count == 1) {
                c.copyTo(first); // the header goes into the first chain once num_buffers is known
                firstCopied = true;
            }
        }
        DescriptorChain h = firstCopied ? first : c;
        // num_buffers is 1 without MRG_RXBUF (virtio 1.2 §5.1.6.3.2); every other field 0 (no offloads).
        int numBuffers = mergeable ? count : 1;
        int w = h.readableCount(); // 0: a chain with a readable part was refused above
        if (h.segmentLength(w) >= hdrLen) {
            // The usual case, the whole header in the first buffer: two stores instead of a copy.
            UnsafeBuffer b = h.segmentBuffer(w);
            int o = h.segmentOffset(w);
            b.putLong(o, 0L);
            if (hdrLen == VirtioNetHeader.SIZE) {
                b.putInt(o + VirtioNetHeader.CSUM_OFFSET, numBuffers << 16, ByteOrder.LITTLE_ENDIAN);
            } else {
                b.putShort(o + VirtioNetHeader.CSUM_OFFSET, (short) 0);
            }
        } else {
            header.setMemory(0, VirtioNetHeader.SIZE, (byte) 0);
            if (hdrLen == VirtioNetHeader.SIZE) {
                VirtioNetHeader.put(header, 0, numBuffers);
            }
            h.writeWritable(0, header, 0, hdrLen);
        }
        for (int i = 0; i < count; i++) {
            queue.stageUsed(heads[i], lens[i]);
        }
        delivered++;
        return RxResult.DELIVERED;
    }

    /**
     * After {@link RxResult#NO_BUFFERS}: asks the driver to kick when it adds buffers and re-checks for some that
     * came meanwhile (true: place again). With MRG_RXBUF the driver may have offered buffers, too few for the
     * frame, which went back to the ring: they are popped again around the re-enable, so that the kick
     * threshold (avail_event) and the re-check are about buffers the device has not seen yet, as
     * vhost_enable_notify does with its avail_idx shadow. Else the re-check would find those same buffers for
     * ever, and the driver would never kick.
     */
    public boolean enableNotifications() {
        int held = 0;
        while (held < heldOnFailure && queue.nextAvail(chain)) {
            held++;
        }
        boolean more = queue.enableNotifications();
        queue.discard(held);
        return more;
    }

    public long delivered() {
        return delivered;
    }

    /** Frames dropped because they could not fit: one buffer without MRG_RXBUF, the whole ring with it. */
    public long framesTooLarge() {
        return framesTooLarge;
    }

    /** Frames dropped on a receive chain with a device-readable part. */
    public long badChains() {
        return badChains;
    }

    /** Times a frame found too few buffers and waited. */
    public long noBuffers() {
        return noBuffers;
    }
}
