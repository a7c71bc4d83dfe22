package dev.loomvisor.vhost.net;

import dev.loomvisor.vhost.RingCounter;
import dev.loomvisor.vhost.VhostVirtqueue;
import dev.loomvisor.vhost.backend.NetBackend;
import dev.loomvisor.vhost.sys.SegmentPool;
import dev.loomvisor.vmm.net.FrameLimits;
import dev.loomvisor.vmm.virtio.DescriptorChain;
import dev.loomvisor.vmm.virtio.DeviceVirtqueue;
import java.lang.foreign.MemorySegment;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import org.agrona.concurrent.IdleStrategy;
import org.agrona.concurrent.UnsafeBuffer;

/**
 * handle_tx (copy mode): pops the guest's TX chains, takes the virtio-net header off and hands each frame
 * to the backend, returns the chains used (length 0: the device wrote nothing), in batches of 64, until the
 * ring is empty or a weight is reached.
 *
 * <p>A frame that sits in one guest segment goes to the backend as a view of guest memory (the switch copies
 * it once into the destination queue); a frame spread over segments is gathered into a preallocated
 * buffer first.
 */
public final class TxHandler extends NetHandler {

    /** Scratch bytes of TX handlers not yet released, in this JVM (a leak figure of the churn checks). */
    private static final AtomicLong LIVE_SCRATCH_BYTES = new AtomicLong();

    /**
     * Gather buffers go back to a pool when their device is released: a direct ByteBuffer would hold its
     * 64 KiB until a GC ran its cleaner (device churn piled up hundreds of megabytes that way), and a shared
     * arena per device made every release handshake with every live thread.
     */
    private static final SegmentPool SCRATCH = new SegmentPool(FrameLimits.MAX_GSO_FRAME, 64);

    /**
     * The gather buffer, taken from the pool the first time a frame spans segments: a zeroed 64 KiB block is
     * 64 KiB of resident memory, which an idle VM (and one whose driver puts each frame in one descriptor, as
     * Linux's virtio-net does) never needs. Written and read by the worker only; released after the workers stop.
     */
    private MemorySegment scratchBlock;
    private UnsafeBuffer scratch;
    private final AtomicBoolean released = new AtomicBoolean();
    /** The bytes {@link DeviceVirtqueue#touchAhead} read, kept so that the JIT keeps the loads. */
    private int touched;

    /** Frames touched at once, one burst ahead (a power of two). */
    private static final int TOUCH_BURST = 8;

    public TxHandler(VhostVirtqueue vq, IdleStrategy idle) {
        super(vq, idle);
    }

    /**
     * Frees the gather buffer. Only after the device's release: every worker has stopped, so no run of this
     * handler is in progress or can start. Idempotent.
     */
    void release() {
        if (released.compareAndSet(false, true) && scratchBlock != null) {
            SCRATCH.give(scratchBlock);
            LIVE_SCRATCH_BYTES.addAndGet(-FrameLimits.MAX_GSO_FRAME);
        }
    }

    /** Native bytes held by TX handlers of devices not yet released. */
    public static long liveScratchBytes() {
        return LIVE_SCRATCH_BYTES.get();
    }

    @Override
    void handle() {
        NetBackend backend = vq.backend();
        DeviceVirtqueue q = vq.queue();
        DescriptorChain c = vq.chain();
        int packets = 0;
        long weightBytes = 0;
        long frames = 0;
        long bytes = 0;
        long dropBackend = 0;
        long dropHeader = 0;
        long dropTooBig = 0;
        int staged = 0;
        int touch = 0;
        // Before consuming, ask the guest not to kick: it is being served (handle_tx's vhost_disable_notify;
        // virtio 1.2 §2.7.10).
        q.disableNotifications();
        while (true) {
            if (!q.nextAvail(c)) {
                if (q.isBroken()) {
                    break; // counted by the ring's broken listener; the ring stays quiet until reset
                }
                if (staged > 0) {
                    signalUsed(q); // completions first, as vhost_tx_batch does before busy-polling
                    backend.flushTransmit();
                    staged = 0;
                }
                if (busyPolls()) {
                    Busy b = busyPoll();
                    if (b == Busy.HIT) {
                        continue;
                    }
                    if (b == Busy.INTERRUPTED) {
                        vq.queueHandler(); // let the other work run; come back without a kick
                        break;
                    }
                }
                // Re-enable kicks and re-check: a chain made available while kicks were off got no kick.
                if (q.enableNotifications()) {
                    q.disableNotifications();
                    continue;
                }
                break;
            }
            if ((packets & (TOUCH_BURST - 1)) == 0) {
                // The next burst's frames come from the driver's CPU together while this burst is handled; a
                // run's first pop touches the rest of its own burst too.
                boolean first = packets == 0;
                touch += q.touchAhead(first ? 0 : TOUCH_BURST - 1, first ? 2 * TOUCH_BURST - 1 : TOUCH_BURST, hdrLen);
            }
            long readable = c.readableLength();
            int len = 0;
            if (readable < hdrLen) {
                dropHeader++;
            } else if (readable - hdrLen > FrameLimits.MAX_GSO_FRAME) {
                dropTooBig++;
            } else {
                len = (int) (readable - hdrLen);
                if (send(backend, c, len)) {
                    frames++;
                    bytes += len;
                } else {
                    dropBackend++;
                }
            }
            q.stageUsed(c.head(), 0);
            if (++staged >= VirtioNet.BATCH) {
                signalUsed(q);
                backend.flushTransmit();
                staged = 0;
            }
            weightBytes += len;
            if (exceedsWeight(++packets, weightBytes)) {
                break;
            }
        }
        if (staged > 0) {
            signalUsed(q);
        }
        backend.flushTransmit();
        touched = touch;
        flushInterrupts();
        var k = vq.counters();
        if (frames != 0) {
            k.addOrdered(RingCounter.FRAMES, frames);
            k.addOrdered(RingCounter.BYTES, bytes);
        }
        if ((dropBackend | dropHeader | dropTooBig) != 0) {
            k.addOrdered(RingCounter.DROP_BACKEND, dropBackend);
            k.addOrdered(RingCounter.DROP_BAD_HEADER, dropHeader);
            k.addOrdered(RingCounter.DROP_TOO_BIG, dropTooBig);
        }
    }

    /** Hands the frame after the header to the backend: a view if one segment holds it, else a copy. */
    private boolean send(NetBackend backend, DescriptorChain c, int len) {
        int skip = hdrLen;
        for (int i = 0, n = c.readableCount(); i < n; i++) {
            int segLen = c.segmentLength(i);
            if (skip < segLen || (skip == segLen && len == 0)) {
                if (segLen - skip >= len) {
                    return backend.transmit(c.segmentBuffer(i), c.segmentOffset(i) + skip, len);
                }
                break;
            }
            skip -= segLen;
        }
        UnsafeBuffer gather = scratch;
        if (gather == null) {
            gather = takeScratch();
        }
        int got = c.readReadable(hdrLen, gather, 0, len);
        return backend.transmit(gather, 0, got);
    }

    private UnsafeBuffer takeScratch() {
        scratchBlock = SCRATCH.take();
        LIVE_SCRATCH_BYTES.addAndGet(FrameLimits.MAX_GSO_FRAME);
        scratch = new UnsafeBuffer(scratchBlock.address(), FrameLimits.MAX_GSO_FRAME);
        return scratch;
    }

    @Override
    boolean workArrived() {
        return vq.queue().hasAvail();
    }
}
