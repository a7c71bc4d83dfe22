package dev.loomvisor.vhost;

import dev.loomvisor.core.inject.Delays;
import dev.loomvisor.core.Errno;
import dev.loomvisor.core.ErrnoException;
import dev.loomvisor.core.Mm;
import dev.loomvisor.core.Notifier;
import dev.loomvisor.core.Task;
import dev.loomvisor.core.worker.Accounting;
import dev.loomvisor.core.worker.Worker;
import dev.loomvisor.core.worker.WorkerFactory;
import dev.loomvisor.core.worker.WorkerModel;
import dev.loomvisor.vhost.backend.NetBackend;
import dev.loomvisor.vhost.work.VhostWork;
import dev.loomvisor.vhost.work.VhostWorker;
import dev.loomvisor.vmm.memory.GuestMemory;
import dev.loomvisor.vhost.jfr.DeviceEvents;
import dev.loomvisor.vmm.virtio.PackedRing;
import dev.loomvisor.vmm.virtio.RingError;
import dev.loomvisor.vmm.virtio.SplitRing;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeMap;
import java.util.concurrent.locks.ReentrantLock;

/**
 * {@code struct vhost_dev}: the device-independent half of a vhost device, with the kernel's control calls
 * and their errors (drivers/vhost/vhost.c; user-workers.md section 5). Each call takes the calling task,
 * standing for {@code current}, and fails with an {@link ErrnoException}.
 *
 * <p>Ownership is per address space: SET_OWNER records the caller's mm, and every later call must come
 * from a task with that mm (any thread of the owner; not a forked child). Workers come from the device's
 * {@link WorkerFactory}: in task mode (the default, fork from owner) a user worker is a thread of the owner
 * counted against its limits; in kthread mode (SET_FORK_FROM_OWNER 0 before SET_OWNER, or a kthread
 * model) it is a kthread outside them, and NEW_WORKER is refused with EFAULT.
 *
 * <p>Locks, outermost first: the device mutex, a worker's mutex, a ring's mutex (as in vhost.c).
 */
public final class VhostDevice implements AutoCloseable {

    /** VIRTIO_F_EVENT_IDX and VIRTIO_F_INDIRECT_DESC: the ring features the device side honours. */
    private static final int F_EVENT_IDX = 29;
    private static final int F_INDIRECT_DESC = 28;
    /** VIRTIO_F_RING_PACKED and VIRTIO_F_IN_ORDER (virtio 1.2 §6): the packed layout and in-order use. */
    private static final int F_RING_PACKED = 34;
    private static final int F_IN_ORDER = 35;

    /** Largest ring the kernel accepts (SET_VRING_NUM): a power of two up to 0xffff, i.e. 32768. */
    public static final int MAX_VRING_NUM = SplitRing.MAX_QUEUE_SIZE;

    /** The device-specific part (vhost-net): told of features and of backends coming and going. */
    public interface Driver {
        /** VHOST_SET_FEATURES accepted; called once per ring with its mutex held. */
        void featuresChanged(VhostVirtqueue vq, long features);

        /** A backend now runs the ring (ring mutex held): hook it up, e.g. listen on it. */
        void backendStarted(VhostVirtqueue vq, NetBackend backend);

        /** The backend leaves the ring (ring mutex held): unhook it. */
        void backendStopped(VhostVirtqueue vq, NetBackend backend);
    }

    private final ReentrantLock mutex = new ReentrantLock();
    private final VhostVirtqueue[] vqs;
    private final WorkerFactory factory;
    private final WorkerFactory kthreadFactory;
    private final long supportedFeatures;
    private final Driver driver;

    // Guarded by mutex.
    private Mm ownerMm;
    private Task ownerTask;
    private boolean forkFromOwner;
    private GuestMemory memory;
    private long features;
    private final TreeMap<Integer, VhostWorker> workers = new TreeMap<>();
    private final List<Worker> threads = new ArrayList<>();
    private boolean released;

