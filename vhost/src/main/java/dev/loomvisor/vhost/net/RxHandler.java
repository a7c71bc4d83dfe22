package dev.loomvisor.vhost.net;

import dev.loomvisor.vhost.RingCounter;
import dev.loomvisor.vhost.VhostVirtqueue;
import dev.loomvisor.vhost.backend.FrameReceiver;
import dev.loomvisor.vhost.backend.NetBackend;
import dev.loomvisor.vmm.net.RxPlacement;
import dev.loomvisor.vmm.virtio.DeviceVirtqueue;
import org.agrona.DirectBuffer;
import org.agrona.concurrent.IdleStrategy;

/**
 * handle_rx: takes frames from the backend and hands each to vmm's {@link RxPlacement}, which writes it behind a
 * virtio-net header into the guest's RX buffers (one chain per frame, or with MRG_RXBUF as many as it needs).
 * A frame waits in the backend while the guest has no buffers; a frame that can never fit (one buffer without
 * MRG_RXBUF, the whole ring with it) is dropped and counted, as vhost_net does on overrun, so that one guest's
 * small ring never stalls the frames behind it.
 */
public final class RxHandler extends NetHandler implements FrameReceiver {

    private final RxPlacement placement;

    // Per-run state, touched by onFrame.
    private boolean noBuffers;
    private boolean staged;
    private long frames;
    private long bytes;
    /** Bytes of frames dropped as too large: with the delivered frames and their headers, the run's weight. */
    private long tooLargeBytes;
    private long dropTooBig;
    private long dropBadChain;
    /** Set while a busy-poll waits for the guest to post RX buffers rather than for backend frames. */
    private boolean waitingForBuffers;

    public RxHandler(VhostVirtqueue vq, IdleStrategy idle) {
        super(vq, idle);
        placement = new RxPlacement(vq.queue());
    }

    @Override
    void setFeatures(long features) {
        super.setFeatures(features);
        placement.setFeatures(features);
    }

    @Override
    void handle() {
        NetBackend backend = vq.backend();
        DeviceVirtqueue q = vq.queue();
        if (placement.queue() != q) {
            placement.setQueue(q); // the ring restarted on the other layout
        }
        frames = 0;
        bytes = 0;
        tooLargeBytes = 0;
        dropTooBig = 0;
        dropBadChain = 0;
        staged = false;
        int packets = 0;
        q.disableNotifications();
        while (true) {
            int limit = Math.min(VirtioNet.BATCH, VirtioNet.WEIGHT_PACKETS - packets);
            noBuffers = false;
            int n = backend.receive(this, limit);
            packets += n;
            if (staged) {
                signalUsed(q);
                staged = false;
            }
            if (q.isBroken()) {
                break;
            }
            if (noBuffers) {
                if (busyPolls()) {
                    // A generating backend waits on the guest's buffers, not on frames: poll for a refill too. A
                    // refill is a buffer the ring has not shown yet (hasNewAvail), not one popped and given back as
                    // too few for the frame (MRG_RXBUF): those would make every poll a hit, for ever.
                    waitingForBuffers = true;
                    Busy b = busyPoll();
                    waitingForBuffers = false;
                    if (b == Busy.HIT) {
                        continue;
                    }
                    if (b == Busy.INTERRUPTED) {
                        vq.queueHandler();
                        break;
                    }
                }
                // Out of guest buffers: ask for a kick when it refills, and re-check for a refill that slipped
                // in while kicks were off.
                if (placement.enableNotifications()) {
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
            if (exceedsWeight(packets, bytes + hdrLen * frames + tooLargeBytes)) {
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
    }

    @Override
    public boolean onFrame(DirectBuffer buffer, int offset, int length) {
        switch (placement.place(buffer, offset, length)) {
            case DELIVERED -> {
                // Two stores per frame here, the weight derived per batch: the stores of the frame's copy wait on
                // lines the driver's CPU holds, and every other store queues behind them.
                if (!staged) {
                    staged = true;
                }
                frames++;
                bytes += length;
                return true;
            }
            case FRAME_TOO_LARGE -> {
                dropTooBig++;
                tooLargeBytes += length;
                return true;
            }
            case BAD_CHAIN -> {
                staged = true;
                dropBadChain++;
                return true;
            }
            case NO_BUFFERS -> {
                noBuffers = true;
                return false; // leave the frame in the backend
            }
            default -> {
                return false; // the ring broke: the frame stays in the backend until a reset
            }
        }
    }

    @Override
    boolean workArrived() {
        if (waitingForBuffers) {
            return vq.queue().hasNewAvail();
        }
        NetBackend b = vq.backend();
        return b != null && b.rxPending();
    }
}
