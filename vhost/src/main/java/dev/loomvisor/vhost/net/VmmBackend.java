package dev.loomvisor.vhost.net;

import dev.loomvisor.core.ErrnoException;
import dev.loomvisor.core.Notifier;
import dev.loomvisor.core.Task;
import dev.loomvisor.core.worker.WorkerFactory;
import dev.loomvisor.vhost.backend.NetBackend;
import dev.loomvisor.vmm.net.DeviceBackend;
import dev.loomvisor.vmm.net.NetFeatures;
import dev.loomvisor.vmm.net.VirtioNetDevice;
import java.util.function.IntFunction;
import org.agrona.concurrent.IdleStrategy;

/**
 * vmm's virtio-net device served by vhost-net, as QEMU hands its NIC to /dev/vhost-net: when the guest
 * driver sets DRIVER_OK, {@link #activate} opens one vhost-net device per queue pair as the VMM process
 * (QEMU opens one /dev/vhost-net per pair of a multiqueue tap), owns it and gives it the negotiated features,
 * the guest memory, and the pair's sizes, addresses, base indexes, kick and call eventfds. The pairs the
 * driver enabled (pair 0, then what VQ_PAIRS_SET asks for) get their backend attached, the others are
 * detached (QEMU's tap_disable: VHOST_NET_SET_BACKEND -1). On reset {@link #deactivate} takes every ring back.
 * A ring the guest breaks under vhost sets the device's NEEDS_RESET through the ring's error eventfd.
 *
 * <p>Workers ({@link VringWorkers}): each pair's vhost-net gets its default worker at SET_OWNER, so a NIC
 * with n pairs has n workers in every model (kthread-pool runs them on its shared threads). With
 * {@link VringWorkers#PER_VIRTQUEUE} the VMM also gives each pair's TX ring a worker of its own through
 * Linux 6.5's VHOST_NEW_WORKER and VHOST_ATTACH_VRING_WORKER, where the model allows it (task mode: the
 * user-worker models); kthread models refuse NEW_WORKER (EFAULT) and keep one worker per pair.
 */
public final class VmmBackend implements DeviceBackend {

    /** How many vhost workers serve a queue pair. */
    public enum VringWorkers {
        /** The pair's vhost-net default worker runs both rings (QEMU's vhost-net). */
        PER_PAIR,
        /** RX on the default worker, TX on a NEW_WORKER of its own (task mode only; else as PER_PAIR). */
        PER_VIRTQUEUE
    }

    private final Task owner;
    private final WorkerFactory factory;
    private final IntFunction<NetBackend> backends;
    private final long busyPollMicros;
    private final IdleStrategy busyIdle;
    private final VringWorkers vringWorkers;
    /** vhost-net per pair while active (null entries: pairs not served); written under the device's lock. */
    private volatile VhostNet[] nets = new VhostNet[0];
    /** The backend of each served pair, resolved once at activation. */
    private NetBackend[] pairBackends = new NetBackend[0];
    private boolean[] attached = new boolean[0];
    private volatile ErrnoException failure;

    /**
     * One backend for pair 0 (a NIC with more pairs gets only pair 0 served).
     *
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
        this(owner, factory, k -> k == 0 ? backend : null, busyPollMicros, busyIdle, VringWorkers.PER_PAIR);
    }

    /**
     * @param backends the backend of each queue pair (null for a pair: not served), e.g. the queues of a
     *                 multiqueue switch port
     */
    public VmmBackend(Task owner, WorkerFactory factory, IntFunction<NetBackend> backends, long busyPollMicros,
                      IdleStrategy busyIdle, VringWorkers vringWorkers) {
        this.owner = owner;
        this.factory = factory;
        this.backends = backends;
        this.busyPollMicros = busyPollMicros;
        this.busyIdle = busyIdle;
        this.vringWorkers = vringWorkers;
    }

