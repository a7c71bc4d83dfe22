package dev.loomvisor.vmm;

import dev.loomvisor.core.ErrnoException;
import dev.loomvisor.core.KernelCloneArgs;
import dev.loomvisor.core.Process;
import dev.loomvisor.core.Task;
import dev.loomvisor.core.Carrier;
import dev.loomvisor.vmm.driver.GuestAllocator;
import dev.loomvisor.vmm.driver.GuestNetDriver;
import dev.loomvisor.vmm.driver.QueuePairDriver;
import dev.loomvisor.vmm.driver.RxSink;
import dev.loomvisor.vmm.driver.TrafficSource;
import dev.loomvisor.vmm.memory.GuestMemory;
import dev.loomvisor.vmm.net.DeviceError;
import dev.loomvisor.vmm.net.MmioTransport;
import dev.loomvisor.vmm.net.DeviceBackend;
import dev.loomvisor.vmm.net.NetFeatures;
import dev.loomvisor.vmm.net.VirtioNetDevice;
import dev.loomvisor.vmm.virtio.RingLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.locks.ReentrantLock;

/**
 * A virtual machine: guest memory, virtio-net devices behind mmio transports, the guest driver for each, and
 * vCPUs. The VM belongs to an emulated VMM {@link Process} (QEMU's role): each vCPU is a thread of that
 * process, cloned from it with pthread's flags through {@code copyProcess}, so vCPUs count against the
 * owner's RLIMIT_NPROC and pids cgroup exactly as QEMU's vCPU threads do, and die with it.
 *
 * <p>{@link #stop()} (and {@link #close()}) stops the vCPUs, then resets every device, which takes its
 * queues back from its backend (vhost) before returning; {@link #close()} also frees guest memory.
 */
public final class VM implements AutoCloseable {

    /** One virtio-net device of the VM. */
    public record NetSpec(byte[] mac, int pairs, int queueMax, long offered, DeviceBackend backend,
                          GuestNetDriver.Options driverOptions) {
        /** A single-pair device with the usual features and the driver's defaults. */
        public static NetSpec of(byte[] mac, DeviceBackend backend) {
            return new NetSpec(mac, 1, 256, NetFeatures.VERSION_1 | NetFeatures.MAC | NetFeatures.STATUS
                    | NetFeatures.MRG_RXBUF | NetFeatures.EVENT_IDX | NetFeatures.INDIRECT_DESC,
                    backend, GuestNetDriver.Options.defaults());
        }

        /** The device offering the ring layout {@code ring} and the driver asking for it. */
        public NetSpec ring(RingLayout ring) {
            long bit = RingLayout.PACKED.feature();
            return new NetSpec(mac, pairs, queueMax, (offered & ~bit) | ring.feature(), backend,
                    driverOptions.withFeature(bit, ring == RingLayout.PACKED));
        }
    }

    private final String name;
    private final Process owner;
    private final GuestMemory memory;
    private final Carrier carrier;
    private final List<VirtioNetDevice> devices = new ArrayList<>();
    private final List<GuestNetDriver> drivers = new ArrayList<>();
    private final List<Task> vcpus = new ArrayList<>();
    private final ReentrantLock lock = new ReentrantLock();
    private volatile boolean running;
    private boolean closed;

    private VM(String name, Process owner, GuestMemory memory, Carrier carrier, List<NetSpec> nets) {
        this.name = name;
        this.owner = owner;
        this.memory = memory;
        this.carrier = carrier;
        GuestAllocator allocator = GuestAllocator.of(memory);
        for (NetSpec spec : nets) {
            VirtioNetDevice d = new VirtioNetDevice(memory, spec.mac(), spec.pairs(), spec.queueMax(), spec.offered());
            if (spec.backend() != null) {
                d.setBackend(spec.backend());
            }
            devices.add(d);
            drivers.add(new GuestNetDriver(memory, new MmioTransport(d), allocator, spec.driverOptions()));
        }
    }

    public static Builder builder(String name, Process owner) {
        return new Builder(name, owner);
    }

    public String name() {
        return name;
    }

    /** The VMM process the VM belongs to. */
    public Process owner() {
        return owner;
    }

    public GuestMemory memory() {
        return memory;
    }

    public int deviceCount() {
        return devices.size();
    }

    public VirtioNetDevice device(int i) {
        return devices.get(i);
    }

    public GuestNetDriver driver(int i) {
        return drivers.get(i);
    }

    /** Boots the guest's drivers: every device brought up through its transport. */
    public DeviceError start() {
        lock.lock();
        try {
            if (closed) {
                throw new IllegalStateException(name + " is closed");
            }
            running = true;
            for (GuestNetDriver d : drivers) {
                DeviceError e = d.probe();
                if (e != DeviceError.OK) {
                    return e;
                }
            }
            return DeviceError.OK;
        } finally {
            lock.unlock();
        }
    }

