package dev.loomvisor.bench.scenario;

import dev.loomvisor.core.ErrnoException;
import dev.loomvisor.core.Process;
import dev.loomvisor.core.Carrier;
import dev.loomvisor.core.timer.HrtimerBase;
import dev.loomvisor.core.worker.WorkerFactory;
import dev.loomvisor.vhost.RingCounter;
import dev.loomvisor.vhost.backend.Frames;
import dev.loomvisor.vhost.backend.L2Switch;
import dev.loomvisor.vhost.backend.PcapSwitchCapture;
import dev.loomvisor.vhost.backend.L2Switch.PortCounter;
import dev.loomvisor.vhost.net.VhostNet;
import dev.loomvisor.vhost.net.VmmBackend;
import dev.loomvisor.vmm.VM;
import dev.loomvisor.vmm.driver.GuestNetDriver;
import dev.loomvisor.vmm.driver.PairStats;
import dev.loomvisor.vmm.driver.QueuePairDriver;
import dev.loomvisor.vmm.driver.TrafficSource;
import dev.loomvisor.vmm.net.DeviceError;
import dev.loomvisor.vmm.net.NetFeatures;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.Semaphore;
import org.agrona.concurrent.IdleStrategy;

/**
 * Emulated VMs on one L2 switch, the guest side of every data-path benchmark. Each VM belongs to one VMM
 * {@link Process} (its vCPUs are threads cloned from the VMM's main task) and has one virtio-net device whose
 * backend is a {@link VmmBackend}: on DRIVER_OK it opens vhost-net as the VMM, served by the lab's worker
 * model, and attaches the VM's switch port.
 *
 * <pre>
 *   guest driver --TX ring--> vhost-net --port--> switch --port queue--> vhost-net --RX ring--> guest driver
 * </pre>
 */
public final class VmLab implements AutoCloseable {

    /**
     * How every VM of the lab is set up.
     *
     * @param rxBuffers RX buffers each guest keeps posted (0: one per descriptor)
     * @param txBuffers TX buffers each guest keeps in flight (0: one per descriptor)
     */
    public record Options(int queueSize, boolean eventIdx, boolean mrgRxbuf, int rxBufferSize,
                          long busyPollMicros, int switchQueueBytes, Carrier vcpuCarrier, IdleStrategy busyIdle,
                          int rxBuffers, int txBuffers) {

        public Options(int queueSize, boolean eventIdx, boolean mrgRxbuf, int rxBufferSize, long busyPollMicros,
                       int switchQueueBytes, Carrier vcpuCarrier, IdleStrategy busyIdle) {
            this(queueSize, eventIdx, mrgRxbuf, rxBufferSize, busyPollMicros, switchQueueBytes, vcpuCarrier,
                    busyIdle, 0, 0);
        }

        /** 256-entry rings, EVENT_IDX and MRG_RXBUF on, 2 KiB RX buffers, no busy-poll, 256 KiB port queues. */
        public static Options defaults() {
            return new Options(256, true, true, 2048, 0, 1 << 18, Carrier.VIRTUAL, null);
        }

        public Options withBusyPoll(long micros) {
            return new Options(queueSize, eventIdx, mrgRxbuf, rxBufferSize, micros, switchQueueBytes, vcpuCarrier,
                    busyIdle, rxBuffers, txBuffers);
        }

        public Options withQueueSize(int size) {
            return new Options(size, eventIdx, mrgRxbuf, rxBufferSize, busyPollMicros, switchQueueBytes,
                    vcpuCarrier, busyIdle, rxBuffers, txBuffers);
        }

        /** RX and TX buffers per guest (0: one per descriptor). */
        public Options withBuffers(int rx, int tx) {
            return new Options(queueSize, eventIdx, mrgRxbuf, rxBufferSize, busyPollMicros, switchQueueBytes,
                    vcpuCarrier, busyIdle, rx, tx);
        }

        public Options withSwitchQueueBytes(int bytes) {
            return new Options(queueSize, eventIdx, mrgRxbuf, rxBufferSize, busyPollMicros, bytes, vcpuCarrier,
                    busyIdle, rxBuffers, txBuffers);
        }
    }

    /** VMs set up or torn down at once by {@link #addVms} and {@link #close}: enough to overlap their waits. */
    private static final int PARALLEL_SETUP = 16;

    /** One VM of the lab: the VM, its vhost-net backend, its switch port and its MAC. */
    public static final class Vm {
        private final VM vm;
        private final VmmBackend backend;
        private final L2Switch.Port port;
        private final long mac;

        Vm(VM vm, VmmBackend backend, L2Switch.Port port, long mac) {
            this.vm = vm;
            this.backend = backend;
            this.port = port;
            this.mac = mac;
        }

        public VM vm() {
            return vm;
        }

        public String name() {
            return vm.name();
        }

        public long mac() {
            return mac;
        }

        /** The guest driver of the VM's one queue pair. */
        public QueuePairDriver driver() {
            return vm.driver(0).pair(0);
        }

        public PairStats stats() {
            return driver().stats();
        }