    @Override
    public void activate(VirtioNetDevice device) {
        int pairs = device.hasFeature(NetFeatures.MQ) ? device.queuePairs() : 1;
        VhostNet[] opened = new VhostNet[pairs];
        NetBackend[] resolved = new NetBackend[pairs];
        try {
            for (int k = 0; k < pairs; k++) {
                resolved[k] = backends.apply(k);
                if (resolved[k] == null || !device.queueReady(VirtioNetDevice.rxQueue(k))
                        || !device.queueReady(VirtioNetDevice.txQueue(k))) {
                    continue; // a pair the driver did not set up, or that nothing serves
                }
                VhostNet n = VhostNet.open(owner, factory, null, busyIdle);
                opened[k] = n;
                n.device().setOwner(owner);
                wire(owner, n, device, k);
                if (busyPollMicros > 0) {
                    n.device().setVringBusyloopTimeout(owner, VirtioNet.RX, busyPollMicros);
                    n.device().setVringBusyloopTimeout(owner, VirtioNet.TX, busyPollMicros);
                }
                if (vringWorkers == VringWorkers.PER_VIRTQUEUE && n.device().forkFromOwner()) {
                    int w = n.device().newWorker(owner);
                    n.device().attachVringWorker(owner, VirtioNet.TX, w);
                }
            }
            nets = opened;
            pairBackends = resolved;
            attached = new boolean[pairs];
            serve(device.activePairs());
        } catch (ErrnoException e) {
            failure = e; // the guest's NIC stays silent; the VMM reads the reason here
            nets = new VhostNet[0];
            for (VhostNet n : opened) {
                if (n != null) {
                    n.close();
                }
            }
        }
    }

    @Override
    public void queuePairsChanged(VirtioNetDevice device, int pairs) {
        try {
            serve(pairs);
        } catch (ErrnoException e) {
            failure = e;
        }
    }

    /** Attaches the backends of pairs below {@code active} and detaches the others (SET_BACKEND -1). */
    private void serve(int active) throws ErrnoException {
        VhostNet[] ns = nets;
        for (int k = 0; k < ns.length; k++) {
            boolean on = k < active;
            if (ns[k] == null || attached[k] == on) {
                continue;
            }
            NetBackend b = on ? pairBackends[k] : null;
            ns[k].setBackend(owner, VirtioNet.RX, b);
            ns[k].setBackend(owner, VirtioNet.TX, b);
            attached[k] = on;
        }
    }

    /**
     * What a VMM does to hand {@code device}'s queue pair 0 to a vhost-net device {@code owner} owns already:
     * features, memory table, then per ring size, addresses, base, kick, call and the error eventfd (a
     * guest-broken ring sets NEEDS_RESET on the device). No backend is attached.
     */
    public static void wire(Task owner, VhostNet n, VirtioNetDevice device) throws ErrnoException {
        wire(owner, n, device, 0);
    }

    /** {@link #wire(Task, VhostNet, VirtioNetDevice)} for queue pair {@code pair}. */
    public static void wire(Task owner, VhostNet n, VirtioNetDevice device, int pair) throws ErrnoException {
        var d = n.device();
        d.setFeatures(owner, device.negotiatedFeatures() & VirtioNet.FEATURES);
        d.setMemTable(owner, device.memory());
        int[] queues = {VirtioNetDevice.rxQueue(pair), VirtioNetDevice.txQueue(pair)};
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
        VhostNet[] ns = nets;
        nets = new VhostNet[0];
        for (VhostNet n : ns) {
            if (n != null) {
                n.close();
            }
        }
    }

    /** The vhost-net device serving queue pair 0 now, or null. */
    public VhostNet net() {
        return net(0);
    }

    /** The vhost-net device serving queue pair {@code pair} now, or null. */
    public VhostNet net(int pair) {
        VhostNet[] ns = nets;
        return pair < ns.length ? ns[pair] : null;
    }

    /** vhost-net devices open now (one per served pair). */
    public int netCount() {
        int c = 0;
        for (VhostNet n : nets) {
            c += n != null ? 1 : 0;
        }
        return c;
    }

    /** vhost workers alive now over every pair's device. */
    public int workerCount() {
        int c = 0;
        for (VhostNet n : nets) {
            if (n != null) {
                c += n.device().workers().size();
            }
        }
        return c;
    }

    public VringWorkers vringWorkers() {
        return vringWorkers;
    }

    /** Why activation failed, or null. */
    public ErrnoException failure() {
        return failure;
    }
}
