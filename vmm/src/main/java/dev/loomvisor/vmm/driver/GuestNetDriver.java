package dev.loomvisor.vmm.driver;

import static dev.loomvisor.vmm.net.DeviceStatus.*;
import static dev.loomvisor.vmm.net.MmioTransport.*;

import dev.loomvisor.vmm.memory.GuestMemory;
import dev.loomvisor.vmm.net.DeviceError;
import dev.loomvisor.vmm.net.MmioTransport;
import dev.loomvisor.vmm.net.NetConfigSpace;
import dev.loomvisor.vmm.net.NetFeatures;
import dev.loomvisor.vmm.net.VirtioNetDevice;
import dev.loomvisor.vmm.net.VirtioNetHeader;
import dev.loomvisor.vmm.virtio.DriverQueue;
import dev.loomvisor.vmm.virtio.DriverVirtqueue;
import dev.loomvisor.vmm.virtio.PackedDriverQueue;
import dev.loomvisor.vmm.virtio.PackedRing;
import dev.loomvisor.vmm.virtio.SplitRing;

/**
 * The guest's virtio-net driver, emulated: brings the device up through the mmio registers the way
 * virtio_mmio.c and virtio_net.c do (reset, ACKNOWLEDGE, DRIVER, features, FEATURES_OK and its re-read,
 * queues, DRIVER_OK), then hands each queue pair to a {@link QueuePairDriver} that a vCPU runs.
 *
 * <p>Multiqueue (virtio 1.2 §5.1.6.5.5), as virtnet_probe does it: MQ is accepted only together with
 * CTRL_VQ (§5.1.3.1); the driver sets up {@code min(maxPairs, max_virtqueue_pairs)} pairs and the control
 * queue (index 2 max_virtqueue_pairs), sets DRIVER_OK, then enables its pairs with VQ_PAIRS_SET. Each pair
 * is meant for its own vCPU, as Linux gives each queue pair a CPU (XPS and the IRQ affinity hint); the
 * driver does no steering of its own: a vCPU transmits on its pair and reaps its pair.
 */
public final class GuestNetDriver {

    /** One command at a time goes through the control queue: a small ring is enough (QEMU's is 64). */
    private static final int CONTROL_QUEUE_SIZE = 64;

    /**
     * @param queueSize      queue size to ask for (capped by QueueNumMax)
     * @param wantedFeatures features to accept if offered (VERSION_1 is always asked for)
     * @param maxPairs       queue pairs to use at most (with MQ)
     * @param rxBufferSize   bytes per RX buffer; without MRG_RXBUF (and GSO) one must hold a whole frame,
     *                       {@link VirtioNetHeader#MIN_RX_BUFFER} (virtio 1.2 §5.1.6.3.1), a smaller one
     *                       makes the device drop every longer frame
     * @param rxBuffers      RX buffers each pair keeps posted (0: one per descriptor)
     * @param txBuffers      TX buffers each pair keeps in flight (0: one per descriptor)
     */
    public record Options(int queueSize, long wantedFeatures, int maxPairs, int rxBufferSize, int rxBuffers,
                          int txBuffers) {
        public Options {
            if (rxBufferSize < VirtioNetHeader.SIZE + FrameFormat.MIN_TEST_SIZE || rxBufferSize > 65536) {
                throw new IllegalArgumentException("rx buffer size " + rxBufferSize);
            }
            if (rxBuffers < 0 || txBuffers < 0) {
                throw new IllegalArgumentException("rx buffers " + rxBuffers + ", tx buffers " + txBuffers);
            }
        }

        public Options(int queueSize, long wantedFeatures, int maxPairs, int rxBufferSize) {
            this(queueSize, wantedFeatures, maxPairs, rxBufferSize, 0, 0);
        }

        public Options(int queueSize, long wantedFeatures, int maxPairs) {
            this(queueSize, wantedFeatures, maxPairs, VirtioNetHeader.MIN_RX_BUFFER);
        }

        public static Options defaults() {
            return new Options(256, NetFeatures.VERSION_1 | NetFeatures.MAC | NetFeatures.STATUS
                    | NetFeatures.MRG_RXBUF | NetFeatures.EVENT_IDX | NetFeatures.CTRL_VQ | NetFeatures.MQ,
                    Integer.MAX_VALUE);
        }

        public Options withQueueSize(int size) {
            return new Options(size, wantedFeatures, maxPairs, rxBufferSize, rxBuffers, txBuffers);
        }

        /** Asks for {@code feature} (a {@link NetFeatures} bit) or not. */
        public Options withFeature(long feature, boolean on) {
            return new Options(queueSize, on ? wantedFeatures | feature : wantedFeatures & ~feature, maxPairs,
                    rxBufferSize, rxBuffers, txBuffers);
        }

        public Options withRxBufferSize(int bytes) {
            return new Options(queueSize, wantedFeatures, maxPairs, bytes, rxBuffers, txBuffers);
        }

        /** RX and TX buffers per pair (0: one per descriptor). */
        public Options withBuffers(int rx, int tx) {
            return new Options(queueSize, wantedFeatures, maxPairs, rxBufferSize, rx, tx);
        }
    }