        /** The vhost-net device serving the VM's NIC. */
        public VhostNet net() {
            return backend.net();
        }

        public L2Switch.Port port() {
            return port;
        }

        /** Starts sending {@code count} frames of {@code length} bytes to {@code peer}, one every interval (0: closed loop). */
        public void send(long peer, int length, long count, double intervalNanos, boolean stampIntended) {
            TrafficSource s = TrafficSource.paced(length, intervalNanos, count, macBytes(peer));
            driver().transmit(stampIntended ? s.stampIntended() : s);
        }

        /** Starts the vCPU if none runs. */
        public void start() throws ErrnoException {
            if (vm.vcpus().isEmpty()) {
                vm.startVcpu(0, 0);
            }
        }

        /** Asks the vCPUs to stop, without waiting. */
        public void requestStop() {
            driver().requestStop();
        }

        /** Stops the vCPUs and waits for them; the device stays up. */
        public void stop() {
            vm.stopVcpus();
        }
    }

    private final Process vmm;
    private final WorkerFactory factory;
    private final Options options;
    private final L2Switch sw;
    private final List<Vm> vms = new ArrayList<>();
    private HrtimerBase pacingClock;

    /** VMs of the VMM process {@code vmm}, their vhost-net devices served by {@code factory}'s workers. */
    public VmLab(Process vmm, WorkerFactory factory, Options options) {
        this.vmm = vmm;
        this.factory = factory;
        this.options = options;
        // Room for the MACs of the largest sweep at a load where the bounded probes always find a slot.
        this.sw = new L2Switch(options.switchQueueBytes(), 1 << 16);
    }

    /** 6 bytes of a 48-bit MAC. */
    public static byte[] macBytes(long mac) {
        byte[] b = new byte[6];
        for (int i = 0; i < 6; i++) {
            b[i] = (byte) (mac >>> (40 - 8 * i));
        }
        return b;
    }

    /**
     * Builds one more VM, boots its driver (which brings vhost-net up through the backend) and fills its RX
     * ring; its MAC is {@link Frames#localMac} of its number plus one. The vCPU is not started.
     */
    public Vm addVm(String name) throws ErrnoException {
        Vm v = newVm(name, vms.size());
        synchronized (this) {
            vms.add(v);
        }
        return v;
    }

    /**
     * Adds {@code count} VMs named {@code prefix} plus their number, set up {@value #PARALLEL_SETUP} at a time
     * on virtual threads (each setup mostly waits: for its vhost worker to be created, for the device to take
     * its rings); they join the lab in number order, MACs as {@link #addVm} would give them. If one fails, the
     * ones that came up are closed and its error is thrown.
     */
    public List<Vm> addVms(String prefix, int count) throws ErrnoException {
        int first = vms.size();
        Vm[] made = new Vm[count];
        Semaphore slots = new Semaphore(PARALLEL_SETUP);
        Throwable failure = null;
        try (ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor()) {
            List<Future<?>> done = new ArrayList<>(count);
            for (int i = 0; i < count; i++) {
                int k = i;
                slots.acquireUninterruptibly();
                done.add(pool.submit(() -> {
                    try {
                        made[k] = newVm(prefix + (first + k), first + k);
                    } finally {
                        slots.release();
                    }
                    return null;
                }));
            }
            for (Future<?> f : done) {
                try {
                    f.get();
                } catch (ExecutionException e) {
                    if (failure == null) {
                        failure = e.getCause();
                    }
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    if (failure == null) {
                        failure = e;
                    }
                }
            }
        }
        if (failure != null) {
            closeAll(Arrays.stream(made).filter(v -> v != null).toList());
            if (failure instanceof ErrnoException e) {
                throw e;
            }
            if (failure instanceof RuntimeException e) {
                throw e;
            }
            if (failure instanceof Error e) {
                throw e;
            }
            throw new IllegalStateException("VM setup interrupted", failure);
        }
        List<Vm> added = List.of(made);
        synchronized (this) {
            vms.addAll(added);
        }
        return added;
    }

    /**
     * The lab's one pacing clock, made on first use with {@link HrtimerBase#DEFAULT_SLACK_NANOS}: every paced
     * vCPU of the lab (those added before and after) arms its send times on it and blocks untimed, instead of
     * each taking a timed park per frame. Closed with the lab.
     */
    public HrtimerBase pacingClock() {
        return pacingClock(HrtimerBase.DEFAULT_SLACK_NANOS);
    }

    /** As {@link #pacingClock()}, made with {@code slackNanos} of slack if it is made by this call. */
    public synchronized HrtimerBase pacingClock(long slackNanos) {
        if (pacingClock == null) {
            pacingClock = new HrtimerBase("vmlab-hrtimer", HrtimerBase.DEFAULT_CAPACITY, slackNanos);
            for (Vm v : vms) {
                v.driver().setPacingClock(pacingClock);
            }
        }
        return pacingClock;
    }

