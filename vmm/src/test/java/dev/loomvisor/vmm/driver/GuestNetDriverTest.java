package dev.loomvisor.vmm.driver;

import static org.junit.jupiter.api.Assertions.*;

import dev.loomvisor.vmm.memory.GuestMemory;
import dev.loomvisor.vmm.net.DeviceError;
import dev.loomvisor.vmm.net.DeviceStatus;
import dev.loomvisor.vmm.net.MmioTransport;
import dev.loomvisor.vmm.net.NetFeatures;
import dev.loomvisor.vmm.net.VirtioNetDevice;
import dev.loomvisor.vmm.net.Wire;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** Two emulated guests on a {@link Wire}: bring-up through the transport, traffic, echo. */
class GuestNetDriverTest {

    static final byte[] MAC_A = {0x52, 0x54, 0, 0, 0, 0x0a};
    static final byte[] MAC_B = {0x52, 0x54, 0, 0, 0, 0x0b};
    static final long OFFER = NetFeatures.VERSION_1 | NetFeatures.MAC | NetFeatures.STATUS | NetFeatures.MRG_RXBUF
            | NetFeatures.EVENT_IDX | NetFeatures.INDIRECT_DESC | NetFeatures.CTRL_VQ | NetFeatures.MQ;

    GuestMemory memA = GuestMemory.anonymous(0, 16 << 20);
    GuestMemory memB = GuestMemory.anonymous(0, 16 << 20);
    volatile boolean running = true;
    Thread[] vcpus = new Thread[0];
    GuestNetDriver a;
    GuestNetDriver b;

    @AfterEach
    void tearDown() throws Exception {
        running = false;
        for (Thread t : vcpus) {
            t.interrupt();
            t.join(5000);
            assertFalse(t.isAlive());
        }
        if (a != null) {
            a.reset();
        }
        if (b != null) {
            b.reset();
        }
        memA.close();
        memB.close();
    }

    void bringUp(long offerA, long offerB, int pairs, GuestNetDriver.Options opts) {
        VirtioNetDevice da = new VirtioNetDevice(memA, MAC_A, pairs, 256, offerA);
        VirtioNetDevice db = new VirtioNetDevice(memB, MAC_B, pairs, 256, offerB);
        Wire w = Wire.pair();
        da.setBackend(w.endA());
        db.setBackend(w.endB());
        a = new GuestNetDriver(memA, new MmioTransport(da), GuestAllocator.of(memA), opts);
        b = new GuestNetDriver(memB, new MmioTransport(db), GuestAllocator.of(memB), opts);
        assertEquals(DeviceError.OK, a.probe());
        assertEquals(DeviceError.OK, b.probe());
        assertTrue(da.isRunning());
        assertTrue(db.isRunning());
    }

    static void awaitTrue(BooleanSupplier cond, String what) throws InterruptedException {
        awaitTrue(cond, () -> what);
    }

