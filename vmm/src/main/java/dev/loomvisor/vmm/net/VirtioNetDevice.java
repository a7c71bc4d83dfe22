package dev.loomvisor.vmm.net;

import static dev.loomvisor.vmm.net.DeviceStatus.*;

import dev.loomvisor.core.Notifier;
import dev.loomvisor.vmm.memory.GuestMemory;
import dev.loomvisor.vmm.virtio.DeviceQueue;
import dev.loomvisor.vmm.virtio.DeviceVirtqueue;
import dev.loomvisor.vmm.virtio.PackedDeviceQueue;
import dev.loomvisor.vmm.virtio.RingError;
import dev.loomvisor.vmm.virtio.SplitRing;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.ReentrantLock;

/**
 * The virtio-net device model: feature negotiation, the device-status state machine, config space and
 * queue pairs (queue 2k receives for pair k, 2k+1 transmits; virtio 1.2 §5.1.2) and, with CTRL_VQ, the
 * control queue: queue 2 max_virtqueue_pairs with MQ negotiated, else queue 2. The data path is not here: on DRIVER_OK the
 * pair queues go to a {@link DeviceBackend} (vhost, or the loopback used in tests), as QEMU hands its rings
 * to vhost-net; the control queue stays with the device ({@link ControlQueue}), as QEMU keeps it.
 *
 * <p>Multiqueue (virtio 1.2 §5.1.6.5.5): until the driver sends VQ_PAIRS_SET only pair 0 is active; the
 * command changes {@link #activePairs()} and tells the backend, which serves just those pairs.
 *
 * <p>Per queue the device owns a kick {@link Notifier} (guest to device: the transport's QueueNotify
 * signals it) and a call {@link Notifier} (device to guest). Each call notifier is routed, like an irqfd,
 * to the interrupt vector of its queue pair: it sets the used-buffer bit of the interrupt status and signals
 * {@link #vector(int)}, where the vCPU serving that pair waits.
 *
 * <p>Each queue is split (virtio 1.2 §2.7) or, with VIRTIO_F_RING_PACKED negotiated, packed (§2.8); both
 * device sides exist from the start and QueueReady picks the negotiated one, so QueueDesc, QueueDriver and
 * QueueDevice name the descriptor table, avail and used rings, or the descriptor ring and the driver and device
 * event suppression areas (§4.2.2).
 *
 * <p>Control-path calls (status, features, queue set-up) come from the driver and are serialised by a lock;
 * a queue breaking (on whatever thread found it) sets NEEDS_RESET and raises a config interrupt.
 */
public final class VirtioNetDevice {

    /** Interrupt status bits (virtio-mmio InterruptStatus). */
    public static final int INT_USED_BUFFER = 1;
    public static final int INT_CONFIG = 2;

    private final GuestMemory memory;
    private final byte[] mac;
    private final int pairs;
    private final int queueMax;
    private final long offered;
    /** The layout each queue runs: its {@link #split} or {@link #packed} side (set at QueueReady). */
    private final DeviceVirtqueue[] queues;
    private final DeviceQueue[] split;
    private final PackedDeviceQueue[] packed;
    private final Notifier[] kicks;
    private final Notifier[] calls;
    private final Notifier[] vectors;
    private final int[] qSize;
    private final long[] qDesc;
    private final long[] qAvail;
    private final long[] qUsed;
    private final boolean[] qReady;
    /** The control queue (null without CTRL_VQ offered). */
    private final ControlQueue control;
    private volatile int activePairs = 1;
    private final ReentrantLock lock = new ReentrantLock();
    private final AtomicInteger interruptStatus = new AtomicInteger();
    private final AtomicInteger configGeneration = new AtomicInteger();
    private final AtomicLong brokenQueues = new AtomicLong();
    private final AtomicLong refusedRequests = new AtomicLong();

    /** Written by the driver path under the lock and OR-ed with NEEDS_RESET by any thread. */
    private final AtomicInteger status = new AtomicInteger();
    private long driverFeatures;
    private volatile long negotiated;
    private volatile boolean linkUp = true;
    private DeviceBackend backend;
    private boolean backendActive;

