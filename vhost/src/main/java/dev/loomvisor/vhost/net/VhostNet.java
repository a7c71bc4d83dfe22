package dev.loomvisor.vhost.net;

import dev.loomvisor.core.ErrnoException;
import dev.loomvisor.core.Task;
import dev.loomvisor.core.worker.WorkerFactory;
import dev.loomvisor.vhost.RingCounter;
import dev.loomvisor.vhost.VhostDevice;
import dev.loomvisor.vhost.work.VhostWork;
import dev.loomvisor.vhost.VhostVirtqueue;
import dev.loomvisor.vhost.backend.NetBackend;
import org.agrona.concurrent.IdleStrategy;

/**
 * {@code /dev/vhost-net}: a {@link VhostDevice} with two rings (RX = 0, TX = 1), the TX and RX handlers and
 * VHOST_NET_SET_BACKEND. Open one per VM NIC queue pair with {@link #open}.
 */
public final class VhostNet implements AutoCloseable {

    private final VhostDevice device;
    private final TxHandler tx;
    private final RxHandler rx;
    private int fd = -1;
    private Task opener;

    private VhostNet(WorkerFactory factory, WorkerFactory kthreadFactory, IdleStrategy busyIdle) {
        NetHandler[] h = new NetHandler[2];
        VhostDevice.Driver driver = new VhostDevice.Driver() {
            @Override
            public void featuresChanged(VhostVirtqueue vq, long features) {
                h[vq.index()].setFeatures(features);
            }

            @Override
            public void backendStarted(VhostVirtqueue vq, NetBackend backend) {
                if (vq.index() == VirtioNet.RX) {
                    backend.setRxListener(vq::queueHandler); // the socket's wait queue
                }
            }

            @Override
            public void backendStopped(VhostVirtqueue vq, NetBackend backend) {
                if (vq.index() == VirtioNet.RX) {
                    backend.setRxListener(null);
                }
            }
        };
        this.device = new VhostDevice(new VhostWork.Fn[] {w -> h[VirtioNet.RX].run(w), w -> h[VirtioNet.TX].run(w)},
                factory, kthreadFactory, VirtioNet.FEATURES, driver);
        this.rx = new RxHandler(device.vq(VirtioNet.RX), busyIdle);
        this.tx = new TxHandler(device.vq(VirtioNet.TX), busyIdle);
        h[VirtioNet.RX] = rx;
        h[VirtioNet.TX] = tx;
        // TX chains are device-readable only: a device-writable part is a ring violation (virtio 1.2 §5.1.6.2).
        device.vq(VirtioNet.TX).setDeviceWritableAllowed(false);
    }

    /**
     * open("/dev/vhost-net") by {@code caller}: a new device using {@code factory}'s worker model, installed
     * in the caller's file table (if it has one), so that the process's exit closes (releases) it.
     *
     * @param kthreadFactory what SET_FORK_FROM_OWNER 0 switches to; may be null
     * @param busyIdle the idle strategy of busy-polling rings (null: busy spin)
     */
    public static VhostNet open(Task caller, WorkerFactory factory, WorkerFactory kthreadFactory, IdleStrategy busyIdle) {
        VhostNet n = new VhostNet(factory, kthreadFactory, busyIdle);
        if (caller != null && caller.files() != null) {
            n.fd = caller.files().install(n);
            n.opener = caller;
        }
        return n;
    }

    /** open with the model's factory, no kthread fallback, busy spin for busy-polling. */
    public static VhostNet open(Task caller, WorkerFactory factory) {
        return open(caller, factory, null, null);
    }

    public VhostDevice device() {
        return device;
    }

    /** The fd in the opener's file table, or -1. */
    public int fd() {
        return fd;
    }

    public VhostVirtqueue rx() {
        return device.vq(VirtioNet.RX);
    }

    public VhostVirtqueue tx() {
        return device.vq(VirtioNet.TX);
    }

    /**
     * VHOST_NET_SET_BACKEND: starts ring {@code index} on {@code backend} (null = fd -1: stops it). EPERM if
     * not the owner, ENOBUFS for an index >= 2, EFAULT if the ring is not set up. Replacing a backend flushes
     * the ring's worker so nothing of the old one runs afterwards. The RX ring also listens on the backend,
     * as vhost_net_enable_vq polls the socket.
     */
    public void setBackend(Task caller, int index, NetBackend backend) throws ErrnoException {
        device.setBackend(caller, index, backend);
    }

    /** VHOST_RESET_OWNER: stops both rings, flushes, frees the workers; the device can be owned again. */
    public void resetOwner(Task caller) throws ErrnoException {
        device.resetOwner(caller);
    }

    /** Frames through the device: TX frames handed to the backend plus RX frames given to the guest. */
    public long frames() {
        return rx().counters().get(RingCounter.FRAMES) + tx().counters().get(RingCounter.FRAMES);
    }

    /** release: the device's file is closed (by the VMM, or by its exit). Idempotent. */
    @Override
    public void close() {
        device.close();
        // After the release every worker has stopped: the TX handler's native buffer can go now, not at
        // some later GC.
        tx.release();
        if (fd >= 0 && opener != null && opener.files() != null) {
            int f = fd;
            fd = -1;
            try {
                opener.files().close(f); // no-op if the exit path is what closes us
            } catch (ErrnoException alreadyClosed) {
                // EBADF: the file table closed us
            }
        }
    }
}
