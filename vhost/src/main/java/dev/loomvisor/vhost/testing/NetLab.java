package dev.loomvisor.vhost.testing;

import dev.loomvisor.core.ErrnoException;
import dev.loomvisor.core.Task;
import dev.loomvisor.core.worker.WorkerFactory;
import dev.loomvisor.vhost.backend.Frames;
import dev.loomvisor.vhost.backend.L2Switch;
import dev.loomvisor.vhost.net.VhostNet;
import dev.loomvisor.vhost.net.VirtioNet;
import java.util.ArrayList;
import java.util.List;

/**
 * Any number of guests on one switch, each with a vhost-net device owned by one VMM task: for scenarios
 * beyond a pair (fairness, scale). Each VM is a guest, its device and its switch port.
 */
public final class NetLab implements AutoCloseable {

    /** One VM of the lab. */
    public record Vm(NetGuest guest, VhostNet net, L2Switch.Port port) {
    }

    private final Task owner;
    private final WorkerFactory factory;
    private final NetPair.Options options;
    private final L2Switch sw;
    private final List<Vm> vms = new ArrayList<>();

    public NetLab(Task owner, WorkerFactory factory, NetPair.Options options) {
        this.owner = owner;
        this.factory = factory;
        this.options = options;
        this.sw = new L2Switch(options.switchQueueBytes(), 1024);
    }

    /** Opens, owns and wires one more VM; its MAC is {@link Frames#localMac} of its number plus one. */
    public Vm addVm(String name) throws ErrnoException {
        NetGuest.Config cfg = new NetGuest.Config(options.queueSize(), options.eventIdx(), options.mrgRxbuf(),
                options.rxBufferSize());
        NetGuest g = new NetGuest(name, Frames.localMac(vms.size() + 1), cfg);
        VhostNet n = VhostNet.open(owner, factory, null, options.busyIdle());
        try {
            n.device().setOwner(owner);
            g.wire(n, owner);
            if (options.busyPollMicros() > 0) {
                n.device().setVringBusyloopTimeout(owner, VirtioNet.RX, options.busyPollMicros());
                n.device().setVringBusyloopTimeout(owner, VirtioNet.TX, options.busyPollMicros());
            }
            L2Switch.Port p = sw.addPort(name);
            var b = dev.loomvisor.vhost.backend.PcapSwitchCapture.wrap(p);
            n.setBackend(owner, VirtioNet.RX, b);
            n.setBackend(owner, VirtioNet.TX, b);
            Vm vm = new Vm(g, n, p);
            vms.add(vm);
            return vm;
        } catch (ErrnoException | RuntimeException e) {
            n.close();
            g.close();
            throw e;
        }
    }

    /** The VMs added so far (empty after close). */
    public List<Vm> vms() {
        return List.copyOf(vms);
    }

    public L2Switch switchboard() {
        return sw;
    }

    @Override
    public void close() {
        for (Vm vm : vms) {
            vm.guest().requestStop();
        }
        for (Vm vm : vms) {
            vm.guest().stop();
        }
        for (Vm vm : vms) {
            vm.net().close();
            vm.guest().close();
        }
        vms.clear();
    }
}