    /**
     * @param offered  features to offer; must include VERSION_1 and only bits in {@link NetFeatures#SUPPORTED}
     * @param pairs    queue pairs (max_virtqueue_pairs); more than one needs MQ offered, and MQ needs CTRL_VQ
     * @param queueMax largest queue size the driver may choose (QueueNumMax)
     */
    public VirtioNetDevice(GuestMemory memory, byte[] mac, int pairs, int queueMax, long offered) {
        if ((offered & NetFeatures.VERSION_1) == 0 || (offered & ~NetFeatures.SUPPORTED) != 0) {
            throw new IllegalArgumentException("offered features 0x" + Long.toHexString(offered));
        }
        if (pairs < 1 || pairs > NetControl.VQ_PAIRS_MAX || (pairs > 1 && (offered & NetFeatures.MQ) == 0)) {
            throw new IllegalArgumentException(pairs + " queue pairs (more than one needs MQ)");
        }
        if ((offered & NetFeatures.MQ) != 0 && (offered & NetFeatures.CTRL_VQ) == 0) {
            throw new IllegalArgumentException("MQ needs CTRL_VQ (virtio 1.2 §5.1.3.1)");
        }
        if (queueMax < 1 || queueMax > SplitRing.MAX_QUEUE_SIZE || (queueMax & (queueMax - 1)) != 0) {
            throw new IllegalArgumentException("queue max " + queueMax);
        }
        if (mac.length != 6) {
            throw new IllegalArgumentException("a MAC is 6 bytes");
        }
        this.memory = memory;
        this.mac = mac.clone();
        this.pairs = pairs;
        this.queueMax = queueMax;
        this.offered = offered;
        int n = 2 * pairs + ((offered & NetFeatures.CTRL_VQ) != 0 ? 1 : 0);
        queues = new DeviceVirtqueue[n];
        split = new DeviceQueue[n];
        packed = new PackedDeviceQueue[n];
        kicks = new Notifier[n];
        calls = new Notifier[n];
        vectors = new Notifier[pairs];
        qSize = new int[n];
        qDesc = new long[n];
        qAvail = new long[n];
        qUsed = new long[n];
        qReady = new boolean[n];
        for (int p = 0; p < pairs; p++) {
            vectors[p] = new Notifier();
        }
        for (int q = 0; q < n; q++) {
            split[q] = new DeviceQueue(q);
            split[q].setBrokenListener((dq, e) -> onQueueBroken(dq.index(), e));
            packed[q] = new PackedDeviceQueue(q);
            packed[q].setBrokenListener((pq, e) -> onQueueBroken(pq.index(), e));
            queues[q] = split[q];
            kicks[q] = new Notifier();
            calls[q] = new Notifier();
            int queue = q;
            // The irqfd route: a call is a used-buffer interrupt on the pair's vector.
            calls[q].setListener(c -> {
                interruptStatus.getAndUpdate(s -> s | INT_USED_BUFFER);
                vectorOf(queue).signal();
            });
            qSize[q] = queueMax;
        }
        control = n > 2 * pairs ? new ControlQueue() : null;
    }

    /** The vector of queue {@code q}: its pair's; the control queue shares vector 0 with config changes. */
    private Notifier vectorOf(int q) {
        return q == controlQueueIndex() || q >= 2 * pairs ? vectors[0] : vectors[q / 2];
    }

    public GuestMemory memory() {
        return memory;
    }

    public byte[] mac() {
        return mac.clone();
    }

    public int queuePairs() {
        return pairs;
    }

    public int queueCount() {
        return queues.length;
    }

    public int queueMax() {
        return queueMax;
    }

    public static int rxQueue(int pair) {
        return 2 * pair;
    }

    public static int txQueue(int pair) {
        return 2 * pair + 1;
    }

    /**
     * Index of the control queue, or -1 without CTRL_VQ offered: 2 max_virtqueue_pairs with MQ negotiated,
     * else 2 (virtio 1.2 §5.1.2).
     */
    public int controlQueueIndex() {
        return control == null ? -1 : hasFeature(NetFeatures.MQ) ? 2 * pairs : 2;
    }

    /** The control queue, or null without CTRL_VQ offered. */
    public ControlQueue controlQueue() {
        return control;
    }

    /** Queue pairs the driver enabled (VQ_PAIRS_SET; 1 after reset and without MQ). */
    public int activePairs() {
        return activePairs;
    }

    /** Queue {@code q}'s device side in the negotiated layout: what a backend pops from and returns to. */
    public DeviceVirtqueue queue(int q) {
        return queues[q];
    }

    /** Guest-to-device notification of queue {@code q}. */
    public Notifier kick(int q) {
        return kicks[q];
    }

    /** Device-to-guest notification of queue {@code q}; routed to {@link #vector(int)} of its pair. */
    public Notifier call(int q) {
        return calls[q];
    }

    /** Interrupt vector of pair {@code p}: where the vCPU serving the pair waits. Config interrupts go to 0. */
    public Notifier vector(int p) {
        return vectors[p];
    }

