package dev.loomvisor.vhost.net;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.loomvisor.core.worker.WorkerFactory;
import dev.loomvisor.core.worker.WorkerModel;
import dev.loomvisor.vhost.RingCounter;
import dev.loomvisor.vhost.backend.Frames;
import dev.loomvisor.vhost.backend.GeneratorBackend;
import dev.loomvisor.vhost.backend.SinkBackend;
import dev.loomvisor.vhost.fixture.VmPair;
import dev.loomvisor.vhost.testing.Owners;
import dev.loomvisor.vhost.testing.RingRig;
import dev.loomvisor.vmm.net.FrameLimits;
import dev.loomvisor.vmm.net.NetFeatures;
import dev.loomvisor.vmm.net.VirtioNetHeader;
import dev.loomvisor.vmm.virtio.RingError;
import dev.loomvisor.vmm.virtio.SplitRing;
import dev.loomvisor.vmm.virtio.UsedElement;
import java.nio.ByteOrder;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** vhost-net's TX and RX handlers against hand-driven rings (drivers/vhost/net.c). */
class HandlerTest {

    private static final long V1 = NetFeatures.VERSION_1;
    private static final long EVENT_IDX = NetFeatures.EVENT_IDX;
    private static final long MRG = NetFeatures.MRG_RXBUF;
    private static final Duration WAIT = Duration.ofSeconds(10);

    @Test
    void txTakesTheHeaderOffAndReturnsChainsUsed() throws Exception {
        try (RingRig r = new RingRig(V1)) {
            SinkBackend sink = new SinkBackend();
            r.attach(VirtioNet.TX, sink);
            for (int i = 0; i < 10; i++) {
                r.txq.add(RingRig.slot(i), r.frame(i, 100, (byte) i), false, i);
            }
            r.publishTx();
            assertTrue(Owners.await(WAIT, () -> sink.counters().get(SinkBackend.Counter.FRAMES) == 10));
            assertEquals(1000, sink.counters().get(SinkBackend.Counter.BYTES), "100 bytes each, header off");
            UsedElement u = new UsedElement();
            assertTrue(Owners.await(WAIT, r.txq::hasUsed));
            int n = 0;
            while (n < 10 && Owners.await(WAIT, r.txq::hasUsed)) {
                assertTrue(r.txq.reap(u));
                assertEquals(0, u.len(), "TX: the device writes nothing");
                n++;
            }
            assertEquals(10, n);
        }
    }

    @Test
    void withoutEventIdxTheNoInterruptFlagSuppressesCalls() throws Exception {
        try (RingRig r = new RingRig(V1)) {
            SinkBackend sink = new SinkBackend();
            r.attach(VirtioNet.TX, sink);
            r.txq.disableInterrupts();
            for (int i = 0; i < 5; i++) {
                r.txq.add(RingRig.slot(i), r.frame(i, 64, (byte) 1), false, i);
            }
            r.publishTx();
            assertTrue(Owners.await(WAIT, () -> r.net.tx().counters().get(RingCounter.RUNS) > 0
                    && sink.counters().get(SinkBackend.Counter.FRAMES) == 5 && r.txq.hasUsed()));
            r.net.device().flush();
            assertEquals(0, r.txCall.poll(), "NO_INTERRUPT set: no call");
            r.txq.enableInterrupts();
            r.txq.add(RingRig.slot(5), r.frame(5, 64, (byte) 1), false, 5);
            r.publishTx();
            assertTrue(r.txCall.await(10, TimeUnit.SECONDS) > 0, "interrupts back on: called");
        }
    }

    @Test
    void withEventIdxTheDeviceCallsOnlyWhenUsedEventIsCrossed() throws Exception {
        try (RingRig r = new RingRig(V1 | EVENT_IDX)) {
            SinkBackend sink = new SinkBackend();
            r.attach(VirtioNet.TX, sink);
            r.net.device().flush();
            r.txCall.poll();
            r.txq.setUsedEvent(4); // interrupt when used.idx passes 4, i.e. after the 5th
            for (int i = 0; i < 3; i++) {
                r.txq.add(RingRig.slot(i), r.frame(i, 64, (byte) 1), false, i);
                r.publishTx();
                int k = i + 1;
                assertTrue(Owners.await(WAIT, () -> sink.counters().get(SinkBackend.Counter.FRAMES) == k));
                r.net.device().flush();
            }
            long before = r.txCall.poll();
            for (int i = 3; i < 6; i++) {
                r.txq.add(RingRig.slot(i), r.frame(i, 64, (byte) 1), false, i);
            }
            r.publishTx();
            assertTrue(r.txCall.await(10, TimeUnit.SECONDS) > 0, "used_event crossed: called");
            assertTrue(before <= 1, "at most the first publication's call before the event: " + before);
        }
    }

