package dev.loomvisor.vhost.net;

import dev.loomvisor.vhost.RingCounter;
import dev.loomvisor.vhost.VhostVirtqueue;
import dev.loomvisor.vhost.backend.FrameReceiver;
import dev.loomvisor.vhost.backend.NetBackend;
import dev.loomvisor.vmm.virtio.DescriptorChain;
import dev.loomvisor.vmm.virtio.DeviceQueue;
import java.nio.ByteOrder;
import org.agrona.DirectBuffer;
import org.agrona.concurrent.IdleStrategy;
import org.agrona.concurrent.UnsafeBuffer;

/**
 * handle_rx: takes frames from the backend and writes each, behind a virtio-net header, into the guest's
 * RX buffers: one chain per frame, or with MRG_RXBUF as many as it needs (num_buffers in the header of the
 * first, all published together). A frame waits in the backend while the guest has no buffers; a frame
 * that cannot fit in one buffer without MRG_RXBUF is dropped and the buffer given back unused, as
 * vhost_net does on overrun.
 */
public final class RxHandler extends NetHandler implements FrameReceiver {

    private final UnsafeBuffer header = new UnsafeBuffer(new byte[VirtioNet.HDR_LEN]);
    private DescriptorChain first;
    private int[] heads = new int[0];
    private int[] lens = new int[0];

    // Per-run state, touched by onFrame.
    private DeviceQueue q;
    private DescriptorChain c;
    private boolean noBuffers;
    /** Chains the guest offered when the last frame did not fit (MRG_RXBUF), given back to the ring. */
    private int heldOnFailure;
    private int staged;
    private long frames;
    private long bytes;
    private long weightBytes;
    private long dropTooBig;
    private long dropBadChain;

    public RxHandler(VhostVirtqueue vq, IdleStrategy idle) {
        super(vq, idle);
    }

    @Override
    void handle() {
        NetBackend backend = vq.backend();
        q = vq.queue();
        c = vq.chain();
        if (heads.length < q.size()) {
            heads = new int[q.size()];
            lens = new int[q.size()];
            first = q.newChain();
        }
        frames = 0;
        bytes = 0;
        weightBytes = 0;
        dropTooBig = 0;
        dropBadChain = 0;
        staged = 0;
        int packets = 0;
        q.disableNotifications();
        while (true) {
            int limit = Math.min(VirtioNet.BATCH, VirtioNet.WEIGHT_PACKETS - packets);
            noBuffers = false;
            int n = backend.receive(this, limit);
            packets += n;
            if (staged > 0) {
                signalUsed(q);
                staged = 0;
            }
            if (q.isBroken()) {
                break;
            }
            if (noBuffers) {
                // Out of guest buffers: ask for a kick when it refills, and re-check for a refill that
                // slipped in while kicks were off. With MRG_RXBUF the guest may have offered some buffers,
                // too few for the frame, which went back to the ring: pop them again around the re-enable,
                // so that both the kick threshold (avail_event) and the re-check are about buffers the
                // device has not seen yet, as vhost_enable_notify does with its avail_idx shadow. Else the
                // re-check would see those same buffers forever, and the guest would never kick.
                int held = 0;
                while (held < heldOnFailure && q.nextAvail(c)) {
                    held++;
                }
                boolean more = q.enableNotifications();
                q.discard(held);
                if (more) {
                    q.disableNotifications();
                    continue;
                }
                break;
            }
            if (n < limit) {
                // The backend ran dry. Its listener queues this handler when a frame comes; kicks stay off.
                if (busyPolls()) {
                    Busy b = busyPoll();
                    if (b == Busy.HIT) {
                        continue;
                    }
                    if (b == Busy.INTERRUPTED) {
                        vq.queueHandler();
                    }
                }
                break;
            }
            if (exceedsWeight(packets, weightBytes)) {
                break;
            }
        }
        flushInterrupts();
        var k = vq.counters();
        if (frames != 0) {
            k.addOrdered(RingCounter.FRAMES, frames);
            k.addOrdered(RingCounter.BYTES, bytes);
        }
        if ((dropTooBig | dropBadChain) != 0) {
            k.addOrdered(RingCounter.DROP_TOO_BIG, dropTooBig);
            k.addOrdered(RingCounter.DROP_BAD_RX_CHAIN, dropBadChain);
        }
        q = null;
        c = null;
    }

    @Override
    public boolean onFrame(DirectBuffer buffer, int offset, int length) {
        int count = 0;
        int written = 0;
        boolean firstCopied = false;
        while (true) {
            if (!q.nextAvail(c)) {
                if (count > 0) {
                    q.discard(count); // every popped chain goes back, unused
                }
                heldOnFailure = count;
                noBuffers = !q.isBroken();
                return false; // leave the frame in the backend
            }
            if (c.readableCount() > 0 || (count == 0 && c.writableLength() < hdrLen)) {
                // vq_err("unexpected descriptor format for RX"): give this frame's chains back empty so the
                // guest can reclaim them, and drop the frame.
                for (int i = 0; i < count; i++) {
                    q.stageUsed(heads[i], 0);
                }
                q.stageUsed(c.head(), 0);
                staged += count + 1;
                dropBadChain++;
                return true;
            }
            int from = count == 0 ? hdrLen : 0;
            int n = c.writeWritable(from, buffer, offset + written, length - written);
            heads[count] = c.head();
            lens[count] = from + n;
            count++;
            written += n;
            if (written == length) {
                break;
            }
            if (!mergeable || count == heads.length) {
                // On overrun, vhost_net truncates and discards: the buffers go back unused, the frame is lost.
                q.discard(count);
                dropTooBig++;
                weightBytes += length;
                return true;
            }
            if (count == 1) {
                c.copyTo(first); // the header goes into the first chain once num_buffers is known
                firstCopied = true;
            }
        }
        header.setMemory(0, VirtioNet.HDR_LEN, (byte) 0);
        if (hdrLen == VirtioNet.HDR_LEN) {
            header.putShort(VirtioNet.HDR_NUM_BUFFERS, (short) (mergeable ? count : 1), ByteOrder.LITTLE_ENDIAN);
        }
        (firstCopied ? first : c).writeWritable(0, header, 0, hdrLen);
        for (int i = 0; i < count; i++) {
            q.stageUsed(heads[i], lens[i]);
        }
        staged += count;
        frames++;
        bytes += length;
        weightBytes += hdrLen + length;
        return true;
    }

    @Override
    boolean workArrived() {
        NetBackend b = vq.backend();
        return b != null && b.rxPending();
    }
}