    private final GuestMemory memory;
    private final MmioTransport mmio;
    private final GuestAllocator allocator;
    private final Options options;
    private long features;
    private byte[] mac = new byte[6];
    private QueuePairDriver[] pairs = new QueuePairDriver[0];
    private ControlQueueDriver control;

    public GuestNetDriver(GuestMemory memory, MmioTransport mmio, GuestAllocator allocator, Options options) {
        this.memory = memory;
        this.mmio = mmio;
        this.allocator = allocator;
        this.options = options;
    }

    /** Brings the device up; {@link DeviceError#OK} or the step the device refused (the driver then set FAILED). */
    public DeviceError probe() {
        if (mmio.read(MAGIC_VALUE) != MAGIC || mmio.read(VERSION) != MMIO_VERSION
                || mmio.read(DEVICE_ID) != NET_DEVICE_ID) {
            throw new IllegalStateException("not a virtio-mmio v2 network device");
        }
        mmio.write(STATUS, 0);
        int status = ACKNOWLEDGE;
        mmio.write(STATUS, status);
        status |= DRIVER;
        mmio.write(STATUS, status);

        mmio.write(DEVICE_FEATURES_SEL, 0);
        long offered = mmio.read(DEVICE_FEATURES) & 0xffffffffL;
        mmio.write(DEVICE_FEATURES_SEL, 1);
        offered |= (mmio.read(DEVICE_FEATURES) & 0xffffffffL) << 32;
        features = offered & (options.wantedFeatures() | NetFeatures.VERSION_1);
        if ((features & NetFeatures.CTRL_VQ) == 0) {
            features &= ~NetFeatures.MQ; // MQ requires CTRL_VQ (virtio 1.2 §5.1.3.1), as virtnet_validate drops it
        }
        mmio.write(DRIVER_FEATURES_SEL, 0);
        mmio.write(DRIVER_FEATURES, (int) features);
        mmio.write(DRIVER_FEATURES_SEL, 1);
        mmio.write(DRIVER_FEATURES, (int) (features >>> 32));
        status |= FEATURES_OK;
        mmio.write(STATUS, status);
        // The device may refuse: re-read, as the spec asks (virtio 1.2 §3.1.1, steps 5 and 6).
        if ((mmio.read(STATUS) & FEATURES_OK) == 0) {
            mmio.write(STATUS, mmio.read(STATUS) | FAILED);
            return DeviceError.FEATURES_REJECTED;
        }

        if ((features & NetFeatures.MAC) != 0) {
            for (int i = 0; i < 6; i++) {
                mac[i] = (byte) mmio.read(CONFIG + NetConfigSpace.MAC + i);
            }
        } else {
            mac = new byte[] {0x02, 0, 0, 0, 0, 1}; // locally administered
        }
        int n = 1;
        int maxPairs = 1;
        if ((features & NetFeatures.MQ) != 0) {
            maxPairs = Math.max(1, mmio.read(CONFIG + NetConfigSpace.MAX_VIRTQUEUE_PAIRS) & 0xffff);
            n = Math.max(1, Math.min(options.maxPairs(), maxPairs));
        }
        boolean eventIdx = (features & NetFeatures.EVENT_IDX) != 0;
        boolean packed = (features & NetFeatures.RING_PACKED) != 0;
        boolean mergeable = (features & NetFeatures.MRG_RXBUF) != 0;
        QueuePairDriver[] ps = new QueuePairDriver[n];
        VirtioNetDevice device = mmio.device();
        for (int p = 0; p < n; p++) {
            DriverVirtqueue rx = setUpQueue(VirtioNetDevice.rxQueue(p), eventIdx, packed);
            DriverVirtqueue tx = setUpQueue(VirtioNetDevice.txQueue(p), eventIdx, packed);
            if (rx == null || tx == null) {
                mmio.write(STATUS, mmio.read(STATUS) | FAILED);
                return mmio.lastError();
            }
            // The interrupt line is platform wiring: the pair's vector, as an MSI-X vector would be.
            ps[p] = new QueuePairDriver(p, memory, allocator, mmio, rx, tx, mergeable, mac, device.vector(p),
                    options.rxBufferSize(), options.rxBuffers(), options.txBuffers());
        }
        ControlQueueDriver cvq = null;
        if ((features & NetFeatures.CTRL_VQ) != 0) {
            // Without MQ the device has one pair and the control queue is queue 2 (virtio 1.2 §5.1.2).
            int q = 2 * maxPairs;
            DriverVirtqueue cq = setUpQueue(q, eventIdx, packed, CONTROL_QUEUE_SIZE);
            if (cq == null) {
                mmio.write(STATUS, mmio.read(STATUS) | FAILED);
                return mmio.lastError();
            }
            cvq = new ControlQueueDriver(memory, allocator, mmio, cq, q);
        }
        status |= DRIVER_OK;
        mmio.write(STATUS, status);
        if (mmio.lastError() != DeviceError.OK) {
            return mmio.lastError();
        }
        control = cvq;
        if ((features & NetFeatures.MQ) != 0) {
            // Only pair 0 is used until the device acks VQ_PAIRS_SET (virtio 1.2 §5.1.6.5.5).
            DeviceError e = cvq.setQueuePairs(n);
            if (e != DeviceError.OK) {
                mmio.write(STATUS, mmio.read(STATUS) | FAILED);
                return e;
            }
        }
        pairs = ps;
        for (QueuePairDriver p : ps) {
            p.fillRx();
        }
        return DeviceError.OK;
    }