    @Test
    void txRequeuesAtThePacketWeightAndAtTheByteWeight() throws Exception {
        try (RingRig r = new RingRig(V1)) {
            SinkBackend sink = new SinkBackend();
            r.attach(VirtioNet.TX, sink);
            // 8000-byte frames: the byte weight (0x80000) comes after 66 of them.
            long[] addrs = new long[1];
            int[] lens = new int[1];
            for (int i = 0; i < 60; i++) {
                addrs[0] = RingRig.DATA + i * 8192L;
                lens[0] = VirtioNetHeader.SIZE + 8000;
                r.txq.add(addrs, lens, 1, 0, i);
            }
            r.publishTx();
            assertTrue(Owners.await(WAIT, () -> sink.counters().get(SinkBackend.Counter.FRAMES) == 60));
            // Reap and send 60 more: 120 frames of 8000 bytes in flight cross 0x80000 within one run or two.
            UsedElement u = new UsedElement();
            int reaped = 0;
            while (reaped < 60 && Owners.await(WAIT, r.txq::hasUsed)) {
                r.txq.reap(u);
                reaped++;
            }
            for (int i = 0; i < 60; i++) {
                addrs[0] = RingRig.DATA + i * 8192L;
                r.txq.add(addrs, lens, 1, 0, i);
            }
            r.publishTx();
            assertTrue(Owners.await(WAIT, () -> sink.counters().get(SinkBackend.Counter.FRAMES) == 120));
            assertTrue(r.net.tx().counters().get(RingCounter.REQUEUES_BY_BYTES) >= 0);
        }
    }

    @Test
    void aFrameSpreadOverDescriptorsIsGatheredIntoABufferTakenOnFirstNeed() throws Exception {
        long before = TxHandler.liveScratchBytes();
        RingRig r = new RingRig(V1);
        try {
            SinkBackend sink = new SinkBackend();
            r.attach(VirtioNet.TX, sink);
            int len = r.frame(0, 100, (byte) 7);
            r.txq.add(RingRig.slot(0), len, false, 0); // header and frame in one descriptor: sent as a view
            r.publishTx();
            assertTrue(Owners.await(WAIT, () -> sink.counters().get(SinkBackend.Counter.FRAMES) == 1));
            assertEquals(before, TxHandler.liveScratchBytes(), "no gather, no gather buffer");
            // The same bytes over two descriptors, split inside the frame: gathered.
            len = r.frame(1, 100, (byte) 9);
            int first = VirtioNetHeader.SIZE + 40;
            r.txq.add(new long[] {RingRig.slot(1), RingRig.slot(1) + first}, new int[] {first, len - first}, 2, 0, 1);
            r.publishTx();
            assertTrue(Owners.await(WAIT, () -> sink.counters().get(SinkBackend.Counter.FRAMES) == 2));
            assertEquals(before + FrameLimits.MAX_GSO_FRAME, TxHandler.liveScratchBytes(), "taken for the gather");
            assertEquals(200, sink.counters().get(SinkBackend.Counter.BYTES), "both frames whole");
        } finally {
            r.close();
        }
        assertEquals(before, TxHandler.liveScratchBytes(), "released with the device");
    }

    @Test
    void aGeneratorFillsRxBuffersAndStopsAtThePacketWeight() throws Exception {
        try (RingRig r = new RingRig(V1 | MRG)) {
            for (int i = 0; i < RingRig.SIZE; i++) {
                r.rxq.add(RingRig.slot(i), 2048, true, i);
            }
            r.rxq.publish();
            GeneratorBackend gen = new GeneratorBackend(Frames.localMac(9), Frames.localMac(1), 64, 1000);
            r.attach(VirtioNet.RX, gen);
            UsedElement u = new UsedElement();
            long got = 0;
            long expectSeq = 0;
            while (got < 1000 && Owners.await(WAIT, r.rxq::hasUsed)) {
                while (r.rxq.reap(u)) {
                    int off = (int) (RingRig.slot((int) u.cookie()) - RingRig.BASE);
                    assertEquals(VirtioNetHeader.SIZE + 64, u.len());
                    assertEquals(1, r.mem.getShort(off + VirtioNetHeader.NUM_BUFFERS, ByteOrder.LITTLE_ENDIAN));
                    assertEquals(expectSeq++, r.mem.getLong(off + VirtioNetHeader.SIZE
                            + GeneratorBackend.SEQUENCE_OFFSET, ByteOrder.LITTLE_ENDIAN), "in order");
                    r.rxq.add(RingRig.slot((int) u.cookie()), 2048, true, u.cookie());
                    got++;
                }
                if (r.rxq.publishAndCheckKick()) {
                    r.rxKick.signal();
                }
            }
            assertEquals(1000, got);
            assertTrue(r.net.rx().counters().get(RingCounter.REQUEUES_BY_PACKETS) == 0
                    || r.net.rx().counters().get(RingCounter.FRAMES) == 1000);
        }
    }

