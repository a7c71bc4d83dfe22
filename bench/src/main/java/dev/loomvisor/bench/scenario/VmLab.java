package dev.loomvisor.bench.scenario;

import dev.loomvisor.core.ErrnoException;
import dev.loomvisor.core.Process;
import dev.loomvisor.core.Carrier;
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
import java.util.List;
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

    /** How every VM of the lab is set up. */
    public record Options(int queueSize, boolean eventIdx, boolean mrgRxbuf, int rxBufferSize,
                          long busyPollMicros, int switchQueueBytes, Carrier vcpuCarrier, IdleStrategy busyIdle) {

        /** 256-entry rings, EVENT_IDX and MRG_RXBUF on, 2 KiB RX buffers, no busy-poll, 256 KiB port queues. */
        public static Options defaults() {
            return new Options(256, true, true, 2048, 0, 1 << 18, Carrier.VIRTUAL, null);
        }

        public Options withBusyPoll(long micros) {
            return new Options(queueSize, eventIdx, mrgRxbuf, rxBufferSize, micros, switchQueueBytes, vcpuCarrier,
                    busyIdle);
        }
    }

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

    /** VMs of the VMM process {@code vmm}, their vhost-net devices served by {@code factory}'s workers. */
    public VmLab(Process vmm, WorkerFactory factory, Options options) {
        this.vmm = vmm;
        this.factory = factory;
        this.options = options;
        this.sw = new L2Switch(options.switchQueueBytes(), 1024);
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
        long mac = Frames.localMac(vms.size() + 1);
        L2Switch.Port port = sw.addPort(name);
        // --pcap on a measuring command: the port's frames both ways go to the capture (unwrapped without it).
        VmmBackend backend = new VmmBackend(vmm.mainTask(), factory, PcapSwitchCapture.wrap(port), options.busyPollMicros(),
                options.busyIdle());
        long wanted = NetFeatures.VERSION_1 | NetFeatures.MAC | NetFeatures.STATUS
                | (options.eventIdx() ? NetFeatures.EVENT_IDX : 0) | (options.mrgRxbuf() ? NetFeatures.MRG_RXBUF : 0);
        var driverOptions = new GuestNetDriver.Options(options.queueSize(), wanted, 1, options.rxBufferSize());
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
        vms.add(v);
        return v;
    }

    /** Rings, RX buffers and one TX buffer per descriptor, with room to spare. */
    private static long memoryFor(Options o) {
        long perSlot = Math.max(o.rxBufferSize(), 1600) + 1600 + 64;
        long bytes = (long) o.queueSize() * perSlot * 2 + (1 << 20);
        return (bytes + (1 << 20) - 1) & -(1L << 20);
    }

    /** The VMs added so far (empty after close). */
    public List<Vm> vms() {
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
        for (Vm vm : vms) {
            vm.requestStop();
        }
        for (Vm vm : vms) {
            vm.stop();
        }
    }

    /** Stops the vCPUs, resets every device (vhost-net lets go of its rings) and frees guest memory. */
    @Override
    public void close() {
        stopVcpus();
        for (Vm vm : vms) {
            vm.vm().close();
        }
        vms.clear();
    }
}