    /**
     * Starts a vCPU serving queue pair {@code pair} of device {@code dev}: transmits from {@code source}
     * (null: none), hands received frames to {@code sink}, answers PINGs if {@code echo}.
     *
     * @throws ErrnoException if the owner may not create another thread (EAGAIN from RLIMIT_NPROC, pids.max)
     */
    public Task startVcpu(int dev, int pair, TrafficSource source, RxSink sink, boolean echo) throws ErrnoException {
        QueuePairDriver p = pairDriver(dev, pair);
        p.setSink(sink);
        p.setEcho(echo);
        p.transmit(source);
        return startVcpu(dev, pair);
    }

    /**
     * Starts a vCPU serving queue pair {@code pair} of device {@code dev} with the pair driver's current
     * settings (traffic, echo, sinks), which may be changed while it runs.
     *
     * @throws ErrnoException if the owner may not create another thread (EAGAIN from RLIMIT_NPROC, pids.max)
     */
    public Task startVcpu(int dev, int pair) throws ErrnoException {
        lock.lock();
        try {
            if (!running) {
                throw new IllegalStateException(name + " is not started");
            }
            QueuePairDriver p = drivers.get(dev).pair(pair);
            p.clearStop();
            KernelCloneArgs args = new KernelCloneArgs()
                    .flags(KernelCloneArgs.PTHREAD_FLAGS)
                    .exitSignal(null) // a thread of the group: no signal to a parent
                    .name("vcpu" + vcpus.size())
                    .carrier(carrier)
                    .fn(arg -> {
                        Task self = Task.current();
                        p.run(() -> running && !self.fatalSignalPending());
                        return 0;
                    }, null);
            Task t = owner.kernel().copyProcess(owner.mainTask(), args);
            vcpus.add(t);
            t.start();
            return t;
        } finally {
            lock.unlock();
        }
    }

    private QueuePairDriver pairDriver(int dev, int pair) {
        lock.lock();
        try {
            if (!running) {
                throw new IllegalStateException(name + " is not started");
            }
            return drivers.get(dev).pair(pair);
        } finally {
            lock.unlock();
        }
    }

    /** The vCPU tasks started so far. */
    public List<Task> vcpus() {
        lock.lock();
        try {
            return List.copyOf(vcpus);
        } finally {
            lock.unlock();
        }
    }

    public boolean isRunning() {
        return running;
    }

    /**
     * Stops the vCPUs and waits for them; the devices keep running (their rings stay with the backend), so
     * vCPUs may be started again.
     */
    public void stopVcpus() {
        lock.lock();
        try {
            for (GuestNetDriver d : drivers) {
                for (int p = 0; p < d.pairCount(); p++) {
                    d.pair(p).requestStop();
                }
            }
            for (Task t : vcpus) {
                Thread th = t.thread();
                if (th != null) {
                    th.interrupt();
                }
            }
            for (Task t : vcpus) {
                t.awaitExit();
            }
            vcpus.clear();
        } finally {
            lock.unlock();
        }
    }

    /** Stops the vCPUs (and waits for them), then resets every device so its backend lets go of the rings. */
    public void stop() {
        lock.lock();
        try {
            running = false;
            stopVcpus();
            for (GuestNetDriver d : drivers) {
                d.reset();
            }
        } finally {
            lock.unlock();
        }
    }

    @Override
    public void close() {
        lock.lock();
        try {
            if (closed) {
                return;
            }
            stop();
            closed = true;
            memory.close();
        } finally {
            lock.unlock();
        }
    }

    /** Builds a {@link VM}; memory defaults to 64 MiB anonymous at guest-physical 0, vCPUs to virtual threads. */
    public static final class Builder {
        private final String name;
        private final Process owner;
        private long memorySize = 64L << 20;
        private GuestMemory memory;
        private boolean memfd;
        private Carrier carrier = Carrier.VIRTUAL;
        private final List<NetSpec> nets = new ArrayList<>();

        private Builder(String name, Process owner) {
            this.name = name;
            this.owner = java.util.Objects.requireNonNull(owner, "a VM needs its VMM process");
        }

        public Builder memory(long bytes) {
            this.memorySize = bytes;
            return this;
        }

        /** Back guest memory by a memfd, so another process (vhost-user) could map it. */
        public Builder memfd(boolean on) {
            this.memfd = on;
            return this;
        }

        /** Use this memory instead of allocating one; the VM closes it. */
        public Builder memory(GuestMemory m) {
            this.memory = m;
            return this;
        }

        public Builder carrier(Carrier c) {
            this.carrier = c;
            return this;
        }

        public Builder net(NetSpec spec) {
            nets.add(spec);
            return this;
        }

        public VM build() {
            GuestMemory m = memory;
            if (m == null) {
                m = memfd ? GuestMemory.builder().memfd(0, memorySize, name).build()
                        : GuestMemory.anonymous(0, memorySize);
            }
            return new VM(name, owner, m, carrier, nets);
        }
    }
}
