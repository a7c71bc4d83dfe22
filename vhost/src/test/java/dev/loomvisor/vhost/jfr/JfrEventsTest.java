package dev.loomvisor.vhost.jfr;

import dev.loomvisor.vmm.net.NetFeatures;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.loomvisor.vhost.backend.Frames;
import dev.loomvisor.vhost.backend.L2Switch;
import dev.loomvisor.vhost.backend.SinkBackend;
import dev.loomvisor.vhost.net.VirtioNet;
import dev.loomvisor.vhost.testing.RingRig;
import dev.loomvisor.vhost.user.CloseReason;
import dev.loomvisor.vhost.user.VhostUser;
import dev.loomvisor.vhost.user.VhostUserServer;
import dev.loomvisor.vhost.user.VhostUserSession;
import dev.loomvisor.vhost.user.testing.VhostUserFrontend;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import jdk.jfr.Recording;
import jdk.jfr.consumer.RecordedEvent;
import jdk.jfr.consumer.RecordingFile;
import org.agrona.concurrent.UnsafeBuffer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Each Loomvisor event kind, produced by the code that owns it, read back from a recording file with the
 * JDK's RecordingFile, with the fields a reader of the recording relies on.
 */
class JfrEventsTest {

    @TempDir
    Path dir;

    private static List<RecordedEvent> named(List<RecordedEvent> all, String name) {
        return all.stream().filter(e -> e.getEventType().getName().equals(name)).toList();
    }

    @Test
    void everyEventKindIsRecordedWithItsFields() throws Exception {
        Path file = dir.resolve("events.jfr");
        try (Recording rec = new Recording()) {
            for (String n : List.of("WorkerCreated", "WorkerExited", "RingError", "DeviceOwner", "SessionOpened",
                    "SessionClosed")) {
                rec.enable("dev.loomvisor." + n);
            }
            // At the start and the end of the recording: the end sees the drops below.
            rec.enable("dev.loomvisor.SwitchDrops").with("period", "endChunk");
            rec.start();

            // A device with an owner and a worker; a TX ring broken by a device-writable descriptor.
            try (RingRig r = new RingRig(NetFeatures.VERSION_1)) {
                r.attach(VirtioNet.TX, new SinkBackend());
                r.txq.add(RingRig.slot(0), 100, true, 0);
                r.publishTx();
                assertTrue(r.err.await(10, TimeUnit.SECONDS) > 0, "the ring broke");
            }

            // A vhost-user session that the frontend opens and closes.
            CountDownLatch closed = new CountDownLatch(1);
            try (VhostUserServer server = VhostUserServer.start(dir.resolve("s.sock"), VhostUserServer.Config.defaults(),
                    new VhostUserServer.Listener() {
                        @Override
                        public void closed(VhostUserSession session, CloseReason reason) {
                            closed.countDown();
                        }
                    })) {
                VhostUserFrontend fe = VhostUserFrontend.connect(server.socket(), 4 << 20);
                fe.handshake(NetFeatures.VERSION_1 | VhostUser.F_PROTOCOL_FEATURES);
                fe.close();
                assertTrue(closed.await(10, TimeUnit.SECONDS), "the session ended");
            }

            // A switch whose one port has nowhere to flood to: every frame is dropped (NO_PORT).
            L2Switch sw = new L2Switch();
            L2Switch.Port a = sw.addPort("a");
            var frame = new UnsafeBuffer(new byte[64]);
            Frames.writeMac(frame, Frames.DST_OFFSET, Frames.localMac(2));
            Frames.writeMac(frame, Frames.SRC_OFFSET, Frames.localMac(1));
            frame.putShort(Frames.ETHERTYPE_OFFSET, (short) Frames.ETHERTYPE_EXPERIMENTAL, ByteOrder.BIG_ENDIAN);
            for (int i = 0; i < 1000; i++) {
                a.transmit(frame, 0, 64);
            }
            assertEquals(1000, a.counters().get(L2Switch.PortCounter.TX_DROP_NO_PORT));

            rec.stop();
            rec.dump(file);
        }
        List<RecordedEvent> all = RecordingFile.readAllEvents(file);

        var created = named(all, "dev.loomvisor.WorkerCreated");
        assertTrue(created.stream().anyMatch(e -> e.getString("model").equals("user-worker") && e.getInt("ownerPid") > 0
                && e.getInt("workerTid") > 0 && e.getString("errno").isEmpty()), created.toString());
        assertTrue(named(all, "dev.loomvisor.WorkerExited").stream().anyMatch(e -> e.getString("cause").equals("stopped")
                && e.getString("model").equals("user-worker")));
        var owners = named(all, "dev.loomvisor.DeviceOwner");
        assertTrue(owners.stream().anyMatch(e -> e.getString("action").equals("set") && e.getInt("ownerPid") > 0));
        assertTrue(owners.stream().anyMatch(e -> e.getString("action").equals("reset")), owners.toString());

        var ring = named(all, "dev.loomvisor.RingError");
        assertEquals(1, ring.size(), ring.toString());
        assertEquals("WRITABLE_ON_READ_ONLY_QUEUE", ring.get(0).getString("rule"));
        assertEquals(VirtioNet.TX, ring.get(0).getInt("queue"));
        assertTrue(ring.get(0).getString("device").startsWith("vhost-net@"));

        var opened = named(all, "dev.loomvisor.SessionOpened");
        var ended = named(all, "dev.loomvisor.SessionClosed");
        assertEquals(1, opened.size());
        assertEquals(1, ended.size());
        assertEquals(opened.get(0).getString("session"), ended.get(0).getString("session"));
        assertTrue(opened.get(0).getString("socket").endsWith("s.sock"));
        assertEquals("PEER_CLOSED", ended.get(0).getString("cause"));

        var drops = named(all, "dev.loomvisor.SwitchDrops").stream().filter(e -> e.getLong("noPort") == 1000).toList();
        assertEquals(1, drops.size(), "one counter event for a thousand drops, not a thousand events");
        assertEquals(1, drops.get(0).getInt("ports"));
        assertTrue(all.stream().allMatch(e -> e.getEventType().getCategoryNames().equals(List.of("Loomvisor"))));
    }
}
