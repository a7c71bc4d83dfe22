package dev.loomvisor.vhost;

import dev.loomvisor.core.Notifier;
import dev.loomvisor.vhost.backend.NetBackend;
import dev.loomvisor.vhost.stats.Counters;
import dev.loomvisor.vhost.work.VhostPoll;
import dev.loomvisor.vhost.work.VhostWork;
import dev.loomvisor.vhost.work.VhostWorker;
import dev.loomvisor.vhost.work.WorkerSlot;
import dev.loomvisor.vmm.virtio.DescriptorChain;
import dev.loomvisor.vmm.virtio.DeviceQueue;
import dev.loomvisor.vmm.virtio.DeviceVirtqueue;
import dev.loomvisor.vmm.virtio.PackedDeviceQueue;
import dev.loomvisor.vmm.virtio.PackedRing;
import dev.loomvisor.vmm.virtio.RingError;
import java.util.concurrent.locks.ReentrantLock;

/**
 * {@code struct vhost_virtqueue}: what the VMM told the device about one ring (size, addresses, base index,
 * kick/call/err eventfds), the device-side ring itself, the worker slot, the kick poll and the counters.
 * The ring is split or packed as the features say (VIRTIO_F_RING_PACKED); both sides exist from the start and
 * {@link #initAccess} picks one, so a handler sees at most two ring classes.
 *
 * <p>The control fields are written by {@link VhostDevice} with {@link #mutex()} held; the handler reads
 * them with the same mutex held, as vhost's handlers take vq->mutex, so a control call never changes a
 * ring under a running handler.
 */
public final class VhostVirtqueue {

    private final int index;
    private final ReentrantLock mutex = new ReentrantLock();
    private final DeviceQueue split;
    private final PackedDeviceQueue packed;
    /** The layout in use: {@link #split} or {@link #packed} (guarded by mutex). */
    private DeviceVirtqueue queue;
    private final WorkerSlot slot = new WorkerSlot();
    private final VhostWork handleKick;
    private final VhostPoll poll;
    private final Counters<RingCounter> counters = new Counters<>(RingCounter.class);
    private DescriptorChain chain;

    // Set by the VMM through the device (guarded by mutex).
    private int num;
    private long descAddr;
    private long availAddr;
    private long usedAddr;
    private boolean addrSet;
    private int lastAvailBase;
    /** A base was given (SET_VRING_BASE) or kept from a stopped ring; else a packed ring starts at wrap 1. */
    private boolean baseSet;
    /** For a stopped packed ring: the used position and wrap counter, bits 16-31 of GET_VRING_BASE. */
    private int lastUsedBase;
    private Notifier kick;
    private volatile Notifier call;
    private volatile Notifier err;
    /** vq->private_data: the backend (vhost-net's, the one device here); non-null means the ring runs. */
    private volatile NetBackend backend;
    private volatile long busyPollNanos;

    VhostVirtqueue(int index, VhostWork.Fn handler) {
        this.index = index;
        this.split = new DeviceQueue(index);
        this.packed = new PackedDeviceQueue(index);
        this.queue = split;
        this.handleKick = new VhostWork(handler);
        this.poll = new VhostPoll(handleKick, slot);
        split.setBrokenListener((q, e) -> ringBroken(q.index(), e));
        packed.setBrokenListener((q, e) -> ringBroken(q.index(), e));
    }

    private void ringBroken(int queueIndex, RingError e) {
        counters.add(RingCounter.RING_ERRORS, 1);
        dev.loomvisor.vmm.jfr.RingErrorEvent.emit("vhost-net", this, queueIndex, e);
        Notifier n = err;
        if (n != null) {
            n.signal(); // vq_err: the VMM learns through the error eventfd
        }
    }

    public int index() {
        return index;
    }

    public ReentrantLock mutex() {
        return mutex;
    }

    /** The device side of the ring (valid while a backend is attached): split or packed. */
    public DeviceVirtqueue queue() {
        return queue;
    }

    /** Marks a ring the device only reads (TX), on both layouts. */
    public void setDeviceWritableAllowed(boolean allowed) {
        split.setDeviceWritableAllowed(allowed);
        packed.setDeviceWritableAllowed(allowed);
    }

    /** Whether the ring runs the packed layout (VIRTIO_F_RING_PACKED negotiated at its start). */
    public boolean isPacked() {
        return queue == packed;
    }

    /** The reusable chain for the handler (sized at {@link #initAccess}). */
    public DescriptorChain chain() {
        return chain;
    }

    public Counters<RingCounter> counters() {
        return counters;
    }

    /** Kicks received (signals on the kick eventfd while polled). */
    public long kicks() {
        return poll.signals();
    }

