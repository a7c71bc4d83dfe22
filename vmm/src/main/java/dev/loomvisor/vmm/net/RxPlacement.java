package dev.loomvisor.vmm.net;

import dev.loomvisor.vmm.virtio.DescriptorChain;
import dev.loomvisor.vmm.virtio.DeviceQueue;
import org.agrona.DirectBuffer;
import org.agrona.concurrent.UnsafeBuffer;

/**
 * Places received frames into a virtio-net RX queue (reference/virtio.md line 57-59). Without MRG_RXBUF a
 * frame takes exactly one chain and num_buffers is 1. With it a frame spreads over as many chains as it
 * needs, every one but the last filled, num_buffers counting them in the first chain's header, and all of
 * them published by one used.idx store. Allocation-free: chains and used-element arrays are preallocated
 * for the queue size.
 *
 * <p>One instance per RX queue, used by the one thread serving that queue.
 */
public final class RxPlacement {

    private final DeviceQueue queue;
    private final boolean mergeable;
    private final DescriptorChain first;
    private final DescriptorChain chain;
    private final int[] heads;
    private final int[] lens;
    private final UnsafeBuffer header = new UnsafeBuffer(new byte[VirtioNetHeader.SIZE]);
    private long framesTooLarge;
    private long noBuffers;
    private long delivered;

    public RxPlacement(DeviceQueue queue, boolean mergeable) {
        this.queue = queue;
        this.mergeable = mergeable;
        this.first = queue.newChain();
        this.chain = queue.newChain();
        this.heads = new int[Math.max(queue.size(), 1)];
        this.lens = new int[heads.length];
    }

    public DeviceQueue queue() {
        return queue;
    }

    /** Writes {@code frame[off, off + len)} with a virtio_net_hdr into the queue. */
    public RxResult deliver(DirectBuffer frame, int off, int len) {
        if (queue.isBroken()) {
            return RxResult.RING_BROKEN;
        }
        return mergeable ? deliverMergeable(frame, off, len) : deliverOne(frame, off, len);
    }

    private RxResult deliverOne(DirectBuffer frame, int off, int len) {
        if (!queue.nextAvail(first)) {
            return none();
        }
        if (first.writableLength() < VirtioNetHeader.SIZE + (long) len) {
            // An error for this frame only: drop it and give the buffer back for the next one, as vhost-net
            // discards a too-long packet when the guest did not negotiate mergeable buffers.
            queue.discard(1);
            framesTooLarge++;
            return RxResult.FRAME_TOO_LARGE;
        }
        VirtioNetHeader.put(header, 0, 1);
        first.writeWritable(0, header, 0, VirtioNetHeader.SIZE);
        int n = first.writeWritable(VirtioNetHeader.SIZE, frame, off, len);
        queue.addUsed(first.head(), VirtioNetHeader.SIZE + n);
        delivered++;
        return RxResult.DELIVERED;
    }

    private RxResult deliverMergeable(DirectBuffer frame, int off, int len) {
        int count = 0;
        int written = 0;
        long room = 0;
        // Pop chains until header + frame fit, filling each as it comes (its chain object is reused by the
        // next pop). If the ring runs out first the pops are undone: the bytes already copied sit in buffers
        // the driver has not been given back, and the next frame overwrites them.
        while (room < VirtioNetHeader.SIZE + (long) len) {
            DescriptorChain c = count == 0 ? first : chain;
            if (count == heads.length || !queue.nextAvail(c)) {
                queue.discard(count);
                return count == 0 && queue.isBroken() ? RxResult.RING_BROKEN : none();
            }
            if (count == 0 && c.writableLength() < VirtioNetHeader.SIZE) {
                // The header must fit in the first buffer; the spec's minimum buffer size guarantees it.
                queue.discard(1);
                framesTooLarge++;
                return RxResult.FRAME_TOO_LARGE;
            }
            heads[count] = c.head();
            lens[count] = (int) Math.min(c.writableLength(), Integer.MAX_VALUE);
            room += lens[count];
            count++;
            if (count > 1) {
                // Write this buffer now: its chain object is reused by the next pop.
                int n = c.writeWritable(0, frame, off + written, Math.min(lens[count - 1], len - written));
                lens[count - 1] = n;
                written += n;
            } else {
                int n = c.writeWritable(VirtioNetHeader.SIZE, frame, off,
                        (int) Math.min(c.writableLength() - VirtioNetHeader.SIZE, len));
                lens[0] = VirtioNetHeader.SIZE + n;
                written += n;
            }
        }
        VirtioNetHeader.put(header, 0, count);
        first.writeWritable(0, header, 0, VirtioNetHeader.SIZE);
        // All buffers of the frame become visible together (line 59).
        queue.addUsedN(heads, lens, count);
        delivered++;
        return RxResult.DELIVERED;
    }

    private RxResult none() {
        if (queue.isBroken()) {
            return RxResult.RING_BROKEN;
        }
        noBuffers++;
        return RxResult.NO_BUFFERS;
    }

    public long delivered() {
        return delivered;
    }

    public long framesTooLarge() {
        return framesTooLarge;
    }

    public long noBuffers() {
        return noBuffers;
    }
}
