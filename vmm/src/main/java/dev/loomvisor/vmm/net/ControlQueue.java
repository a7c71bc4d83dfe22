package dev.loomvisor.vmm.net;

import dev.loomvisor.vmm.virtio.DescriptorChain;
import dev.loomvisor.vmm.virtio.DeviceVirtqueue;
import java.util.concurrent.atomic.AtomicLongArray;
import org.agrona.concurrent.UnsafeBuffer;

/**
 * The device side of a virtio-net control virtqueue (virtio 1.2 §5.1.6.5): the VMM itself serves it, as QEMU
 * does (vhost never sees the control queue). Each available command is parsed into a {@link ControlError},
 * answered with VIRTIO_NET_OK or VIRTIO_NET_ERR in its ack byte and returned used. A hostile command (unknown
 * class or command, short or odd data, a pair count out of range, no ack byte) is answered ERR and counted;
 * it never changes the device. A chain that breaks a ring rule breaks the queue as any queue's would.
 */
public final class ControlQueue {

    /** What a command asks of the device; called with the device's control lock held. */
    public interface Commands {
        /** Whether VIRTIO_NET_F_MQ was negotiated. */
        boolean mqNegotiated();

        /** max_virtqueue_pairs of the config space. */
        int maxPairs();

        /** Applies VQ_PAIRS_SET {@code pairs}, already checked to be in 1..maxPairs. */
        void setQueuePairs(int pairs);
    }

    private static final ControlError[] ERRORS = ControlError.values();

    private final UnsafeBuffer command = new UnsafeBuffer(new byte[NetControl.VQ_PAIRS_SET_SIZE]);
    private final UnsafeBuffer ack = new UnsafeBuffer(new byte[1]);
    private final AtomicLongArray counts = new AtomicLongArray(ERRORS.length);
    private DescriptorChain chain;

    /** Commands that ended with {@code e} ({@link ControlError#OK}: answered OK). */
    public long count(ControlError e) {
        return counts.get(e.ordinal());
    }

    /** Commands answered VIRTIO_NET_ERR or left unanswered. */
    public long refusedCount() {
        long n = 0;
        for (int i = 1; i < ERRORS.length; i++) {
            n += counts.get(i);
        }
        return n;
    }

    /**
     * Serves the available commands, at most a queue's size per call (a guest that keeps adding commands
     * from another vCPU cannot hold the device here; what is left waits for its next kick, as vhost's
     * weights leave work for the next run); returns how many were returned used. Stops at a broken queue
     * (the device's broken listener has set NEEDS_RESET).
     */
    public int process(DeviceVirtqueue queue, Commands commands) {
        if (chain == null || chain.capacity() < 2 * queue.size()) {
            chain = queue.newChain();
        }
        int n = 0;
        int budget = queue.size();
        do {
            while (n < budget && queue.nextAvail(chain)) {
                ControlError e = execute(chain, commands);
                counts.incrementAndGet(e.ordinal());
                int written = 0;
                if (e != ControlError.NO_ACK_BUFFER) {
                    ack.putByte(0, (byte) (e == ControlError.OK ? NetControl.ACK_OK : NetControl.ACK_ERR));
                    written = chain.writeWritable(0, ack, 0, 1);
                }
                if (!queue.addUsed(chain.head(), written)) {
                    return n;
                }
                n++;
            }
            // Ask for the next kick (with EVENT_IDX: avail_event), and drain what came meanwhile.
        } while (n < budget && queue.enableNotifications());
        return n;
    }

    private ControlError execute(DescriptorChain c, Commands commands) {
        if (c.writableLength() < 1) {
            return ControlError.NO_ACK_BUFFER;
        }
        long readable = c.readableLength();
        if (readable < NetControl.HEADER_SIZE) {
            return ControlError.SHORT_HEADER;
        }
        int got = c.readReadable(0, command, 0, (int) Math.min(readable, NetControl.VQ_PAIRS_SET_SIZE));
        int cls = command.getByte(0) & 0xff;
        int cmd = command.getByte(1) & 0xff;
        if (cls != NetControl.CLASS_MQ) {
            return ControlError.UNKNOWN_CLASS;
        }
        if (cmd != NetControl.MQ_VQ_PAIRS_SET) {
            return ControlError.UNKNOWN_COMMAND;
        }
        if (!commands.mqNegotiated()) {
            return ControlError.MQ_NOT_NEGOTIATED;
        }
        if (readable != NetControl.VQ_PAIRS_SET_SIZE || got != NetControl.VQ_PAIRS_SET_SIZE) {
            return ControlError.BAD_DATA_LENGTH;
        }
        int pairs = command.getShort(NetControl.HEADER_SIZE, java.nio.ByteOrder.LITTLE_ENDIAN) & 0xffff;
        if (pairs < NetControl.VQ_PAIRS_MIN || pairs > commands.maxPairs()) {
            return ControlError.PAIRS_OUT_OF_RANGE;
        }
        commands.setQueuePairs(pairs);
        return ControlError.OK;
    }
}
