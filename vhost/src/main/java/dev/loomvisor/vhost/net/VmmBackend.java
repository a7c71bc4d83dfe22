package dev.loomvisor.vhost.net;

import dev.loomvisor.core.ErrnoException;
import dev.loomvisor.core.Notifier;
import dev.loomvisor.core.Task;
import dev.loomvisor.core.worker.WorkerFactory;
import dev.loomvisor.vhost.backend.NetBackend;
import dev.loomvisor.vmm.net.DeviceBackend;
import dev.loomvisor.vmm.net.VirtioNetDevice;
import org.agrona.concurrent.IdleStrategy;

/**
 * vmm's virtio-net device served by vhost-net, as QEMU hands its NIC to /dev/vhost-net: when the guest
 * driver sets DRIVER_OK, {@link #activate} opens a vhost-net device as the VMM process, owns it and gives it
 * the negotiated features, the guest memory, and queue pair 0's sizes, addresses, base indexes, kick and
 * call eventfds, then attaches {@code backend}; on reset {@link #deactivate} takes the rings back. A ring the
 * guest breaks under vhost sets the device's NEEDS_RESET through the ring's error eventfd.
 */
public final class VmmBackend implements DeviceBackend {

    private final Task owner;
    private final WorkerFactory factory;
    private final NetBackend backend;
    private final long busyPollMicros;
    private final IdleStrategy busyIdle;
    private volatile VhostNet net;
    private volatile ErrnoException failure;

    /**
     * @param owner the VMM task that makes the vhost calls (the VM's owner process)
     * @param backend where the device's frames go: a switch port, a sink...
     */
    public VmmBackend(Task owner, WorkerFactory factory, NetBackend backend) {
        this(owner, factory, backend, 0, null);
    }

    /**
     * @param busyPollMicros VHOST_SET_VRING_BUSYLOOP_TIMEOUT for both rings (0: notifications only)
     * @param busyIdle       the idle strategy of busy-polling rings (null: busy spin)
     */
    public VmmBackend(Task owner, WorkerFactory factory, NetBackend backend, long busyPollMicros,
                      IdleStrategy busyIdle) {
        this.owner = owner;
        this.factory = factory;
        this.backend = backend;
        this.busyPollMicros = busyPollMicros;
        this.busyIdle = busyIdle;
    }

    @Override
    public void activate(VirtioNetDevice device) {
        VhostNet n = VhostNet.open(owner, factory, null, busyIdle);
        try {
            n.device().setOwner(owner);
            wire(owner, n, device);
            if (busyPollMicros > 0) {
                n.device().setVringBusyloopTimeout(owner, VirtioNet.RX, busyPollMicros);
                n.device().setVringBusyloopTimeout(owner, VirtioNet.TX, busyPollMicros);
            }
            n.setBackend(owner, VirtioNet.RX, backend);
            n.setBackend(owner, VirtioNet.TX, backend);
            net = n;
        } catch (ErrnoException e) {
            failure = e; // the guest's NIC stays silent; the VMM reads the reason here
            n.close();
        }
    }

    /**
     * What a VMM does to hand {@code device}'s queue pair 0 to a vhost-net device {@code owner} owns already:
     * features, memory table, then per ring size, addresses, base, kick, call and the error eventfd (a
     * guest-broken ring sets NEEDS_RESET on the device). No backend is attached.
     */
    public static void wire(Task owner, VhostNet n, VirtioNetDevice device) throws ErrnoException {
        var d = n.device();
        d.setFeatures(owner, device.negotiatedFeatures() & VirtioNet.FEATURES);
        d.setMemTable(owner, device.memory());
        int[] queues = {VirtioNetDevice.rxQueue(0), VirtioNetDevice.txQueue(0)};
        for (int i = 0; i < 2; i++) {
            int q = queues[i];
            d.setVringNum(owner, i, device.queueSize(q));
            d.setVringAddr(owner, i, device.queueDesc(q), device.queueAvail(q), device.queueUsed(q));
            d.setVringBase(owner, i, device.queue(q).lastAvail());
            d.setVringKick(owner, i, device.kick(q));
            d.setVringCall(owner, i, device.call(q));
            d.setVringErr(owner, i, ringError(device, q));
        }
    }

    /** vhost's error eventfd of a ring, routed to the device: a guest-broken ring sets NEEDS_RESET. */
    private static Notifier ringError(VirtioNetDevice device, int q) {
        Notifier err = new Notifier();
        err.setListener(n -> device.backendQueueError(q));
        return err;
    }

    @Override
    public void deactivate(VirtioNetDevice device) {
        VhostNet n = net;
        net = null;
        if (n != null) {
            n.close();
        }
    }

    /** The vhost-net device serving the NIC now, or null. */
    public VhostNet net() {
        return net;
    }

    /** Why activation failed, or null. */
    public ErrnoException failure() {
        return failure;
    }
}
