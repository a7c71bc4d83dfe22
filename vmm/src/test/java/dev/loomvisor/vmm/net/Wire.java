package dev.loomvisor.vmm.net;

import dev.loomvisor.core.Notifier;
import dev.loomvisor.vmm.virtio.DescriptorChain;
import dev.loomvisor.vmm.virtio.DeviceVirtqueue;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.ReentrantLock;
import org.agrona.concurrent.UnsafeBuffer;

/**
 * A test cable between two virtio-net devices (or a device and itself), so vmm's tests can move frames
 * without vhost: pair k's TX of one end goes through vmm's {@link RxPlacement} into pair k's RX of the other.
 * Not a data path of the product (that is vhost-net); it holds a frame while the peer has no buffers, so a
 * test sees every frame, and runs while both ends are DRIVER_OK.
 */
public final class Wire {

    private final End a = new End();
    private final End b;
    private final ReentrantLock lock = new ReentrantLock();
    private final List<Thread> workers = new ArrayList<>();
    private final List<Notifier> kicks = new ArrayList<>();
    private volatile boolean running;

    private Wire(boolean loopback) {
        b = loopback ? a : new End();
    }

    public static Wire pair() {
        return new Wire(false);
    }

    /** A device's TX connected to its own RX. */
    public static Wire loopback() {
        return new Wire(true);
    }

    public DeviceBackend endA() {
        return a;
    }

    public DeviceBackend endB() {
        return b;
    }

    private final class End implements DeviceBackend {
        volatile VirtioNetDevice device;

        @Override
        public void activate(VirtioNetDevice d) {
            lock.lock();
            try {
                device = d;
                if (a.device != null && b.device != null && !running) {
                    running = true;
                    for (int p = 0; p < Math.min(a.device.queuePairs(), b.device.queuePairs()); p++) {
                        start(a.device, b.device, p);
                        if (a != b) {
                            start(b.device, a.device, p);
                        }
                    }
                }
            } finally {
                lock.unlock();
            }
        }

        @Override
        public void deactivate(VirtioNetDevice d) {
            lock.lock();
            try {
                running = false;
                for (Thread t : workers) {
                    t.interrupt();
                }
                for (Thread t : workers) {
                    t.join();
                }
                workers.clear();
                kicks.forEach(k -> k.setListener(null));
                kicks.clear();
                device = null;
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            } finally {
                lock.unlock();
            }
        }
    }

    private void start(VirtioNetDevice from, VirtioNetDevice to, int pair) {
        Notifier wake = new Notifier();
        for (Notifier k : List.of(from.kick(VirtioNetDevice.txQueue(pair)), to.kick(VirtioNetDevice.rxQueue(pair)))) {
            k.setListener(n -> wake.signal());
            kicks.add(k);
        }
        wake.signal(); // a kick before the listeners were set called nobody
        RxPlacement rx = new RxPlacement(to.queue(VirtioNetDevice.rxQueue(pair)), to.negotiatedFeatures());
        workers.add(Thread.ofVirtual().name("wire-" + pair).start(() -> carry(from, to, pair, rx, wake)));
    }

    private void carry(VirtioNetDevice from, VirtioNetDevice to, int pair, RxPlacement rx, Notifier wake) {
        DeviceVirtqueue tx = from.queue(VirtioNetDevice.txQueue(pair));
        DescriptorChain chain = tx.newChain();
        UnsafeBuffer frame = new UnsafeBuffer(new byte[FrameLimits.MAX_GSO_FRAME]);
        int pending = -1;
        while (running) {
            boolean blocked = false;
            while (running) {
                if (pending < 0) {
                    if (!tx.nextAvail(chain)) {
                        break;
                    }
                    long len = chain.readableLength() - VirtioNetHeader.SIZE;
                    pending = len < 0 || len > frame.capacity() ? -1
                            : chain.readReadable(VirtioNetHeader.SIZE, frame, 0, (int) len);
                    tx.addUsed(chain.head(), 0);
                    if (pending < 0) {
                        continue; // a malformed chain: returned, nothing sent
                    }
                }
                RxResult r = rx.place(frame, 0, pending);
                if (r == RxResult.NO_BUFFERS || r == RxResult.RING_BROKEN) {
                    blocked = true;
                    break;
                }
                pending = -1;
            }
            rx.queue().publishUsed();
            if (rx.queue().needsInterrupt()) {
                to.call(VirtioNetDevice.rxQueue(pair)).signal();
            }
            if (tx.needsInterrupt()) {
                from.call(VirtioNetDevice.txQueue(pair)).signal();
            }
            if (blocked ? rx.enableNotifications() : tx.enableNotifications()) {
                continue;
            }
            try {
                wake.await(50, TimeUnit.MILLISECONDS);
            } catch (InterruptedException e) {
                return;
            }
        }
    }
}
