package dev.loomvisor.vhost.net;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.loomvisor.core.Kernel;
import dev.loomvisor.core.Process;
import dev.loomvisor.core.worker.WorkerFactory;
import dev.loomvisor.core.worker.WorkerModel;
import dev.loomvisor.vhost.fixture.Guest;
import dev.loomvisor.vhost.fixture.VmLab;
import dev.loomvisor.vhost.fixture.VmPair;
import dev.loomvisor.vhost.testing.Owners;
import dev.loomvisor.vmm.driver.TrafficSource;
import java.time.Duration;
import org.junit.jupiter.api.Test;

/**
 * An open-loop plan given a start time ({@code TrafficSource.startingAt}) keeps its frames' due times on that
 * start, not on the moment the vCPU takes the plan up: a fleet's senders are spread over one interval that way.
 * A start three and a half intervals in the past makes exactly four frames due at once, each stamped with its own
 * due time, and the fifth not before half an interval from now. Intervals of a minute keep this a matter of
 * counts and stamps, not timing. The sender's lateness sink sees each of the four as late as it was.
 */
class PacedStartTest {

    private static final double INTERVAL_NANOS = 60e9;

    @Test
    void framesAreDueFromTheGivenStartNotFromWhenTheVcpuTookThePlan() throws Exception {
        Kernel kernel = new Kernel();
        Process vmm = Owners.vmm(kernel);
        try (WorkerFactory f = WorkerModel.USER_WORKER.factory(kernel);
             VmLab lab = new VmLab(vmm.mainTask(), f, VmPair.Options.defaults())) {
            Guest a = lab.addVm("a").guest();
            Guest b = lab.addVm("b").guest();
            b.recordLatencies(8, a.mac());
            b.plan(a.mac(), 64, 0, 0);
            b.start();
            long[] lateness = new long[8];
            int[] lateCount = new int[1];
            a.driver().setLatenessSink(v -> lateness[lateCount[0]++] = v);
            long start = System.nanoTime() - (long) (3.5 * INTERVAL_NANOS);
            a.driver().transmit(TrafficSource.paced(64, INTERVAL_NANOS, 8, Guest.macBytes(b.mac()))
                    .stampIntended().startingAt(start));
            a.start();
            assertTrue(Owners.await(Duration.ofSeconds(10), () -> b.receivedFrom(a.mac()) == 4),
                    "the four frames due since the start arrive at once: " + b.receivedFrom(a.mac()));
            long[] latencies = b.latencies();
            for (int k = 0; k < 4; k++) {
                // Stamped with start + k intervals, so each is at least (3.5 - k) intervals old on arrival.
                assertTrue(latencies[k] >= (long) ((3.5 - k) * INTERVAL_NANOS),
                        "frame " + k + " latency " + latencies[k] + " ns");
            }
            assertEquals(4, a.sent(), "frame 4 is due half an interval from now");
            // The sender's own lateness, handed over as each frame went on the ring: as old as the frame when sent.
            assertEquals(4, lateCount[0]);
            for (int k = 0; k < 4; k++) {
                assertTrue(lateness[k] >= (long) ((3.5 - k) * INTERVAL_NANOS) && lateness[k] <= latencies[k],
                        "frame " + k + " sent " + lateness[k] + " ns late, received " + latencies[k] + " ns after due");
            }
        } finally {
            vmm.exit();
        }
    }

    @Test
    void aStartTimeSurvivesTheOtherVariants() {
        TrafficSource s = TrafficSource.paced(64, 1e6, 10, new byte[6]);
        assertTrue(!s.anchored(), "a plan starts when the vCPU takes it up unless told otherwise");
        TrafficSource anchored = s.startingAt(1234L).stampIntended().pings();
        assertTrue(anchored.anchored());
        assertEquals(1234L, anchored.startNanos());
        assertTrue(anchored.stampsIntended());
    }
}
