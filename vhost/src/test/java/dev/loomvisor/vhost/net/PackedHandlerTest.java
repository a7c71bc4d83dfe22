package dev.loomvisor.vhost.net;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.loomvisor.core.ErrnoException;
import dev.loomvisor.core.Kernel;
import dev.loomvisor.core.Notifier;
import dev.loomvisor.core.Process;
import dev.loomvisor.core.Task;
import dev.loomvisor.core.worker.WorkerFactory;
import dev.loomvisor.core.worker.WorkerModel;
import dev.loomvisor.vhost.RingCounter;
import dev.loomvisor.vhost.backend.Frames;
import dev.loomvisor.vhost.backend.GeneratorBackend;
import dev.loomvisor.vhost.backend.SinkBackend;
import dev.loomvisor.vhost.testing.Owners;
import dev.loomvisor.vmm.memory.GuestMemory;
import dev.loomvisor.vmm.net.NetFeatures;
import dev.loomvisor.vmm.net.VirtioNetHeader;
import dev.loomvisor.vmm.virtio.PackedDeviceQueue;
import dev.loomvisor.vmm.virtio.PackedDriverQueue;
import dev.loomvisor.vmm.virtio.PackedRing;
import dev.loomvisor.vmm.virtio.RingError;
import dev.loomvisor.vmm.virtio.UsedElement;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.agrona.concurrent.UnsafeBuffer;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** vhost-net's TX and RX handlers, unchanged, on packed rings (VIRTIO_F_RING_PACKED negotiated). */
class PackedHandlerTest {

    static final long V1 = NetFeatures.VERSION_1 | NetFeatures.RING_PACKED;
    static final Duration WAIT = Duration.ofSeconds(20);
    static final long BASE = 0x10000;
    static final int SIZE = 64;
    static final long DATA = BASE + 0x10000;

    /** One vhost-net with packed rings of 64 driven by hand, as the split tests' rig does. */
    static final class Rig implements AutoCloseable {
        final Kernel kernel = new Kernel();
        final Process vmm = Owners.vmm(kernel);
        final Task owner = vmm.mainTask();
        final WorkerFactory factory = WorkerModel.USER_WORKER.factory(kernel);
        final GuestMemory memory = GuestMemory.anonymous(BASE, 4 << 20);
        final UnsafeBuffer mem = memory.region(0).buffer();
        final VhostNet net = VhostNet.open(owner, factory);
        final Notifier txKick = new Notifier();
        final Notifier rxKick = new Notifier();
        final Notifier txCall = new Notifier();
        final Notifier rxCall = new Notifier();
        final Notifier err = new Notifier();
        final PackedDriverQueue rxq;
        final PackedDriverQueue txq;

        Rig(long features) throws ErrnoException {
            net.device().setOwner(owner);
            net.device().setFeatures(owner, features);
            net.device().setMemTable(owner, memory);
            boolean eventIdx = NetFeatures.has(features, NetFeatures.EVENT_IDX);
            boolean inOrder = NetFeatures.has(features, NetFeatures.IN_ORDER);
            rxq = ring(VirtioNet.RX, BASE, rxKick, rxCall, eventIdx, inOrder);
            txq = ring(VirtioNet.TX, BASE + 0x4000, txKick, txCall, eventIdx, inOrder);
        }

        private PackedDriverQueue ring(int index, long base, Notifier kick, Notifier call, boolean eventIdx,
                                       boolean inOrder) throws ErrnoException {
            long driver = base + PackedRing.descRingSize(SIZE);
            long device = driver + PackedRing.EVENT_SIZE;
            var d = net.device();
            d.setVringNum(owner, index, SIZE);
            d.setVringAddr(owner, index, base, driver, device);
            d.setVringKick(owner, index, kick);
            d.setVringCall(owner, index, call);
            d.setVringErr(owner, index, err);
            return new PackedDriverQueue(memory, SIZE, base, driver, device, eventIdx, inOrder);
        }

        static long slot(int i) {
            return DATA + (long) (i % 1024) * 2048;
        }

        int frame(int i, int length, byte fill) {
            int off = (int) (slot(i) - BASE);
            mem.setMemory(off, VirtioNetHeader.SIZE, (byte) 0);
            mem.setMemory(off + VirtioNetHeader.SIZE, length, fill);
            return VirtioNetHeader.SIZE + length;
        }