    public long offeredFeatures() {
        return offered;
    }

    /** The features agreed at FEATURES_OK (0 before). */
    public long negotiatedFeatures() {
        return negotiated;
    }

    public boolean hasFeature(long bit) {
        return (negotiated & bit) != 0;
    }

    public int status() {
        return status.get();
    }

    public boolean isRunning() {
        int s = status.get();
        return (s & DRIVER_OK) != 0 && (s & (FAILED | NEEDS_RESET)) == 0;
    }

    /** Queues that broke since creation (each also set NEEDS_RESET). */
    public long brokenQueueCount() {
        return brokenQueues.get();
    }

    /** Driver requests refused with a {@link DeviceError}. */
    public long refusedRequestCount() {
        return refusedRequests.get();
    }

    public void setBackend(DeviceBackend backend) {
        lock.lock();
        try {
            this.backend = backend;
        } finally {
            lock.unlock();
        }
    }

    /** The driver's feature bits; refused after FEATURES_OK (virtio 1.2 §3.1.1). */
    public DeviceError setDriverFeatures(long features) {
        lock.lock();
        try {
            int s = status.get();
            if ((s & DRIVER) == 0 || (s & FEATURES_OK) != 0) {
                return refuse(DeviceError.FEATURES_LOCKED);
            }
            driverFeatures = features;
            return DeviceError.OK;
        } finally {
            lock.unlock();
        }
    }

    public long driverFeatures() {
        return driverFeatures;
    }

    /**
     * A status write. 0 resets the device. Otherwise bits may only be added, each after its predecessor
     * (ACKNOWLEDGE, DRIVER, FEATURES_OK, DRIVER_OK); FEATURES_OK is refused, and stays clear for the driver
     * to re-read, when the features are not a set the device can honour.
     */
    public DeviceError setStatus(int newStatus) {
        lock.lock();
        try {
            if (newStatus == 0) {
                reset();
                return DeviceError.OK;
            }
            int old = status.get();
            if ((newStatus & old) != old) {
                return refuse(DeviceError.STATUS_CLEARS_BITS); // the driver must not clear a bit (virtio 1.2 §2.1.1)
            }
            int added = newStatus & ~old;
            if ((added & FAILED) != 0) {
                // The driver gave up: stop serving, keep the state for inspection until reset.
                stopBackend();
                status.getAndUpdate(x -> x | FAILED);
                return DeviceError.OK;
            }
            if ((old & (FAILED | NEEDS_RESET)) != 0) {
                return refuse(DeviceError.DEVICE_FAILED);
            }
            if ((added & NEEDS_RESET) != 0) {
                return refuse(DeviceError.STATUS_OUT_OF_ORDER); // only the device sets NEEDS_RESET
            }
            if (!inOrder(newStatus)) { // the initialization sequence (virtio 1.2 §3.1.1)
                return refuse(DeviceError.STATUS_OUT_OF_ORDER);
            }
            if ((added & FEATURES_OK) != 0) {
                if (!acceptable(driverFeatures)) {
                    set(newStatus & ~FEATURES_OK & ~DRIVER_OK);
                    return refuse(DeviceError.FEATURES_REJECTED);
                }
                negotiated = driverFeatures;
            }
            set(newStatus);
            if ((added & DRIVER_OK) != 0 && backend != null) {
                backend.activate(this);
                backendActive = true;
            }
            return DeviceError.OK;
        } finally {
            lock.unlock();
        }
    }

    /** A driver-path status write that keeps a NEEDS_RESET a breaking queue set meanwhile. */
    private void set(int newStatus) {
        status.getAndUpdate(x -> newStatus | (x & NEEDS_RESET));
    }

    private static boolean inOrder(int s) {
        // Each step needs all earlier ones.
        if ((s & DRIVER) != 0 && (s & ACKNOWLEDGE) == 0) {
            return false;
        }
        if ((s & FEATURES_OK) != 0 && (s & DRIVER) == 0) {
            return false;
        }
        return (s & DRIVER_OK) == 0 || (s & FEATURES_OK) != 0;
    }

    private boolean acceptable(long features) {
        // A subset of what was offered, and VERSION_1: this is a modern-only device (virtio 1.2
        // §2.2.2: a set it cannot honour fails FEATURES_OK).
        // MQ requires CTRL_VQ (virtio 1.2 §5.1.3.1): the pairs are enabled through the control queue.
        return (features & ~offered) == 0 && (features & NetFeatures.VERSION_1) != 0
                && ((features & NetFeatures.MQ) == 0 || (features & NetFeatures.CTRL_VQ) != 0);
    }