    static void awaitTrue(BooleanSupplier cond, java.util.function.Supplier<String> what) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        while (!cond.getAsBoolean()) {
            assertTrue(System.nanoTime() < deadline, () -> "timed out waiting for " + what.get());
            Thread.sleep(1);
        }
    }

    Thread vcpu(QueuePairDriver p, TrafficSource src, RxSink sink, boolean echo) {
        return Thread.ofVirtual().start(() -> p.run(src, sink, echo, () -> running));
    }

    @Test
    void bringUpNegotiatesAndReadsConfig() {
        bringUp(OFFER, OFFER, 2, GuestNetDriver.Options.defaults());
        assertArrayEquals(MAC_A, a.mac());
        assertEquals(2, a.pairCount());
        assertEquals(OFFER & ~NetFeatures.INDIRECT_DESC, a.features());
    }

    @Test
    void bringUpWalksTheStatusStepsAndTakesOnlyOfferedFeatures() {
        VirtioNetDevice d = new VirtioNetDevice(memA, MAC_A, 1, 64, NetFeatures.VERSION_1 | NetFeatures.MAC);
        GuestNetDriver g = new GuestNetDriver(memA, new MmioTransport(d), GuestAllocator.of(memA),
                GuestNetDriver.Options.defaults());
        assertEquals(DeviceError.OK, g.probe());
        assertEquals(DeviceStatus.ACKNOWLEDGE | DeviceStatus.DRIVER | DeviceStatus.FEATURES_OK
                | DeviceStatus.DRIVER_OK, d.status());
        assertEquals(NetFeatures.VERSION_1 | NetFeatures.MAC, d.negotiatedFeatures());
        assertEquals(64, d.queue(0).size(), "queue size capped by QueueNumMax");
        assertTrue(d.queue(1).isReady());
        assertEquals(0, d.refusedRequestCount());
    }

    @Test
    void framesOfAMixArriveInOrderIntactAcrossTwoPairs() throws Exception {
        bringUp(OFFER, OFFER, 2, GuestNetDriver.Options.defaults());
        int perPair = 20_000;
        AtomicLong sunk = new AtomicLong();
        vcpus = new Thread[] {
            vcpu(a.pair(0), TrafficSource.mix(new int[] {64, 576, 1514}, new int[] {7, 4, 1}, 0, perPair, MAC_B, 42),
                    RxSink.NONE, false),
            vcpu(a.pair(1), TrafficSource.fixed(1514, 0, perPair, MAC_B), RxSink.NONE, false),
            vcpu(b.pair(0), null, (p, t, s, ts, now, len) -> sunk.incrementAndGet(), false),
            vcpu(b.pair(1), null, (p, t, s, ts, now, len) -> sunk.incrementAndGet(), false),
        };
        awaitTrue(() -> b.pair(0).stats().rxFrames() + b.pair(1).stats().rxFrames() == 2L * perPair,
                "all frames at B");
        for (int p = 0; p < 2; p++) {
            PairStats s = b.pair(p).stats();
            assertEquals(perPair, s.rxInOrder(), "pair " + p + ": " + s);
            assertEquals(0, s.rxLost());
            assertEquals(0, s.rxOutOfOrder());
            assertEquals(0, s.rxCorrupt());
        }
        assertEquals(2L * perPair, sunk.get());
        awaitTrue(() -> a.pair(0).stats().txCompleted() == perPair, "TX completions at A");
    }

    @Test
    void echoResponderReturnsEveryPing() throws Exception {
        bringUp(OFFER, OFFER & ~NetFeatures.EVENT_IDX, 1, GuestNetDriver.Options.defaults());
        int pings = 10_000;
        AtomicLong pongs = new AtomicLong();
        AtomicLong badRtt = new AtomicLong();
        vcpus = new Thread[] {
            vcpu(a.pair(0), TrafficSource.fixed(64, 0, pings, MAC_B).pings(), (p, t, s, ts, now, len) -> {
                if (t == FrameFormat.PONG) {
                    pongs.incrementAndGet();
                    if (now < ts) {
                        badRtt.incrementAndGet();
                    }
                }
            }, false),
            vcpu(b.pair(0), null, RxSink.NONE, true),
        };
        awaitTrue(() -> pongs.get() == pings, () -> "all pongs back: A " + a.pair(0).stats() + " B " + b.pair(0).stats());
        assertEquals(pings, b.pair(0).stats().echoed());
        assertEquals(pings, a.pair(0).stats().rxInOrder(), "pongs keep the ping order");
        assertEquals(0, badRtt.get());
    }

    @Test
    void rateLimitedSourceSpacesFrames() throws Exception {
        bringUp(OFFER, OFFER, 1, GuestNetDriver.Options.defaults());
        int frames = 200;
        long rate = 20_000; // 10 ms for 200 frames
        long t0 = System.nanoTime();
        vcpus = new Thread[] {
            vcpu(a.pair(0), TrafficSource.fixed(128, rate, frames, MAC_B), RxSink.NONE, false),
            vcpu(b.pair(0), null, RxSink.NONE, false),
        };
        awaitTrue(() -> b.pair(0).stats().rxFrames() == frames, "paced frames");
        long took = System.nanoTime() - t0;
        // Frame k is not sent before k / rate seconds: a lower bound, which holds however loaded the machine is.
        assertTrue(took >= (frames - 1) * 1_000_000_000L / rate, "took " + took + " ns");
    }

    @Test
    void aQuietGuestKeepsAFewRxBuffersPostedAndABacklogPostsMore() throws Exception {
        bringUp(OFFER, OFFER, 1, GuestNetDriver.Options.defaults());
        QueuePairDriver rx = b.pair(0);
        assertEquals(QueuePairDriver.RX_POSTED_INITIAL, rx.rxPosted(), "posted at bring-up");
        // A backlog: more frames than buffers posted, sent while B's vCPU does not run (the wire holds the rest).
        int frames = 3 * QueuePairDriver.RX_POSTED_INITIAL;
        vcpus = new Thread[] {vcpu(a.pair(0), TrafficSource.fixed(64, 0, frames, MAC_B), RxSink.NONE, false)};
        awaitTrue(() -> a.pair(0).stats().txCompleted() >= QueuePairDriver.RX_POSTED_INITIAL, "B's posted buffers filled");
        Thread reader = vcpu(rx, null, RxSink.NONE, false);
        awaitTrue(() -> rx.stats().rxFrames() == frames, "every frame at B");
        running = false;
        reader.interrupt();
        reader.join(5000);
        assertFalse(reader.isAlive());
        assertTrue(rx.rxPosted() > QueuePairDriver.RX_POSTED_INITIAL,
                "a reap that found every posted buffer used posts more: " + rx.rxPosted());
        assertTrue(rx.rxPosted() <= rx.rxBuffers());
        assertEquals(frames, rx.stats().rxInOrder());
    }

    @Test
    void pacedFramesCycleThroughTheFirstPostedBuffersOnly() throws Exception {
        bringUp(OFFER, OFFER, 1, GuestNetDriver.Options.defaults());
        QueuePairDriver rx = b.pair(0);
        int frames = 50;
        vcpus = new Thread[] {
            vcpu(a.pair(0), TrafficSource.fixed(64, 1_000, frames, MAC_B), RxSink.NONE, false),
            vcpu(rx, null, RxSink.NONE, false),
        };
        awaitTrue(() -> rx.stats().rxFrames() == frames, "paced frames at B");
        running = false;
        for (Thread t : vcpus) {
            t.interrupt();
            t.join(5000);
            assertFalse(t.isAlive());
        }
        // Posting every buffer of the ring would take a reap of 128 used buffers at once, more than were sent:
        // whatever stalls a loaded machine gives the reader, the paced frames used a few of the buffers only.
        assertTrue(rx.rxPosted() < rx.rxBuffers(), "posted " + rx.rxPosted() + " of " + rx.rxBuffers());
    }
}