    /**
     * @param handlers one handler per ring: what a kick on that ring runs
     * @param factory the worker model
     * @param kthreadFactory what SET_FORK_FROM_OWNER 0 switches to (null: refuse with EINVAL)
     */
    public VhostDevice(VhostWork.Fn[] handlers, WorkerFactory factory, WorkerFactory kthreadFactory,
                       long supportedFeatures, Driver driver) {
        this.driver = driver;
        this.vqs = new VhostVirtqueue[handlers.length];
        for (int i = 0; i < handlers.length; i++) {
            vqs[i] = new VhostVirtqueue(i, handlers[i]);
        }
        this.factory = factory;
        this.kthreadFactory = kthreadFactory;
        this.supportedFeatures = supportedFeatures;
        this.forkFromOwner = !isKthreadModel(factory);
    }

    private static boolean isKthreadModel(WorkerFactory f) {
        try {
            return WorkerModel.byName(f.modelName()).accounting() == Accounting.KTHREAD;
        } catch (IllegalArgumentException unknownModel) {
            return false;
        }
    }

    public int nvqs() {
        return vqs.length;
    }

    public VhostVirtqueue vq(int index) {
        return vqs[index];
    }

    public String modelName() {
        return forkFromOwner || kthreadFactory == null ? factory.modelName() : kthreadFactory.modelName();
    }

    ReentrantLock mutex() {
        return mutex;
    }

    // ---- ownership ----

    /** vhost_dev_has_owner. */
    public boolean hasOwner() {
        mutex.lock();
        try {
            return ownerMm != null;
        } finally {
            mutex.unlock();
        }
    }

    /** The task that called SET_OWNER, or null. */
    public Task owner() {
        return ownerTask;
    }

    /** vhost_dev_check_owner: EPERM unless the caller shares the owner's address space. */
    void checkOwner(Task caller) throws ErrnoException {
        Mm mm = caller.mm();
        if (ownerMm == null || mm != ownerMm) {
            throw new ErrnoException(Errno.EPERM, caller + " does not own the device");
        }
    }

    /**
     * VHOST_SET_FORK_FROM_OWNER: task mode (true, the default for user-worker models) or kthread mode; only
     * before SET_OWNER (EBUSY after).
     */
    public void setForkFromOwner(Task caller, boolean fork) throws ErrnoException {
        mutex.lock();
        try {
            if (ownerMm != null) {
                throw new ErrnoException(Errno.EBUSY, "already owned");
            }
            if (!fork && kthreadFactory == null && !isKthreadModel(factory)) {
                throw new ErrnoException(Errno.EINVAL, "no kthread model configured for " + factory.modelName());
            }
            if (fork && isKthreadModel(factory)) {
                throw new ErrnoException(Errno.EINVAL, factory.modelName() + " has no task mode");
            }
            forkFromOwner = fork;
        } finally {
            mutex.unlock();
        }
    }

    public boolean forkFromOwner() {
        return forkFromOwner;
    }

    /**
     * VHOST_SET_OWNER: binds the device to the caller's address space and creates the default worker,
     * last, attached to every ring. EBUSY if owned; any worker creation failure (EAGAIN from RLIMIT_NPROC
     * or pids.max...) is reported as ENOMEM, and the device is left unowned with nothing created.
     */
    public void setOwner(Task caller) throws ErrnoException {
        mutex.lock();
        try {
            checkNotReleased();
            if (ownerMm != null) {
                throw new ErrnoException(Errno.EBUSY, "already owned");
            }
            ownerMm = caller.mm();
            ownerTask = caller;
            VhostWorker w;
            try {
                w = createWorker(caller);
            } catch (ErrnoException e) {
                ownerMm = null;
                ownerTask = null;
                DeviceEvents.owner(this, "set-refused", caller, modelName());
                throw new ErrnoException(Errno.ENOMEM, "default worker: " + e.getMessage());
            }
            DeviceEvents.owner(this, "set", caller, modelName());
            for (VhostVirtqueue vq : vqs) {
                attach(vq, w);
            }
        } finally {
            mutex.unlock();
        }
    }

    /** vhost_worker_create: a worker from the current model, started, with the lowest free id. */
    private VhostWorker createWorker(Task caller) throws ErrnoException {
        int id = 0;
        while (workers.containsKey(id)) {
            id++;
        }
        VhostWorker w = new VhostWorker(id);
        WorkerFactory f = forkFromOwner || kthreadFactory == null ? factory : kthreadFactory;
        Worker t = DeviceEvents.createWorker(this, f, caller, w::run, () -> workerKilled(w));
        w.bind(t);
        workers.put(id, w);
        threads.add(t);
        t.start();
        return w;
    }