    /** QueueNum: the driver's queue size, a power of two up to {@link #queueMax()}. */
    public DeviceError setQueueSize(int q, int size) {
        return queueSetUp(q, () -> qSize[q] = size);
    }

    public DeviceError setQueueDesc(int q, long addr) {
        return queueSetUp(q, () -> qDesc[q] = addr);
    }

    public DeviceError setQueueAvail(int q, long addr) {
        return queueSetUp(q, () -> qAvail[q] = addr);
    }

    public DeviceError setQueueUsed(int q, long addr) {
        return queueSetUp(q, () -> qUsed[q] = addr);
    }

    private DeviceError queueSetUp(int q, Runnable set) {
        lock.lock();
        try {
            if (q < 0 || q >= queues.length) {
                return refuse(DeviceError.QUEUE_INDEX);
            }
            if (qReady[q] || (status.get() & FEATURES_OK) == 0) {
                // A ready queue's set-up is the device's now (virtio 1.2 §4.2.2.2).
                return refuse(DeviceError.QUEUE_LOCKED);
            }
            set.run();
            return DeviceError.OK;
        } finally {
            lock.unlock();
        }
    }

    public int queueSize(int q) {
        return q >= 0 && q < qSize.length ? qSize[q] : 0;
    }

    public long queueDesc(int q) {
        return q >= 0 && q < qDesc.length ? qDesc[q] : 0;
    }

    public long queueAvail(int q) {
        return q >= 0 && q < qAvail.length ? qAvail[q] : 0;
    }

    public long queueUsed(int q) {
        return q >= 0 && q < qUsed.length ? qUsed[q] : 0;
    }

    public boolean queueReady(int q) {
        return q >= 0 && q < qReady.length ? qReady[q] : false;
    }

    /**
     * QueueReady: 1 checks the set-up against the ring rules and configures the device side with the
     * negotiated EVENT_IDX and INDIRECT_DESC; a rejected set-up breaks the queue (NEEDS_RESET). 0 takes the
     * queue down.
     */
    public DeviceError setQueueReady(int q, boolean ready) {
        lock.lock();
        try {
            if (q < 0 || q >= queues.length) {
                return refuse(DeviceError.QUEUE_INDEX);
            }
            int s = status.get();
            if ((s & FEATURES_OK) == 0 || (s & (FAILED | NEEDS_RESET)) != 0) {
                return refuse(DeviceError.QUEUE_LOCKED);
            }
            if (q == 2 * pairs && !hasFeature(NetFeatures.MQ) && (pairs > 1 || !hasFeature(NetFeatures.CTRL_VQ))) {
                return refuse(DeviceError.QUEUE_INDEX); // no control queue without CTRL_VQ (virtio 1.2 §5.1.2)
            }
            if (!ready) {
                qReady[q] = false;
                queues[q].reset();
                return DeviceError.OK;
            }
            if (qSize[q] > queueMax) {
                return refuse(DeviceError.QUEUE_REJECTED); // QueueNum may not exceed QueueNumMax (virtio 1.2 §4.2.2.2)
            }
            boolean eventIdx = hasFeature(NetFeatures.EVENT_IDX);
            boolean indirect = hasFeature(NetFeatures.INDIRECT_DESC);
            RingError e;
            if (hasFeature(NetFeatures.RING_PACKED)) {
                PackedDeviceQueue pq = packed[q];
                queues[q] = pq;
                pq.setDeviceWritableAllowed(q % 2 == 0); // TX queues carry output buffers only (virtio 1.2 §5.1.6.2)
                e = pq.configure(memory, qSize[q], qDesc[q], qAvail[q], qUsed[q], eventIdx, indirect);
            } else {
                DeviceQueue dq = split[q];
                queues[q] = dq;
                dq.setDeviceWritableAllowed(q % 2 == 0);
                e = dq.configure(memory, qSize[q], qDesc[q], qAvail[q], qUsed[q], eventIdx, indirect);
            }
            if (e != RingError.NONE) {
                return refuse(DeviceError.QUEUE_REJECTED);
            }
            qReady[q] = true;
            return DeviceError.OK;
        } finally {
            lock.unlock();
        }
    }

    /** QueueNotify: the driver kicks queue {@code q}. */
    public void notifyQueue(int q) {
        if (q >= 0 && q == controlQueueIndex()) {
            processControl();
        } else if (q >= 0 && q < kicks.length) {
            kicks[q].signal();
        }
    }