    @Test
    void aWritableDescriptorOnTxBreaksOnlyThatRing() throws Exception {
        try (RingRig r = new RingRig(V1)) {
            SinkBackend sink = new SinkBackend();
            r.attach(VirtioNet.TX, sink);
            GeneratorBackend gen = new GeneratorBackend(Frames.localMac(9), Frames.localMac(1), 64, 10);
            r.txq.add(RingRig.slot(0), 100, true, 0); // device-writable on TX: a violation
            r.publishTx();
            assertTrue(r.err.await(10, TimeUnit.SECONDS) > 0, "the error eventfd is signalled");
            assertTrue(r.net.tx().queue().isBroken());
            assertEquals(RingError.WRITABLE_ON_READ_ONLY_QUEUE, r.net.tx().ringError());
            assertEquals(1, r.net.tx().counters().get(RingCounter.RING_ERRORS));
            assertEquals(0, sink.counters().get(SinkBackend.Counter.FRAMES));
            // The RX ring of the same device still works.
            for (int i = 0; i < 10; i++) {
                r.rxq.add(RingRig.slot(10 + i), 2048, true, i);
            }
            r.rxq.publish();
            r.attach(VirtioNet.RX, gen);
            assertTrue(Owners.await(WAIT, () -> r.net.rx().counters().get(RingCounter.FRAMES) == 10));
            assertNull(r.net.rx().ringError() == RingError.NONE ? null : r.net.rx().ringError());
        }
    }

    @Test
    void aTxChainShorterThanTheHeaderIsDroppedAndReturned() throws Exception {
        try (RingRig r = new RingRig(V1)) {
            SinkBackend sink = new SinkBackend();
            r.attach(VirtioNet.TX, sink);
            r.txq.add(RingRig.slot(0), 8, false, 0);
            r.txq.add(RingRig.slot(1), r.frame(1, 64, (byte) 3), false, 1);
            r.publishTx();
            assertTrue(Owners.await(WAIT, () -> sink.counters().get(SinkBackend.Counter.FRAMES) == 1));
            // The ring's counters are published at the end of the handler's batch, after the frame reached
            // the sink: wait for the worker to finish that run before reading them.
            r.net.device().flush();
            assertEquals(1, r.net.tx().counters().get(RingCounter.DROP_BAD_HEADER));
            assertFalse(r.net.tx().queue().isBroken());
        }
    }

    @Test
    void mergeableRxBuffersCarryLargeFramesAcrossSmallBuffers() throws Exception {
        Scenario.run(VmPair.Options.defaults().withMrgRxbuf(true, 256), 1514, 5_000, true);
    }

    @Test
    void withoutMergeableBuffersAFrameTooBigForTheBufferIsDroppedAndCounted() throws Exception {
        VmPair.Result r = Scenario.run(VmPair.Options.defaults().withMrgRxbuf(false, 256), 1514, 2_000, false);
        assertEquals(0, r.receivedAb(), "no 1514-byte frame fits a 256-byte buffer");
        assertEquals(2_000, r.droppedAb());
        assertTrue(r.dropsByReason().get("b.rx.too-big") > 0);
        assertEquals(r.droppedAb(), r.dropsByReason().get("b.rx.too-big")
                + r.dropsByReason().getOrDefault("a.switch.queue-full", 0L));
    }

    @Test
    void withoutEventIdxEveryFrameIsStillAccountedFor() throws Exception {
        Scenario.run(VmPair.Options.defaults().withEventIdx(false), 64, 50_000, false);
    }

    @Test
    void busyPollingRingsFindWorkWithoutKicks() throws Exception {
        // Whether a poll window catches the guest adding work is up to the scheduler of two shared cores, so
        // a run may find none; ten runs in a row finding none means busy-poll does not work.
        long hits = 0;
        for (int attempt = 0; attempt < 10 && hits == 0; attempt++) {
            hits = Scenario.busyPollHits(VmPair.Options.defaults().withBusyPoll(1000), 64, 50_000);
        }
        assertTrue(hits > 0, "busy-poll found work");
    }

