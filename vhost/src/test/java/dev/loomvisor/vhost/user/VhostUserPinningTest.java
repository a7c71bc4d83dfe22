package dev.loomvisor.vhost.user;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.loomvisor.core.worker.WorkerModel;
import dev.loomvisor.vhost.backend.GeneratorBackend;
import dev.loomvisor.vhost.user.testing.VhostUserFrontend;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.locks.LockSupport;
import jdk.jfr.Recording;
import jdk.jfr.consumer.RecordedEvent;
import jdk.jfr.consumer.RecordedThread;
import jdk.jfr.consumer.RecordingFile;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The vhost workers of a vhost-user session may run on virtual threads (user-worker, kthread-virtual) and
 * must never pin their carrier: only the epoll platform thread blocks natively. JFR's
 * jdk.VirtualThreadPinned (threshold 0) must show no event from traffic in both directions, while a
 * positive control (a virtual thread parking inside an upcall, i.e. under a native frame) shows the event
 * is recorded at all.
 */
class VhostUserPinningTest {

    private static final String CONTROL = "pin-control";

    @TempDir
    Path dir;

    /** qsort's comparator: parks, which pins since qsort's native frame is on the virtual thread's stack. */
    static int parkingCompare(MemorySegment a, MemorySegment b) {
        LockSupport.parkNanos(5_000_000);
        return 0;
    }

    static void parkUnderNativeFrame() throws Throwable {
        Linker linker = Linker.nativeLinker();
        MethodHandle qsort = linker.downcallHandle(linker.defaultLookup().find("qsort").orElseThrow(),
                FunctionDescriptor.ofVoid(ValueLayout.ADDRESS, ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG, ValueLayout.ADDRESS));
        MethodHandle cmp = MethodHandles.lookup().findStatic(VhostUserPinningTest.class, "parkingCompare",
                MethodType.methodType(int.class, MemorySegment.class, MemorySegment.class));
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment stub = linker.upcallStub(cmp, FunctionDescriptor.of(ValueLayout.JAVA_INT,
                    ValueLayout.ADDRESS.withTargetLayout(ValueLayout.JAVA_INT),
                    ValueLayout.ADDRESS.withTargetLayout(ValueLayout.JAVA_INT)), arena);
            MemorySegment array = arena.allocate(ValueLayout.JAVA_INT, 2);
            qsort.invokeExact(array, 2L, 4L, stub);
        }
    }

    @Test
    void trafficPinsNoCarrier() throws Throwable {
        Path jfr = dir.resolve("pin.jfr");
        try (Recording rec = new Recording()) {
            rec.enable("jdk.VirtualThreadPinned").withThreshold(Duration.ZERO).withStackTrace();
            rec.start();

            Thread control = Thread.ofVirtual().name(CONTROL).start(() -> {
                try {
                    parkUnderNativeFrame();
                } catch (Throwable t) {
                    throw new AssertionError(t);
                }
            });
            control.join();

            // Every model whose workers are virtual threads.
            for (WorkerModel model : new WorkerModel[] {WorkerModel.USER_WORKER, WorkerModel.KTHREAD_VIRTUAL}) {
                traffic(model);
            }
            rec.stop();
            rec.dump(jfr);
        }
        List<RecordedEvent> events = RecordingFile.readAllEvents(jfr);
        long controlEvents = 0;
        StringBuilder others = new StringBuilder();
        for (RecordedEvent e : events) {
            if (!e.getEventType().getName().equals("jdk.VirtualThreadPinned")) {
                continue;
            }
            RecordedThread t = e.getThread();
            if (t != null && CONTROL.equals(t.getJavaName())) {
                controlEvents++;
            } else {
                others.append(t == null ? "?" : t.getJavaName()).append(": ").append(e.getStackTrace()).append('\n');
            }
        }
        assertTrue(controlEvents >= 1, "the positive control recorded no jdk.VirtualThreadPinned event");
        assertEquals("", others.toString(), "pinned virtual threads during vhost-user traffic");
    }

    private void traffic(WorkerModel model) throws Exception {
        Sessions sessions = new Sessions();
        var cfg = VhostUserServer.Config.defaults().withModel(model)
                .withBackends((s, k) -> new GeneratorBackend(1, 2, 200, 20_000));
        try (VhostUserServer server = VhostUserServer.start(dir.resolve(model.modelName() + ".sock"), cfg, sessions);
             VhostUserFrontend fe = VhostUserFrontend.connect(server.socket(), 8 << 20)) {
            fe.handshake(VhostUserServerTest.WANTED);
            fe.setupVring(0, 256, true);
            fe.setupVring(1, 256, true);
            VhostUserSession s = sessions.nextOpened();
            // Both directions, in bursts, so the workers go idle (park) many times in between.
            VhostUserServerTest.send(fe, 1, 20_000, 200);
            VhostUserServerTest.receive(fe, 0, 20_000, 200);
            for (var w : s.net(0).device().workers()) {
                assertTrue(w.thread().task().thread().isVirtual(), model.modelName() + " runs on a virtual thread");
            }
            GeneratorBackend g = (GeneratorBackend) s.backend(0);
            long deadline = System.nanoTime() + 10_000_000_000L;
            while (g.counters().get(GeneratorBackend.Counter.TX_FRAMES) < 20_000 && System.nanoTime() < deadline) {
                Thread.sleep(1);
            }
            assertEquals(20_000, g.counters().get(GeneratorBackend.Counter.TX_FRAMES));
        }
    }
}