    private Vm newVm(String name, int index) throws ErrnoException {
        long mac = Frames.localMac(index + 1);
        L2Switch.Port port = sw.addPort(name);
        // --pcap on a measuring command: the port's frames both ways go to the capture (unwrapped without it).
        VmmBackend backend = new VmmBackend(vmm.mainTask(), factory, PcapSwitchCapture.wrap(port), options.busyPollMicros(),
                options.busyIdle());
        long wanted = NetFeatures.VERSION_1 | NetFeatures.MAC | NetFeatures.STATUS
                | (options.eventIdx() ? NetFeatures.EVENT_IDX : 0) | (options.mrgRxbuf() ? NetFeatures.MRG_RXBUF : 0);
        var driverOptions = new GuestNetDriver.Options(options.queueSize(), wanted, 1, options.rxBufferSize(),
                options.rxBuffers(), options.txBuffers());
        var spec = new VM.NetSpec(macBytes(mac), 1, options.queueSize(), NetFeatures.VERSION_1 | NetFeatures.MAC
                | NetFeatures.STATUS | NetFeatures.MRG_RXBUF | NetFeatures.EVENT_IDX | NetFeatures.INDIRECT_DESC,
                backend, driverOptions);
        VM vm = VM.builder(name, vmm).memory(memoryFor(options)).carrier(options.vcpuCarrier()).net(spec).build();
        try {
            DeviceError e = vm.start();
            if (backend.failure() != null) {
                throw backend.failure();
            }
            if (e != DeviceError.OK || backend.net() == null) {
                throw new IllegalStateException(name + ": the guest driver could not bring the NIC up: " + e);
            }
        } catch (ErrnoException | RuntimeException e) {
            vm.close();
            throw e;
        }
        Vm v = new Vm(vm, backend, port, mac);
        sw.learn(mac, port); // the guest announced itself: no VM's first frames flood thousands of ports
        HrtimerBase clock;
        synchronized (this) {
            clock = pacingClock;
        }
        if (clock != null) {
            v.driver().setPacingClock(clock);
        }
        return v;
    }

    /** Rings, the RX and TX buffers, with room to spare; mapped, so only what the guest touches costs. */
    private static long memoryFor(Options o) {
        long rxCount = o.rxBuffers() == 0 ? o.queueSize() : Math.min(o.rxBuffers(), o.queueSize());
        long txCount = o.txBuffers() == 0 ? o.queueSize() : Math.min(o.txBuffers(), o.queueSize());
        long bytes = (long) o.queueSize() * 64 * 2 + rxCount * (Math.max(o.rxBufferSize(), 1600) + 64)
                + txCount * (1600 + 64) + (1 << 20);
        return (bytes + (1 << 20) - 1) & -(1L << 20);
    }

    /** The VMs added so far (empty after close). */
    public synchronized List<Vm> vms() {
        return List.copyOf(vms);
    }

    public L2Switch switchboard() {
        return sw;
    }

    public Options options() {
        return options;
    }

    /** Every frame lost from VM {@code from} to VM {@code to} on the way, by any counted reason. */
    public static long dropped(Vm from, Vm to) {
        var ptx = from.port().counters();
        var tx = from.net().tx().counters();
        var rx = to.net().rx().counters();
        return ptx.get(PortCounter.TX_DROP_QUEUE_FULL) + ptx.get(PortCounter.TX_DROP_RUNT)
                + ptx.get(PortCounter.TX_DROP_SAME_PORT) + ptx.get(PortCounter.TX_DROP_TOO_LONG)
                + ptx.get(PortCounter.TX_DROP_NO_PORT)
                + tx.get(RingCounter.DROP_BAD_HEADER) + tx.get(RingCounter.DROP_TOO_BIG)
                + rx.get(RingCounter.DROP_TOO_BIG) + rx.get(RingCounter.DROP_BAD_RX_CHAIN);
    }

    /** Stops every vCPU: all asked first, so no VM keeps the workers busy while another waits for its stop. */
    public void stopVcpus() {
        List<Vm> all = vms();
        for (Vm vm : all) {
            vm.requestStop();
        }
        for (Vm vm : all) {
            vm.stop();
        }
    }

    /**
     * Stops the vCPUs, resets every device (vhost-net lets go of its rings) and frees guest memory, several
     * VMs at a time; then the pacing clock.
     */
    @Override
    public void close() {
        List<Vm> all;
        synchronized (this) {
            all = List.copyOf(vms);
            vms.clear();
        }
        for (Vm vm : all) {
            vm.requestStop();
        }
        closeAll(all);
        HrtimerBase clock;
        synchronized (this) {
            clock = pacingClock;
            pacingClock = null;
        }
        if (clock != null) {
            clock.close();
        }
    }

    /** Closes {@code list}'s VMs, {@value #PARALLEL_SETUP} at a time; each close is the VM's own, in full. */
    private static void closeAll(List<Vm> list) {
        if (list.size() <= 2) {
            list.forEach(v -> v.vm().close());
            return;
        }
        Semaphore slots = new Semaphore(PARALLEL_SETUP);
        try (ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor()) {
            for (Vm v : list) {
                slots.acquireUninterruptibly();
                pool.execute(() -> {
                    try {
                        v.vm().close();
                    } finally {
                        slots.release();
                    }
                });
            }
        }
    }
}