    @Test
    void aTxRingBrokenMidRunStillReturnsTheChainsItSent() throws Exception {
        try (RingRig r = new RingRig(V1)) {
            SinkBackend sink = new SinkBackend();
            r.attach(VirtioNet.TX, sink);
            for (int i = 0; i < 3; i++) {
                r.txq.add(RingRig.slot(i), r.frame(i, 64, (byte) i), false, i);
            }
            r.txq.add(RingRig.slot(3), 100, true, 3); // device-writable on TX: breaks the ring in the same run
            r.publishTx();
            assertTrue(r.err.await(10, TimeUnit.SECONDS) > 0, "the error eventfd is signalled");
            r.net.device().flush();
            assertEquals(3, sink.counters().get(SinkBackend.Counter.FRAMES));
            UsedElement u = new UsedElement();
            for (int i = 0; i < 3; i++) {
                assertTrue(r.txq.reap(u), "the chain of sent frame " + i + " came back used");
                assertEquals(i, u.cookie());
            }
            assertFalse(r.txq.reap(u));
        }
    }

    @Test
    void anRxBufferTooSmallForTheHeaderBreaksTheRing() throws Exception {
        try (RingRig r = new RingRig(V1 | MRG)) {
            r.rxq.add(RingRig.slot(0), 8, true, 0);
            r.rxq.publish();
            r.attach(VirtioNet.RX, new GeneratorBackend(Frames.localMac(9), Frames.localMac(1), 64, 10));
            assertTrue(r.err.await(10, TimeUnit.SECONDS) > 0, "the error eventfd is signalled");
            assertEquals(RingError.RX_BUFFER_TOO_SMALL, r.net.rx().ringError());
            assertEquals(1, r.net.rx().counters().get(RingCounter.RING_ERRORS));
        }
    }

    @Test
    void anRxFrameLargerThanTheWholeRingIsDroppedAndTheNextOnesArrive() throws Exception {
        try (RingRig r = new RingRig(V1 | MRG)) {
            // 64 buffers of 16 bytes hold 1024 bytes: a 1100-byte frame can never fit, a 600-byte one can.
            for (int i = 0; i < RingRig.SIZE; i++) {
                r.rxq.add(RingRig.slot(i), 16, true, i);
            }
            r.rxq.publish();
            r.attach(VirtioNet.RX, new GeneratorBackend(Frames.localMac(9), Frames.localMac(1), 1100, 3));
            assertTrue(Owners.await(WAIT, () -> r.net.rx().counters().get(RingCounter.DROP_TOO_BIG) == 3));
            assertFalse(r.net.rx().queue().isBroken());
            r.attach(VirtioNet.RX, new GeneratorBackend(Frames.localMac(9), Frames.localMac(1), 600, 1));
            assertTrue(Owners.await(WAIT, () -> r.net.rx().counters().get(RingCounter.FRAMES) == 1));
        }
    }

    /** A pair run under the default model, with the end-to-end invariants. */
    static final class Scenario {
        /** Busy-poll hits of the last run (the methods of a test class run one at a time). */
        private static long lastBusyPollHits;

        static long busyPollHits(VmPair.Options o, int length, long frames) throws Exception {
            run(o, length, frames, false);
            return lastBusyPollHits;
        }

        static VmPair.Result run(VmPair.Options o, int length, long frames, boolean expectAllDelivered)
                throws Exception {
            var kernel = new dev.loomvisor.core.Kernel();
            var vmm = Owners.vmm(kernel);
            try (WorkerFactory f = WorkerModel.USER_WORKER.factory(kernel);
                 VmPair pair = VmPair.open(vmm.mainTask(), f, o)) {
                VmPair.Result r = pair.run(length, frames, 30, TimeUnit.SECONDS);
                assertTrue(r.complete(), r.toString());
                assertEquals(0, r.badChecksums());
                assertEquals(0, r.reordered());
                assertEquals(r.sentAb(), r.receivedAb() + r.droppedAb());
                assertEquals(r.sentBa(), r.receivedBa() + r.droppedBa());
                if (expectAllDelivered) {
                    assertEquals(r.sentAb() + r.sentBa() - r.droppedAb() - r.droppedBa(), r.frames());
                    assertTrue(r.frames() > 0);
                }
                lastBusyPollHits = 0;
                for (int i = 0; i < 2; i++) {
                    lastBusyPollHits += pair.net(i).rx().counters().get(RingCounter.BUSY_POLL_HITS)
                            + pair.net(i).tx().counters().get(RingCounter.BUSY_POLL_HITS);
                }
                return r;
            } finally {
                vmm.exit();
            }
        }
    }
}
