package dev.loomvisor.vhost.testing;

import dev.loomvisor.core.ErrnoException;
import dev.loomvisor.core.Kernel;
import dev.loomvisor.core.Notifier;
import dev.loomvisor.core.Process;
import dev.loomvisor.core.Task;
import dev.loomvisor.core.worker.WorkerFactory;
import dev.loomvisor.core.worker.WorkerModel;
import dev.loomvisor.vhost.backend.NetBackend;
import dev.loomvisor.vhost.net.VhostNet;
import dev.loomvisor.vhost.net.VirtioNet;
import dev.loomvisor.vmm.memory.GuestMemory;
import dev.loomvisor.vmm.net.NetFeatures;
import dev.loomvisor.vmm.net.VirtioNetHeader;
import dev.loomvisor.vmm.virtio.DriverQueue;
import dev.loomvisor.vmm.virtio.SplitRing;
import org.agrona.concurrent.UnsafeBuffer;

/**
 * One vhost-net device and hand-driven rings: the test is the guest, adding chains with vmm's
 * {@link DriverQueue} (or raw descriptors for hostile ones) and kicking by hand. Rings of 64 at the start of
 * a 1 MiB memory, a data area after them.
 */
public final class RingRig implements AutoCloseable {

    public static final long BASE = 0x10000;
    public static final int SIZE = 64;
    public static final long RX_RING = BASE;
    public static final long TX_RING = BASE + 0x4000;
    public static final long DATA = BASE + 0x10000;

    public final Kernel kernel = new Kernel();
    public final Process vmm = Owners.vmm(kernel);
    public final Task owner = vmm.mainTask();
    public final WorkerFactory factory;
    public final GuestMemory memory = GuestMemory.anonymous(BASE, 1 << 20);
    public final UnsafeBuffer mem = memory.region(0).buffer();
    public final VhostNet net;
    public final Notifier rxKick = new Notifier();
    public final Notifier txKick = new Notifier();
    public final Notifier rxCall = new Notifier();
    public final Notifier txCall = new Notifier();
    public final Notifier err = new Notifier();
    public final DriverQueue rxq;
    public final DriverQueue txq;

    public RingRig(long features) throws ErrnoException {
        factory = WorkerModel.USER_WORKER.factory(kernel);
        net = VhostNet.open(owner, factory);
        net.device().setOwner(owner);
        net.device().setFeatures(owner, features);
        net.device().setMemTable(owner, memory);
        boolean eventIdx = NetFeatures.has(features, NetFeatures.EVENT_IDX);
        rxq = ring(VirtioNet.RX, RX_RING, rxKick, rxCall, eventIdx);
        txq = ring(VirtioNet.TX, TX_RING, txKick, txCall, eventIdx);
    }

    private DriverQueue ring(int index, long base, Notifier kick, Notifier call, boolean eventIdx) throws ErrnoException {
        long avail = base + SplitRing.descTableSize(SIZE);
        long used = base + 0x2000;
        var d = net.device();
        d.setVringNum(owner, index, SIZE);
        d.setVringAddr(owner, index, base, avail, used);
        d.setVringKick(owner, index, kick);
        d.setVringCall(owner, index, call);
        d.setVringErr(owner, index, err);
        return new DriverQueue(memory, SIZE, base, avail, used, eventIdx);
    }

    public void attach(int index, NetBackend backend) throws ErrnoException {
        net.setBackend(owner, index, backend);
    }

    /** Guest-physical address of data slot {@code i} (2 KiB slots). */
    public static long slot(int i) {
        return DATA + (long) i * 2048;
    }

    /** Writes a zero header and a {@code length}-byte frame into slot {@code i}; returns hdr + length. */
    public int frame(int i, int length, byte fill) {
        int off = (int) (slot(i) - BASE);
        mem.setMemory(off, VirtioNetHeader.SIZE, (byte) 0);
        mem.setMemory(off + VirtioNetHeader.SIZE, length, fill);
        return VirtioNetHeader.SIZE + length;
    }

    /** Publishes the TX ring and kicks if the device asks for it. */
    public void publishTx() {
        if (txq.publishAndCheckKick()) {
            txKick.signal();
        }
    }

    @Override
    public void close() {
        net.close();
        vmm.exit();
        factory.close();
        memory.close();
    }
}