    /**
     * vhost_worker_killed (6.10+), on the worker's own thread after its owner's SIGKILL: detach it from
     * every ring (later queueing returns false, the device goes inert until reset), then run the work that
     * was already queued, pending flushes included, and let the thread exit.
     */
    private void workerKilled(VhostWorker w) {
        w.mutex().lock();
        try {
            w.markKilled();
            Delays.at(Delays.Point.KILL_BEFORE_DETACH);
            for (VhostVirtqueue vq : vqs) {
                vq.mutex().lock();
                try {
                    if (vq.slot().get() == w) {
                        vq.slot().set(null);
                    }
                } finally {
                    vq.mutex().unlock();
                }
            }
            w.killedRunLeftover();
        } finally {
            w.mutex().unlock();
        }
    }

    /**
     * __vhost_vq_attach_worker: points the ring at {@code w}. A killed target is silently ignored. If the
     * ring was on another worker, waits for the grace period and flushes the old worker, so nothing of the
     * ring runs on it afterwards.
     */
    private void attach(VhostVirtqueue vq, VhostWorker w) {
        w.mutex().lock();
        VhostWorker old;
        try {
            if (w.isKilled()) {
                return;
            }
            vq.mutex().lock();
            try {
                old = vq.slot().set(w);
            } finally {
                vq.mutex().unlock();
            }
        } finally {
            w.mutex().unlock();
        }
        if (old == null || old == w) {
            return;
        }
        old.mutex().lock();
        try {
            if (!old.isKilled()) {
                old.flushLocked();
            }
        } finally {
            old.mutex().unlock();
        }
    }

    // ---- the 6.5 worker calls ----

    private void checkWorkerCall(Task caller) throws ErrnoException {
        checkNotReleased();
        if (ownerMm == null) {
            throw new ErrnoException(Errno.EINVAL, "no owner");
        }
        checkOwner(caller);
    }

    private VhostVirtqueue ring(int index) throws ErrnoException {
        if (index < 0 || index >= vqs.length) {
            throw new ErrnoException(Errno.ENOBUFS, "ring " + index + " of " + vqs.length);
        }
        return vqs[index];
    }

    /**
     * VHOST_NEW_WORKER: another worker of the owner, counted against its limits like the default one;
     * returns its id. EFAULT in kthread mode (kthreads would escape RLIMIT_NPROC); ENOMEM if creation fails.
     */
    public int newWorker(Task caller) throws ErrnoException {
        mutex.lock();
        try {
            checkWorkerCall(caller);
            if (!forkFromOwner) {
                throw new ErrnoException(Errno.EFAULT, "NEW_WORKER in kthread mode");
            }
            try {
                return createWorker(caller).id();
            } catch (ErrnoException e) {
                throw new ErrnoException(Errno.ENOMEM, "new worker: " + e.getMessage());
            }
        } finally {
            mutex.unlock();
        }
    }

    /** VHOST_FREE_WORKER: ENODEV if unknown, EBUSY if attached to a ring or killed. */
    public void freeWorker(Task caller, int workerId) throws ErrnoException {
        mutex.lock();
        try {
            checkWorkerCall(caller);
            VhostWorker w = workers.get(workerId);
            if (w == null) {
                throw new ErrnoException(Errno.ENODEV, "worker " + workerId);
            }
            w.mutex().lock();
            try {
                if (w.attachmentCount() != 0 || w.isKilled()) {
                    throw new ErrnoException(Errno.EBUSY, "worker " + workerId + (w.isKilled() ? " killed" : " attached"));
                }
            } finally {
                w.mutex().unlock();
            }
            destroyWorker(w);
        } finally {
            mutex.unlock();
        }
    }

    /** VHOST_ATTACH_VRING_WORKER: ENOBUFS bad ring, ENODEV unknown worker; a killed worker is ignored. */
    public void attachVringWorker(Task caller, int index, int workerId) throws ErrnoException {
        mutex.lock();
        try {
            checkWorkerCall(caller);
            VhostVirtqueue vq = ring(index);
            VhostWorker w = workers.get(workerId);
            if (w == null) {
                throw new ErrnoException(Errno.ENODEV, "worker " + workerId);
            }
            attach(vq, w);
        } finally {
            mutex.unlock();
        }
    }