    private DriverVirtqueue setUpQueue(int q, boolean eventIdx, boolean packed) {
        return setUpQueue(q, eventIdx, packed, options.queueSize());
    }

    /**
     * Sets queue {@code q} up in the negotiated layout: a split ring's descriptor table, avail and used rings, or
     * a packed ring's descriptor ring and its driver and device event suppression areas (virtio 1.2 §2.8.10),
     * which QueueDesc, QueueDriver and QueueDevice then name (§4.2.2).
     */
    private DriverVirtqueue setUpQueue(int q, boolean eventIdx, boolean packed, int wantedSize) {
        mmio.write(QUEUE_SEL, q);
        int max = mmio.read(QUEUE_NUM_MAX);
        if (max == 0 || mmio.read(QUEUE_READY) != 0) {
            return null;
        }
        int size = Math.min(Integer.highestOneBit(Math.max(1, wantedSize)), max);
        long desc;
        long driverArea;
        long deviceArea;
        if (packed) {
            desc = allocator.allocate(PackedRing.descRingSize(size), 4096);
            driverArea = allocator.allocate(PackedRing.EVENT_SIZE, PackedRing.EVENT_ALIGN);
            // Its own cache line: the device writes it, the driver reads it on every kick decision.
            deviceArea = allocator.allocate(PackedRing.EVENT_SIZE, 64);
        } else {
            desc = allocator.allocate(SplitRing.descTableSize(size), SplitRing.DESC_ALIGN);
            driverArea = allocator.allocate(SplitRing.availRingSize(size), SplitRing.AVAIL_ALIGN);
            deviceArea = allocator.allocate(SplitRing.usedRingSize(size), 4096);
        }
        mmio.write(QUEUE_NUM, size);
        mmio.write(QUEUE_DESC_LOW, (int) desc);
        mmio.write(QUEUE_DESC_HIGH, (int) (desc >>> 32));
        mmio.write(QUEUE_DRIVER_LOW, (int) driverArea);
        mmio.write(QUEUE_DRIVER_HIGH, (int) (driverArea >>> 32));
        mmio.write(QUEUE_DEVICE_LOW, (int) deviceArea);
        mmio.write(QUEUE_DEVICE_HIGH, (int) (deviceArea >>> 32));
        mmio.write(QUEUE_READY, 1);
        if (mmio.lastError() != DeviceError.OK) {
            return null;
        }
        return packed ? new PackedDriverQueue(memory, size, desc, driverArea, deviceArea, eventIdx)
                : new DriverQueue(memory, size, desc, driverArea, deviceArea, eventIdx);
    }

    /** The negotiated features. */
    public long features() {
        return features;
    }

    public byte[] mac() {
        return mac.clone();
    }

    public int pairCount() {
        return pairs.length;
    }

    public QueuePairDriver pair(int p) {
        return pairs[p];
    }

    /** The control queue's driver, or null without CTRL_VQ negotiated. */
    public ControlQueueDriver control() {
        return control;
    }

    /** Writes status 0: the device takes its queues back from the backend. */
    public void reset() {
        mmio.write(STATUS, 0);
    }
}