    /**
     * The control queue was kicked: the VMM serves it on the notifying thread, as a trapped QueueNotify is
     * handled before the vCPU resumes. Only with DRIVER_OK and no NEEDS_RESET.
     */
    private void processControl() {
        lock.lock();
        try {
            if (!isRunning() || !qReady[controlQueueIndex()]) {
                return;
            }
            DeviceVirtqueue cq = queues[controlQueueIndex()];
            if (control.process(cq, controlCommands) > 0 && cq.needsInterrupt()) {
                calls[controlQueueIndex()].signal();
            }
        } finally {
            lock.unlock();
        }
    }

    private final ControlQueue.Commands controlCommands = new ControlQueue.Commands() {
        @Override
        public boolean mqNegotiated() {
            return hasFeature(NetFeatures.MQ);
        }

        @Override
        public int maxPairs() {
            return pairs;
        }

        @Override
        public void setQueuePairs(int n) {
            activePairs = n;
            if (backendActive && backend != null) {
                backend.queuePairsChanged(VirtioNetDevice.this, n);
            }
        }
    };

    /** Reads {@code width} (1, 2 or 4) bytes of virtio_net_config at {@code offset}; 0 outside it. */
    public int readConfig(int offset, int width) {
        int v = 0;
        for (int i = 0; i < width; i++) {
            v |= (configByte(offset + i) & 0xff) << (8 * i);
        }
        return v;
    }

    private int configByte(int off) {
        if (off >= NetConfigSpace.MAC && off < NetConfigSpace.MAC + 6) {
            return mac[off];
        }
        int status = linkUp ? NetConfigSpace.LINK_UP : 0;
        return switch (off) {
            case NetConfigSpace.STATUS -> status;
            case NetConfigSpace.STATUS + 1 -> status >>> 8;
            case NetConfigSpace.MAX_VIRTQUEUE_PAIRS -> pairs;
            case NetConfigSpace.MAX_VIRTQUEUE_PAIRS + 1 -> pairs >>> 8;
            case NetConfigSpace.MTU -> 1500 & 0xff;
            case NetConfigSpace.MTU + 1 -> 1500 >>> 8;
            default -> 0;
        };
    }

    /** Changes the link state; with STATUS negotiated, raises a config interrupt. */
    public void setLinkUp(boolean up) {
        linkUp = up;
        configGeneration.incrementAndGet();
        if (hasFeature(NetFeatures.STATUS)) {
            configInterrupt();
        }
    }

    public int configGeneration() {
        return configGeneration.get();
    }

    public int interruptStatus() {
        return interruptStatus.get();
    }

    /** InterruptACK: clears the given bits. */
    public void ackInterrupt(int bits) {
        interruptStatus.getAndUpdate(s -> s & ~bits);
    }

    private void configInterrupt() {
        interruptStatus.getAndUpdate(s -> s | INT_CONFIG);
        vectors[0].signal();
    }

    /**
     * The backend serving queue {@code q} found the guest broke it (vhost's vring error eventfd): the device
     * needs a reset, exactly as when it finds a violation on its own queue.
     */
    public void backendQueueError(int q) {
        if (q >= 0 && q < queues.length) {
            onQueueBroken(q, RingError.NONE);
        }
    }

    private void onQueueBroken(int q, RingError e) {
        // virtio 1.2 §2.1.2: a device in an error state that needs a reset sets NEEDS_RESET and, with DRIVER_OK
        // set, sends a configuration change notification. Runs on the thread that found the violation (a
        // backend worker): no lock, just a CAS on the status word.
        brokenQueues.incrementAndGet();
        dev.loomvisor.vmm.jfr.RingErrorEvent.emit("virtio-net", this, q, e);
        status.getAndUpdate(s -> s | NEEDS_RESET);
        configInterrupt();
    }

    /** Status 0: take the queues back from the backend, reset every queue and forget the negotiation. */
    public void reset() {
        lock.lock();
        try {
            stopBackend();
            for (int q = 0; q < queues.length; q++) {
                split[q].reset();
                packed[q].reset();
                queues[q] = split[q];
                qReady[q] = false;
                qSize[q] = queueMax;
                qDesc[q] = qAvail[q] = qUsed[q] = 0;
                kicks[q].poll();
                calls[q].poll();
            }
            driverFeatures = 0;
            negotiated = 0;
            activePairs = 1;
            interruptStatus.set(0);
            status.set(0);
        } finally {
            lock.unlock();
        }
    }

    private void stopBackend() {
        if (backendActive && backend != null) {
            backend.deactivate(this);
        }
        backendActive = false;
    }

    private DeviceError refuse(DeviceError e) {
        refusedRequests.incrementAndGet();
        return e;
    }
}
