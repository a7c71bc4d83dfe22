package dev.loomvisor.vmm.driver;

import dev.loomvisor.vmm.memory.GuestMemory;
import dev.loomvisor.vmm.memory.Translation;
import dev.loomvisor.vmm.net.DeviceError;
import dev.loomvisor.vmm.net.MmioTransport;
import dev.loomvisor.vmm.net.NetControl;
import dev.loomvisor.vmm.virtio.DriverVirtqueue;
import dev.loomvisor.vmm.virtio.UsedElement;
import org.agrona.concurrent.UnsafeBuffer;

/**
 * The guest side of the virtio-net control queue, as virtnet_send_command does it: the command (class,
 * command, data) in one device-readable buffer, the ack in one device-writable byte, a kick, then a bounded
 * spin for the used entry (Linux's control queue has no callback; it spins). One command at a time, from the
 * thread that brings the device up.
 */
public final class ControlQueueDriver {

    /** Longest command data this driver sends. */
    public static final int MAX_DATA = 64;
    /** How long to spin for the device's answer: the model answers before the kick returns. */
    private static final long ANSWER_SPINS = 1 << 20;

    private final DriverVirtqueue queue;
    private final MmioTransport mmio;
    private final int index;
    private final long commandAddr;
    private final long ackAddr;
    private final UnsafeBuffer command;
    private final UnsafeBuffer ack;
    private final UsedElement used = new UsedElement();

    ControlQueueDriver(GuestMemory memory, GuestAllocator allocator, MmioTransport mmio, DriverVirtqueue queue,
                       int index) {
        this.queue = queue;
        this.mmio = mmio;
        this.index = index;
        this.commandAddr = allocator.allocate(NetControl.HEADER_SIZE + MAX_DATA, 64);
        this.ackAddr = allocator.allocate(1, 64);
        this.command = view(memory, commandAddr, NetControl.HEADER_SIZE + MAX_DATA);
        this.ack = view(memory, ackAddr, 1);
        queue.disableInterrupts();
    }

    private static UnsafeBuffer view(GuestMemory memory, long gpa, int len) {
        Translation t = new Translation();
        memory.translate(gpa, len, t);
        return new UnsafeBuffer(t.buffer(), t.offset(), len);
    }

    /** The queue's index (2 max_virtqueue_pairs). */
    public int index() {
        return index;
    }

    /** VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET {@code pairs} (virtio 1.2 §5.1.6.5.5). */
    public DeviceError setQueuePairs(int pairs) {
        byte[] data = {(byte) pairs, (byte) (pairs >>> 8)};
        return send(NetControl.CLASS_MQ, NetControl.MQ_VQ_PAIRS_SET, data, data.length, true);
    }

    /**
     * Sends class {@code cls}, command {@code cmd} and the first {@code dataLength} bytes of {@code data}
     * (at most {@link #MAX_DATA}), with an ack byte if {@code withAck}.
     * {@link DeviceError#OK} if the device acked VIRTIO_NET_OK; {@link DeviceError#CONTROL_REFUSED} for
     * VIRTIO_NET_ERR (or no ack written); {@link DeviceError#CONTROL_NO_ANSWER} if the command never came
     * back used.
     */
    public DeviceError send(int cls, int cmd, byte[] data, int dataLength, boolean withAck) {
        if (dataLength < 0 || dataLength > MAX_DATA) {
            throw new IllegalArgumentException("control data of " + dataLength + " bytes");
        }
        byte[] bytes = new byte[NetControl.HEADER_SIZE + dataLength];
        bytes[0] = (byte) cls;
        bytes[1] = (byte) cmd;
        System.arraycopy(data, 0, bytes, NetControl.HEADER_SIZE, dataLength);
        return sendBytes(bytes, bytes.length, withAck);
    }

    /**
     * Sends the first {@code length} bytes of {@code readable} as the device-readable part, whatever they
     * are (a short header, odd data: what a hostile guest may send), with an ack byte if {@code withAck}.
     */
    public DeviceError sendBytes(byte[] readable, int length, boolean withAck) {
        if (length < 0 || length > NetControl.HEADER_SIZE + MAX_DATA) {
            throw new IllegalArgumentException("control command of " + length + " bytes");
        }
        command.putBytes(0, readable, 0, length);
        ack.putByte(0, (byte) 0xff); // neither OK nor ERR until the device writes it
        long[] addrs = {commandAddr, ackAddr};
        int[] lens = {length, 1};
        if (queue.add(addrs, lens, 1, withAck ? 1 : 0, 0) < 0) {
            return DeviceError.CONTROL_NO_ANSWER;
        }
        if (queue.publishAndCheckKick()) {
            mmio.write(MmioTransport.QUEUE_NOTIFY, index);
        }
        for (long spin = 0; spin < ANSWER_SPINS; spin++) {
            if (queue.reap(used)) {
                int a = used.len() >= 1 ? ack.getByte(0) & 0xff : -1;
                return a == NetControl.ACK_OK ? DeviceError.OK : DeviceError.CONTROL_REFUSED;
            }
            Thread.onSpinWait();
        }
        return DeviceError.CONTROL_NO_ANSWER;
    }
}