    public RingError ringError() {
        return queue.error();
    }

    /** The worker serving the ring now, or null (none attached, or detached by the owner's death). */
    public VhostWorker worker() {
        return slot.get();
    }

    public WorkerSlot slot() {
        return slot;
    }

    /** The handler's work (queued by kicks, by the backend and by the handler itself at its weight). */
    public VhostWork handleKickWork() {
        return handleKick;
    }

    /** vhost_poll_queue on this ring: false if no worker is attached. */
    public boolean queueHandler() {
        return slot.queueWork(handleKick);
    }

    public VhostPoll poll() {
        return poll;
    }

    public NetBackend backend() {
        return backend;
    }

    public Notifier call() {
        return call;
    }

    public Notifier kick() {
        return kick;
    }

    public Notifier err() {
        return err;
    }

    public int num() {
        return num;
    }

    /** Busy-poll timeout of this ring in nanoseconds (0 = off, the default). */
    public long busyPollNanos() {
        return busyPollNanos;
    }

    void setBusyPollNanos(long nanos) {
        busyPollNanos = nanos;
    }

    void setNum(int n) {
        num = n;
    }

    void setAddr(long desc, long avail, long used) {
        descAddr = desc;
        availAddr = avail;
        usedAddr = used;
        addrSet = true;
    }

    boolean isAddrSet() {
        return addrSet;
    }

    void setBase(int base) {
        lastAvailBase = base & 0xffff;
        baseSet = true;
        queue.setLastAvail(lastAvailBase);
    }

    /**
     * GET_VRING_BASE: where the device would resume popping. For a packed ring, as the vhost-user spec lays
     * it out: bits 0-14 the next avail slot, bit 15 the avail wrap counter, bits 16-30 the next used slot,
     * bit 31 the used wrap counter.
     */
    int base() {
        boolean running = backend != null || queue.isReady();
        if (queue != packed) {
            return running ? queue.lastAvail() : lastAvailBase;
        }
        if (running) {
            return queue.lastAvail() | queue.lastUsed() << 16;
        }
        return baseSet ? lastAvailBase | lastUsedBase << 16 : PackedRing.WRAP_BIT | PackedRing.WRAP_BIT << 16;
    }

    void setKick(Notifier n) {
        kick = n;
    }

    void setCall(Notifier n) {
        call = n;
    }

    void setErr(Notifier n) {
        err = n;
    }

    void setBackend(NetBackend b) {
        backend = b;
    }

    /**
     * vhost_vq_init_access: points the device-side ring at the addresses the VMM gave, within the current
     * memory table, resuming from the base index.
     */
    RingError initAccess(dev.loomvisor.vmm.memory.GuestMemory memory, boolean eventIdx, boolean indirect) {
        return initAccess(memory, eventIdx, indirect, false, false);
    }

    /**
     * As {@link #initAccess(dev.loomvisor.vmm.memory.GuestMemory, boolean, boolean)}, on the packed layout
     * when {@code packedRing} (the avail and used addresses are then the driver and device areas, virtio 1.2
     * §2.8.10); {@code inOrder} is VIRTIO_F_IN_ORDER.
     */
    RingError initAccess(dev.loomvisor.vmm.memory.GuestMemory memory, boolean eventIdx, boolean indirect,
                         boolean packedRing, boolean inOrder) {
        if (!baseSet) {
            lastUsedBase = PackedRing.WRAP_BIT;
        }
        split.reset();
        packed.reset();
        RingError e;
        if (packedRing) {
            queue = packed;
            packed.setInOrder(inOrder);
            // A packed base restarts used descriptors at the avail position, as DPDK and QEMU restore it.
            // Both wrap counters start at 1 (virtio 1.2 §2.8.1) unless a base says otherwise.
            packed.setLastAvail(baseSet ? lastAvailBase : PackedRing.WRAP_BIT);
            e = packed.configure(memory, num, descAddr, availAddr, usedAddr, eventIdx, indirect);
        } else {
            queue = split;
            split.setInOrder(inOrder);
            split.setLastAvail(lastAvailBase);
            e = split.configure(memory, num, descAddr, availAddr, usedAddr, eventIdx, indirect);
        }
        if (e == RingError.NONE) {
            if (chain == null || chain.capacity() < 2 * num) {
                chain = queue.newChain();
            }
        }
        return e;
    }

    /** Stops the device side: remembers where it got to (so GET_VRING_BASE and a restart see it). */
    void stopAccess() {
        if (queue.isReady()) {
            lastAvailBase = queue.lastAvail();
            lastUsedBase = queue.lastUsed();
            baseSet = true;
        }
        queue.reset();
    }

    @Override
    public String toString() {
        return "vq " + index + " " + queue;
    }
}
