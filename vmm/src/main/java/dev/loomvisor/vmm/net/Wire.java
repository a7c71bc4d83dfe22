package dev.loomvisor.vmm.net;

import dev.loomvisor.core.Notifier;
import dev.loomvisor.vmm.virtio.DescriptorChain;
import dev.loomvisor.vmm.virtio.DeviceQueue;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.ReentrantLock;
import org.agrona.concurrent.UnsafeBuffer;

/**
 * A simple in-VMM backend: a cable between two virtio-net devices (or a device and itself), so the
 * emulated guests can talk without vhost. Frames sent on pair k of one end arrive on pair k of the other.
 *
 * <p>Each direction of each pair is one worker (a virtual thread) that follows the device loop of
 * reference/virtio.md line 49-50 on the TX ring, copies each frame into the peer's RX ring through an
 * {@link RxPlacement}, and holds a frame (never drops it) while the peer has no RX buffers, waiting for the
 * peer's RX kick. Workers run while both ends are DRIVER_OK; a reset of either end stops them all before
 * its {@link NetBackend#deactivate} returns. This is the reference behaviour vhost's handlers reproduce.
 */
public final class Wire {

    private static final long WAIT_MS = 50;

    private final End a;
    private final End b;
    private final ReentrantLock lock = new ReentrantLock();
    private final List<Thread> workers = new ArrayList<>();
    private final List<Notifier> polled = new ArrayList<>();
    private final AtomicLong frames = new AtomicLong();
    private final AtomicLong dropped = new AtomicLong();
    private volatile boolean running;

    private Wire(boolean loopback) {
        a = new End();
        b = loopback ? a : new End();
    }

    /** A cable between two devices: attach {@link #endA()} and {@link #endB()} as their backends. */
    public static Wire pair() {
        return new Wire(false);
    }

    /** A device's TX connected to its own RX. */
    public static Wire loopback() {
        return new Wire(true);
    }

    public NetBackend endA() {
        return a;
    }

    public NetBackend endB() {
        return b;
    }

    /** Frames carried so far, both directions. */
    public long frames() {
        return frames.get();
    }

    /** Frames dropped: malformed TX chains, or frames too large for a non-mergeable RX buffer. */
    public long dropped() {
        return dropped.get();
    }

    private final class End implements NetBackend {
        volatile VirtioNetDevice device;

        @Override
        public void activate(VirtioNetDevice d) {
            lock.lock();
            try {
                device = d;
                if (a.device != null && b.device != null && !running) {
                    start();
                }
            } finally {
                lock.unlock();
            }
        }

        @Override
        public void deactivate(VirtioNetDevice d) {
            lock.lock();
            try {
                stop();
                device = null;
            } finally {
                lock.unlock();
            }
        }
    }

    private void start() {
        running = true;
        VirtioNetDevice da = a.device;
        VirtioNetDevice db = b.device;
        int pairs = Math.min(da.queuePairs(), db.queuePairs());
        for (int p = 0; p < pairs; p++) {
            workers.add(worker(da, db, p));
            if (a != b) {
                workers.add(worker(db, da, p));
            }
        }
    }

    private void stop() {
        if (!running) {
            return;
        }
        running = false;
        for (Thread t : workers) {
            t.interrupt();
        }
        for (Thread t : workers) {
            try {
                t.join();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                break;
            }
        }
        workers.clear();
        // Give the kick notifiers back without our wake-ups (vhost_poll_stop).
        for (Notifier n : polled) {
            n.setListener(null);
        }
        polled.clear();
    }

    private Thread worker(VirtioNetDevice from, VirtioNetDevice to, int pair) {
        DeviceQueue tx = from.queue(VirtioNetDevice.txQueue(pair));
        DeviceQueue rxq = to.queue(VirtioNetDevice.rxQueue(pair));
        Notifier wake = new Notifier();
        Notifier txKick = from.kick(VirtioNetDevice.txQueue(pair));
        Notifier rxKick = to.kick(VirtioNetDevice.rxQueue(pair));
        txKick.setListener(n -> wake.signal());
        rxKick.setListener(n -> wake.signal());
        polled.add(txKick);
        polled.add(rxKick);
        // A kick that came before the listeners were installed did not call them (vhost_poll_start).
        wake.signal();
        RxPlacement rx = new RxPlacement(rxq, to.hasFeature(NetFeatures.MRG_RXBUF));
        return Thread.ofVirtual().name("wire-" + pair).start(() -> run(from, to, pair, tx, rx, wake));
    }

    private void run(VirtioNetDevice from, VirtioNetDevice to, int pair, DeviceQueue tx, RxPlacement rx, Notifier wake) {
        DescriptorChain chain = tx.newChain();
        UnsafeBuffer frame = new UnsafeBuffer(new byte[65536]);
        int pendingLen = -1;
        while (running) {
            tx.disableNotifications();
            boolean txUsed = false;
            boolean rxUsed = false;
            boolean blocked = false;
            while (running) {
                if (pendingLen < 0) {
                    if (!tx.nextAvail(chain)) {
                        break;
                    }
                    pendingLen = VirtioNetHeader.readTxFrame(chain, frame, 0, frame.capacity());
                    tx.addUsed(chain.head(), 0);
                    txUsed = true;
                    if (pendingLen < 0) {
                        dropped.incrementAndGet();
                        continue;
                    }
                }
                RxResult r = rx.deliver(frame, 0, pendingLen);
                if (r == RxResult.NO_BUFFERS || r == RxResult.RING_BROKEN) {
                    blocked = true;
                    break;
                }
                if (r == RxResult.DELIVERED) {
                    frames.incrementAndGet();
                    rxUsed = true;
                } else {
                    dropped.incrementAndGet();
                }
                pendingLen = -1;
            }
            if (txUsed && tx.needsInterrupt()) {
                from.call(VirtioNetDevice.txQueue(pair)).signal();
            }
            if (rxUsed && rx.queue().needsInterrupt()) {
                to.call(VirtioNetDevice.rxQueue(pair)).signal();
            }
            boolean more;
            if (blocked) {
                // Waiting for RX buffers: ask the peer's driver to kick when it posts some.
                more = rx.queue().enableNotifications();
            } else {
                more = tx.enableNotifications();
            }
            if (more) {
                continue;
            }
            try {
                wake.await(WAIT_MS, TimeUnit.MILLISECONDS);
            } catch (InterruptedException e) {
                return;
            }
        }
    }
}
