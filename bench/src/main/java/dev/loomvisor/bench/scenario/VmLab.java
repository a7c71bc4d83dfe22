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
import dev.loomvisor.vmm.virtio.RingLayout;
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
 *
 * <p>With n queue pairs per VM ({@link #VmLab(Process, WorkerFactory, Options, int)}) each NIC offers MQ and
 * the control queue, the guest enables its n pairs with VQ_PAIRS_SET, each pair has its own vCPU and its
 * own vhost-net (so its own worker), and the VM's switch port has n queues: pair k of a sender lands in
 * pair k of its receiver. Every pair of a sending VM is a flow of its own.
 */
public final class VmLab implements AutoCloseable {

    /**
     * How every VM of the lab is set up.
     *
     * @param rxBuffers RX buffers each guest keeps posted (0: one per descriptor)
     * @param txBuffers TX buffers each guest keeps in flight (0: one per descriptor)
     * @param ring      the virtqueue layout each guest driver negotiates (the device offers both)
     */
    public record Options(int queueSize, boolean eventIdx, boolean mrgRxbuf, int rxBufferSize,
                          long busyPollMicros, int switchQueueBytes, Carrier vcpuCarrier, IdleStrategy busyIdle,
                          int rxBuffers, int txBuffers, RingLayout ring) {

        public Options(int queueSize, boolean eventIdx, boolean mrgRxbuf, int rxBufferSize, long busyPollMicros,
                       int switchQueueBytes, Carrier vcpuCarrier, IdleStrategy busyIdle, int rxBuffers,
                       int txBuffers) {
            this(queueSize, eventIdx, mrgRxbuf, rxBufferSize, busyPollMicros, switchQueueBytes, vcpuCarrier,
                    busyIdle, rxBuffers, txBuffers, RingLayout.SPLIT);
        }

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
                    busyIdle, rxBuffers, txBuffers, ring);
        }

        public Options withQueueSize(int size) {
            return new Options(size, eventIdx, mrgRxbuf, rxBufferSize, busyPollMicros, switchQueueBytes,
                    vcpuCarrier, busyIdle, rxBuffers, txBuffers, ring);
        }

        /** RX and TX buffers per guest (0: one per descriptor). */
        public Options withBuffers(int rx, int tx) {
            return new Options(queueSize, eventIdx, mrgRxbuf, rxBufferSize, busyPollMicros, switchQueueBytes,
                    vcpuCarrier, busyIdle, rx, tx, ring);
        }

        public Options withRing(RingLayout layout) {
            return new Options(queueSize, eventIdx, mrgRxbuf, rxBufferSize, busyPollMicros, switchQueueBytes,
                    vcpuCarrier, busyIdle, rxBuffers, txBuffers, layout);
        }

        public Options withSwitchQueueBytes(int bytes) {
            return new Options(queueSize, eventIdx, mrgRxbuf, rxBufferSize, busyPollMicros, bytes, vcpuCarrier,
                    busyIdle, rxBuffers, txBuffers, ring);
        }
    }

    /** VMs set up or torn down at once by {@link #addVms} and {@link #close}: enough to overlap their waits. */
    private static final int PARALLEL_SETUP = 16;

    /** Most queue pairs per VM: a multiqueue tap has at most 256 queues. */
    public static final int MAX_QUEUES = L2Switch.MAX_QUEUES;

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

        /** The guest driver of the VM's queue pair 0. */
        public QueuePairDriver driver() {
            return vm.driver(0).pair(0);
        }

        /** Queue pairs of the VM's NIC. */
        public int queues() {
            return vm.driver(0).pairCount();
        }

        /** The guest driver of queue pair {@code k}. */
        public QueuePairDriver driver(int k) {
            return vm.driver(0).pair(k);
        }

        /** Queue pair 0's counters. */
        public PairStats stats() {
            return driver().stats();
        }

        /** Frames received over every queue pair. */
        public long rxFrames() {
            long n = 0;
            for (int k = 0; k < queues(); k++) {
                n += driver(k).stats().rxFrames();
            }
            return n;
        }

        /** Bytes received over every queue pair. */
        public long rxBytes() {
            long n = 0;
            for (int k = 0; k < queues(); k++) {
                n += driver(k).stats().rxBytes();
            }
            return n;
        }

        /** Frames sent over every queue pair. */
        public long txFrames() {
            long n = 0;
            for (int k = 0; k < queues(); k++) {
                n += driver(k).stats().txFrames();
            }
            return n;
        }

        /** Received frames that were corrupt or out of order, over every queue pair. */
        public long rxBad() {
            long n = 0;
            for (int k = 0; k < queues(); k++) {
                n += driver(k).stats().rxCorrupt() + driver(k).stats().rxOutOfOrder();
            }
            return n;
        }

        /** The vhost-net device serving the VM's queue pair 0. */
        public VhostNet net() {
            return backend.net();
        }

        /** The vhost-net device serving queue pair {@code k}. */
        public VhostNet net(int k) {
            return backend.net(k);
        }

        /** vhost workers serving the VM's NIC now. */
        public int workers() {
            return backend.workerCount();
        }

        public L2Switch.Port port() {
            return port;
        }

        /**
         * Starts sending, on every queue pair, {@code count} frames of {@code length} bytes to {@code peer}, one
         * every interval (0: closed loop).
         */
        public void send(long peer, int length, long count, double intervalNanos, boolean stampIntended) {
            for (int k = 0; k < queues(); k++) {
                TrafficSource s = TrafficSource.paced(length, intervalNanos, count, macBytes(peer));
                driver(k).transmit(stampIntended ? s.stampIntended() : s);
            }
        }

        /** Starts the vCPUs, one per queue pair, if none runs. */
        public void start() throws ErrnoException {
            if (vm.vcpus().isEmpty()) {
                for (int k = 0; k < queues(); k++) {
                    vm.startVcpu(0, k);
                }
            }
        }

        /** Asks the vCPUs to stop, without waiting. */
        public void requestStop() {
            for (int k = 0; k < queues(); k++) {
                driver(k).requestStop();
            }
        }

        /** Stops the vCPUs and waits for them; the device stays up. */
        public void stop() {
            vm.stopVcpus();
        }
    }

    private final Process vmm;
    private final WorkerFactory factory;
    private final Options options;
    private final int queues;
    private final VmmBackend.VringWorkers vringWorkers;
    private final L2Switch sw;
    private final List<Vm> vms = new ArrayList<>();
    private HrtimerBase pacingClock;

    /** VMs of the VMM process {@code vmm}, their vhost-net devices served by {@code factory}'s workers. */
    public VmLab(Process vmm, WorkerFactory factory, Options options) {
        this(vmm, factory, options, 1);
    }

    /** As {@link #VmLab(Process, WorkerFactory, Options)}, each VM's NIC with {@code queues} queue pairs. */
    public VmLab(Process vmm, WorkerFactory factory, Options options, int queues) {
        this(vmm, factory, options, queues, VmmBackend.VringWorkers.PER_PAIR);
    }

    /**
     * As {@link #VmLab(Process, WorkerFactory, Options, int)}, the rings of each pair served as
     * {@code vringWorkers} says (a TX worker of its own per pair where the model allows NEW_WORKER).
     */
    public VmLab(Process vmm, WorkerFactory factory, Options options, int queues,
                 VmmBackend.VringWorkers vringWorkers) {
        if (queues < 1 || queues > MAX_QUEUES) {
            throw new IllegalArgumentException(queues + " queue pairs (1.." + MAX_QUEUES + ")");
        }
        this.vmm = vmm;
        this.factory = factory;
        this.options = options;
        this.queues = queues;
        this.vringWorkers = vringWorkers;
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
                for (int k = 0; k < v.queues(); k++) {
                    v.driver(k).setPacingClock(pacingClock);
                }
            }
        }
        return pacingClock;
    }

    private Vm newVm(String name, int index) throws ErrnoException {
        long mac = Frames.localMac(index + 1);
        L2Switch.Port port = sw.addPort(name, queues);
        // --pcap on a measuring command: the port's frames both ways go to the capture (unwrapped without it).
        VmmBackend backend = new VmmBackend(vmm.mainTask(), factory,
                k -> PcapSwitchCapture.wrap(queues == 1 ? port : port.queue(k)), options.busyPollMicros(),
                options.busyIdle(), vringWorkers);
        // More than one pair: MQ, which needs the control queue (virtio 1.2 §5.1.3.1); one pair stays without.
        long mq = queues > 1 ? NetFeatures.CTRL_VQ | NetFeatures.MQ : 0;
        long wanted = NetFeatures.VERSION_1 | NetFeatures.MAC | NetFeatures.STATUS | mq
                | (options.eventIdx() ? NetFeatures.EVENT_IDX : 0) | (options.mrgRxbuf() ? NetFeatures.MRG_RXBUF : 0)
                | options.ring().feature();
        var driverOptions = new GuestNetDriver.Options(options.queueSize(), wanted, queues, options.rxBufferSize(),
                options.rxBuffers(), options.txBuffers());
        var spec = new VM.NetSpec(macBytes(mac), queues, options.queueSize(), NetFeatures.VERSION_1 | NetFeatures.MAC
                | NetFeatures.STATUS | NetFeatures.MRG_RXBUF | NetFeatures.EVENT_IDX | NetFeatures.INDIRECT_DESC
                | NetFeatures.RING_PACKED | mq,
                backend, driverOptions);
        VM vm = VM.builder(name, vmm).memory(memoryFor(options, queues)).carrier(options.vcpuCarrier()).net(spec).build();
        try {
            DeviceError e = vm.start();
            if (backend.failure() != null) {
                throw backend.failure();
            }
            if (e != DeviceError.OK || backend.netCount() != queues) {
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
            for (int k = 0; k < queues; k++) {
                v.driver(k).setPacingClock(clock);
            }
        }
        return v;
    }

    /** Rings, the RX and TX buffers of every pair, with room to spare; mapped, so only what the guest touches costs. */
    private static long memoryFor(Options o, int queues) {
        long rxCount = o.rxBuffers() == 0 ? o.queueSize() : Math.min(o.rxBuffers(), o.queueSize());
        long txCount = o.txBuffers() == 0 ? o.queueSize() : Math.min(o.txBuffers(), o.queueSize());
        long bytes = queues * ((long) o.queueSize() * 64 * 2 + rxCount * (Math.max(o.rxBufferSize(), 1600) + 64)
                + txCount * (1600 + 64)) + (1 << 20);
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

    /** Queue pairs of each VM's NIC. */
    public int queues() {
        return queues;
    }

    /** Every frame lost from VM {@code from} to VM {@code to} on the way, by any counted reason. */
    public static long dropped(Vm from, Vm to) {
        var ptx = from.port().counters();
        long n = ptx.get(PortCounter.TX_DROP_QUEUE_FULL) + ptx.get(PortCounter.TX_DROP_RUNT)
                + ptx.get(PortCounter.TX_DROP_SAME_PORT) + ptx.get(PortCounter.TX_DROP_TOO_LONG)
                + ptx.get(PortCounter.TX_DROP_NO_PORT);
        for (int k = 0; k < from.queues(); k++) {
            var tx = from.net(k).tx().counters();
            n += tx.get(RingCounter.DROP_BAD_HEADER) + tx.get(RingCounter.DROP_TOO_BIG);
        }
        for (int k = 0; k < to.queues(); k++) {
            var rx = to.net(k).rx().counters();
            n += rx.get(RingCounter.DROP_TOO_BIG) + rx.get(RingCounter.DROP_BAD_RX_CHAIN);
        }
        return n;
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