    /** VHOST_GET_VRING_WORKER: the id of the ring's worker; EINVAL if it has none. */
    public int getVringWorker(Task caller, int index) throws ErrnoException {
        mutex.lock();
        try {
            checkWorkerCall(caller);
            VhostWorker w = ring(index).worker();
            if (w == null) {
                throw new ErrnoException(Errno.EINVAL, "ring " + index + " has no worker");
            }
            return w.id();
        } finally {
            mutex.unlock();
        }
    }

    /** The workers alive now, by id (a snapshot). */
    public List<VhostWorker> workers() {
        mutex.lock();
        try {
            return List.copyOf(workers.values());
        } finally {
            mutex.unlock();
        }
    }

    private void destroyWorker(VhostWorker w) {
        workers.remove(w.id());
        Worker t = w.thread();
        threads.remove(t);
        t.stop();
        DeviceEvents.workerExited(modelName(), ownerTask, t, t.isKilled() ? "killed" : "stopped");
        // Whatever got queued after the last flush and was not run before the stop is cancelled, not left
        // QUEUED on a dead list (see VhostWorker.cancelPending).
        w.cancelPending();
    }

    // ---- memory, features, rings ----

    /** VHOST_SET_MEM_TABLE: the guest memory rings and buffers live in. */
    public void setMemTable(Task caller, GuestMemory mem) throws ErrnoException {
        mutex.lock();
        try {
            checkCall(caller);
            if (mem == null || mem.regionCount() == 0) {
                throw new ErrnoException(Errno.EINVAL, "empty memory table");
            }
            memory = mem;
        } finally {
            mutex.unlock();
        }
    }

    public GuestMemory memory() {
        return memory;
    }

    /** VHOST_GET_FEATURES. */
    public long getFeatures() {
        return supportedFeatures;
    }

    /** VHOST_SET_FEATURES: EOPNOTSUPP for a bit the device does not offer. */
    public void setFeatures(Task caller, long f) throws ErrnoException {
        mutex.lock();
        try {
            checkCall(caller);
            if ((f & ~supportedFeatures) != 0) {
                throw new ErrnoException(Errno.EOPNOTSUPP, "features 0x" + Long.toHexString(f & ~supportedFeatures));
            }
            features = f;
            for (VhostVirtqueue vq : vqs) {
                vq.mutex().lock();
                try {
                    driver.featuresChanged(vq, f);
                } finally {
                    vq.mutex().unlock();
                }
            }
        } finally {
            mutex.unlock();
        }
    }

    public long features() {
        return features;
    }

    /** VIRTIO_F_RING_PACKED negotiated: the rings use the packed layout. */
    public boolean packed() {
        return (features & (1L << F_RING_PACKED)) != 0;
    }

    /** VHOST_SET_VRING_NUM: EBUSY while a backend runs the ring; EINVAL unless a power of two up to 32768. */
    public void setVringNum(Task caller, int index, int num) throws ErrnoException {
        VhostVirtqueue vq = lockRing(caller, index);
        try {
            if (vq.backend() != null) {
                throw new ErrnoException(Errno.EBUSY, "ring " + index + " running");
            }
            // A packed ring need not be a power of two (virtio 1.2 §2.8).
            if (num <= 0 || num > MAX_VRING_NUM || (num & (num - 1)) != 0 && !packed()) {
                throw new ErrnoException(Errno.EINVAL, "ring size " + num);
            }
            vq.setNum(num);
        } finally {
            unlockRing(vq);
        }
    }

    /**
     * VHOST_SET_VRING_ADDR: guest-physical addresses of the descriptor table (16-byte aligned), avail ring
     * (2) and used ring (4); EINVAL if misaligned.
     */
    public void setVringAddr(Task caller, int index, long desc, long avail, long used) throws ErrnoException {
        VhostVirtqueue vq = lockRing(caller, index);
        try {
            int availAlign = packed() ? PackedRing.EVENT_ALIGN : SplitRing.AVAIL_ALIGN;
            if ((desc & (SplitRing.DESC_ALIGN - 1)) != 0 || (avail & (availAlign - 1)) != 0
                    || (used & (SplitRing.USED_ALIGN - 1)) != 0) {
                throw new ErrnoException(Errno.EINVAL, "ring " + index + " addresses misaligned");
            }
            if (vq.backend() != null) {
                throw new ErrnoException(Errno.EBUSY, "ring " + index + " running");
            }
            vq.setAddr(desc, avail, used);
        } finally {
            unlockRing(vq);
        }
    }