        void publishTx() {
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

    @ParameterizedTest
    @ValueSource(longs = {0, NetFeatures.EVENT_IDX, NetFeatures.IN_ORDER, NetFeatures.EVENT_IDX | NetFeatures.IN_ORDER})
    void txRoundsWrapTheRingManyTimes(long extra) throws Exception {
        try (Rig r = new Rig(V1 | extra)) {
            SinkBackend sink = new SinkBackend();
            r.net.setBackend(r.owner, VirtioNet.TX, sink);
            assertTrue(r.net.device().vq(VirtioNet.TX).isPacked());
            UsedElement u = new UsedElement();
            int frames = 5000;
            int sent = 0;
            int reaped = 0;
            while (reaped < frames) {
                while (sent < frames && r.txq.freeCount() > 0) {
                    r.txq.add(Rig.slot(sent), r.frame(sent, 60, (byte) sent), false, sent);
                    sent++;
                }
                r.publishTx();
                final int want = reaped;
                assertTrue(Owners.await(WAIT, () -> r.txq.hasUsed()), "frame " + want + " never came back");
                while (r.txq.reap(u)) {
                    assertEquals(reaped, u.cookie(), "TX buffers come back in order");
                    assertEquals(0, u.len());
                    reaped++;
                }
            }
            assertTrue(Owners.await(WAIT, () -> sink.counters().get(SinkBackend.Counter.FRAMES) == frames));
            assertEquals(frames * 60L, sink.counters().get(SinkBackend.Counter.BYTES));
            assertEquals(RingError.NONE, r.net.tx().ringError());
        }
    }

    @ParameterizedTest
    @ValueSource(longs = {0, NetFeatures.MRG_RXBUF | NetFeatures.EVENT_IDX})
    void rxFillsBuffersFromAGenerator(long extra) throws Exception {
        try (Rig r = new Rig(V1 | extra)) {
            for (int i = 0; i < SIZE; i++) {
                r.rxq.add(Rig.slot(i), 2048, true, i);
            }
            r.rxq.publish();
            int frames = 3000;
            r.net.setBackend(r.owner, VirtioNet.RX, new GeneratorBackend(Frames.localMac(9), Frames.localMac(1), 64, frames));
            UsedElement u = new UsedElement();
            int got = 0;
            while (got < frames) {
                final int want = got;
                assertTrue(Owners.await(WAIT, r.rxq::hasUsed), "frame " + want + " never arrived");
                while (r.rxq.reap(u)) {
                    assertEquals(VirtioNetHeader.SIZE + 64, u.len());
                    got++;
                    r.rxq.add(Rig.slot((int) u.cookie()), 2048, true, u.cookie());
                }
                if (r.rxq.publishAndCheckKick()) {
                    r.rxKick.signal();
                }
            }
            assertEquals(RingError.NONE, r.net.rx().ringError());
            assertTrue(r.net.rx().counters().get(RingCounter.FRAMES) >= frames);
        }
    }

    @ParameterizedTest
    @ValueSource(ints = {0, 1})
    void aHostilePackedTxRingBreaksOnlyItselfAndSignalsErr(int kind) throws Exception {
        try (Rig r = new Rig(V1)) {
            SinkBackend sink = new SinkBackend();
            r.net.setBackend(r.owner, VirtioNet.TX, sink);
            r.txq.add(Rig.slot(0), r.frame(0, 60, (byte) 1), false, 0);
            r.publishTx();
            assertTrue(Owners.await(WAIT, () -> sink.counters().get(SinkBackend.Counter.FRAMES) == 1));
            // Slot 1: an id beyond the ring, or a device-writable buffer on TX.
            UnsafeBuffer ring = new UnsafeBuffer(r.mem, (int) (BASE + 0x4000 - BASE) + PackedRing.DESC_SIZE, PackedRing.DESC_SIZE);
            ring.putLong(PackedRing.DESC_ADDR, Rig.slot(1));
            ring.putInt(PackedRing.DESC_LEN, 72);
            ring.putShort(PackedRing.DESC_ID, (short) (kind == 0 ? SIZE + 1 : 1));
            ring.putShort(PackedRing.DESC_FLAGS, (short) (PackedRing.availFlags(true) | (kind == 1 ? PackedRing.DESC_F_WRITE : 0)));
            r.txKick.signal();
            assertTrue(r.err.await(10, TimeUnit.SECONDS) > 0, "the error eventfd is signalled");
            assertEquals(kind == 0 ? RingError.PACKED_ID_OUT_OF_RANGE : RingError.WRITABLE_ON_READ_ONLY_QUEUE,
                    r.net.tx().ringError());
            assertFalse(r.net.rx().queue().isBroken());
            assertTrue(r.net.tx().queue() instanceof PackedDeviceQueue);
        }
    }
}