    /** VHOST_SET_VRING_BASE: where popping starts; EBUSY while running; EINVAL above 0xffff. */
    public void setVringBase(Task caller, int index, int base) throws ErrnoException {
        VhostVirtqueue vq = lockRing(caller, index);
        try {
            if (vq.backend() != null) {
                throw new ErrnoException(Errno.EBUSY, "ring " + index + " running");
            }
            if (packed()) {
                // Bits 16-31 (the used position) are not taken: used restarts at the avail position with
                // nothing in flight, as DPDK and QEMU restore a packed ring.
                base &= 0xffff;
            }
            if (base < 0 || base > 0xffff) {
                throw new ErrnoException(Errno.EINVAL, "base " + base);
            }
            vq.setBase(base);
        } finally {
            unlockRing(vq);
        }
    }

    /** VHOST_GET_VRING_BASE: the next avail index the device would pop. */
    public int getVringBase(Task caller, int index) throws ErrnoException {
        VhostVirtqueue vq = lockRing(caller, index);
        try {
            return vq.base();
        } finally {
            unlockRing(vq);
        }
    }

    /**
     * VHOST_SET_VRING_KICK: the eventfd the guest kicks (null = -1, none). The ring's poll moves to it; a
     * kick already pending on it queues the handler at once.
     */
    public void setVringKick(Task caller, int index, Notifier kick) throws ErrnoException {
        VhostVirtqueue vq = lockRing(caller, index);
        try {
            if (vq.kick() != kick) {
                vq.poll().stop();
                vq.setKick(kick);
                if (kick != null) {
                    vq.poll().start(kick);
                }
            }
        } finally {
            unlockRing(vq);
        }
    }

    /** VHOST_SET_VRING_CALL: the eventfd signalled as the guest's interrupt (null = none). */
    public void setVringCall(Task caller, int index, Notifier call) throws ErrnoException {
        VhostVirtqueue vq = lockRing(caller, index);
        try {
            vq.setCall(call);
        } finally {
            unlockRing(vq);
        }
    }

    /** VHOST_SET_VRING_ERR: the eventfd signalled when the ring breaks (null = none). */
    public void setVringErr(Task caller, int index, Notifier err) throws ErrnoException {
        VhostVirtqueue vq = lockRing(caller, index);
        try {
            vq.setErr(err);
        } finally {
            unlockRing(vq);
        }
    }

    /** VHOST_SET_VRING_BUSYLOOP_TIMEOUT: busy-poll microseconds for the ring (0 = off, the default). */
    public void setVringBusyloopTimeout(Task caller, int index, long micros) throws ErrnoException {
        VhostVirtqueue vq = lockRing(caller, index);
        try {
            if (micros < 0) {
                throw new ErrnoException(Errno.EINVAL, "timeout " + micros);
            }
            vq.setBusyPollNanos(micros * 1000);
        } finally {
            unlockRing(vq);
        }
    }

    private VhostVirtqueue lockRing(Task caller, int index) throws ErrnoException {
        mutex.lock();
        try {
            checkCall(caller);
            VhostVirtqueue vq = ring(index);
            vq.mutex().lock();
            return vq;
        } catch (ErrnoException | RuntimeException e) {
            mutex.unlock();
            throw e;
        }
    }

    private void unlockRing(VhostVirtqueue vq) {
        vq.mutex().unlock();
        mutex.unlock();
    }

    /** Owner check of every call but SET_OWNER (vhost_dev_ioctl): EPERM unless the caller is the owner. */
    void checkCall(Task caller) throws ErrnoException {
        checkNotReleased();
        checkOwner(caller);
    }

    private void checkNotReleased() throws ErrnoException {
        if (released) {
            throw new ErrnoException(Errno.EBADF, "device released");
        }
    }

    /**
     * The device-independent part of SET_BACKEND (vhost_net_set_backend): EPERM if not the owner, ENOBUFS
     * for a bad ring, EFAULT if the ring is not set up or does not lie in guest memory (vhost_vq_init_access).
     * A null backend (fd -1) stops the ring. Replacing or removing a backend flushes the ring's worker, so
     * nothing of the old one runs afterwards; a new backend runs the handler once, as vhost_net_enable_vq's
     * poll of an already ready socket does.
     */
    public void setBackend(Task caller, int index, NetBackend backend) throws ErrnoException {
        VhostVirtqueue vq;
        NetBackend old;
        mutex.lock();
        try {
            checkCall(caller);
            vq = ring(index);
            vq.mutex().lock();
            try {
                old = vq.backend();
                if (old == backend) {
                    return;
                }
                if (old != null) {
                    stopRing(vq, old);
                }
                if (backend != null) {
                    startRing(vq, backend);
                }
            } finally {
                vq.mutex().unlock();
            }
            if (old != null) {
                VhostWorker w = vq.worker();
                if (w != null) {
                    w.flush();
                }
            }
        } finally {
            mutex.unlock();
        }
        if (backend != null) {
            vq.queueHandler();
        }
    }

    private void startRing(VhostVirtqueue vq, NetBackend backend) throws ErrnoException {
        if (memory == null || vq.num() == 0 || !vq.isAddrSet()) {
            throw new ErrnoException(Errno.EFAULT, "ring " + vq.index() + " not set up");
        }
        RingError e = vq.initAccess(memory, (features & (1L << F_EVENT_IDX)) != 0,
                (features & (1L << F_INDIRECT_DESC)) != 0, packed(), (features & (1L << F_IN_ORDER)) != 0);
        if (e != RingError.NONE) {
            vq.stopAccess();
            throw new ErrnoException(Errno.EFAULT, "ring " + vq.index() + ": " + e.rule());
        }
        driver.featuresChanged(vq, features);
        vq.setBackend(backend);
        driver.backendStarted(vq, backend);
    }

    private void stopRing(VhostVirtqueue vq, NetBackend old) {
        driver.backendStopped(vq, old);
        vq.setBackend(null);
        vq.stopAccess();
    }

    /**
     * vhost_dev_flush: waits for the work queued so far on every worker. With the device mutex held for the
     * whole flush, as vhost_dev_flush runs under dev->mutex: a flush that let go of it after picking the
     * workers could queue its completion on a worker that a racing RESET_OWNER or release then stopped
     * before it ran the completion (the loop tests STOP before fn) and whose list the destroy cancelled, so
     * the flush waited forever.
     */
    public void flush() {
        mutex.lock();
        try {
            for (VhostWorker w : List.copyOf(workers.values())) {
                w.flush();
            }
        } finally {
            mutex.unlock();
        }
    }

    /**
     * VHOST_RESET_OWNER (the device-independent part, vhost_dev_cleanup): stops polls, flushes, frees every
     * worker and forgets owner, memory and features; the rings keep their sizes and addresses.
     */
    void cleanup() {
        for (VhostVirtqueue vq : vqs) {
            vq.mutex().lock();
            try {
                vq.poll().stop();
                vq.setKick(null);
                vq.setCall(null);
                vq.setErr(null);
                NetBackend b = vq.backend();
                if (b != null) {
                    stopRing(vq, b);
                }
            } finally {
                vq.mutex().unlock();
            }
        }
        flush();
        for (VhostVirtqueue vq : vqs) {
            vq.mutex().lock();
            try {
                vq.slot().set(null);
            } finally {
                vq.mutex().unlock();
            }
        }
        for (VhostWorker w : List.copyOf(workers.values())) {
            destroyWorker(w);
        }
        DeviceEvents.owner(this, "reset", ownerTask, modelName());
        ownerMm = null;
        ownerTask = null;
        memory = null;
        features = 0;
        forkFromOwner = !isKthreadModel(factory);
    }

    /**
     * VHOST_RESET_OWNER: stops every ring, flushes, frees every worker and forgets the owner; after an owner's
     * SIGKILL this is what brings the inert device back.
     */
    public void resetOwner(Task caller) throws ErrnoException {
        mutex.lock();
        try {
            checkCall(caller);
            cleanup();
        } finally {
            mutex.unlock();
        }
    }

    /** The device's file was closed (release): stop everything and free every worker. Idempotent. */
    @Override
    public void close() {
        mutex.lock();
        try {
            if (released) {
                return;
            }
            cleanup();
            released = true;
        } finally {
            mutex.unlock();
        }
    }

    public boolean isReleased() {
        return released;
    }
}
