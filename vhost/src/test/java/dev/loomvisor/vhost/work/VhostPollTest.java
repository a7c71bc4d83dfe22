package dev.loomvisor.vhost.work;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.loomvisor.core.Notifier;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** vhost_poll on a kick notifier, driven without threads: a recording target stands in for the worker. */
class VhostPollTest {

    private final List<VhostWork> queued = new ArrayList<>();
    private final VhostWork work = new VhostWork(w -> { });
    private final VhostPoll poll = new VhostPoll(work, w -> queued.add(w));

    @Test
    void aKickQueuesTheRingsWork() {
        Notifier kick = new Notifier();
        poll.start(kick);
        assertTrue(queued.isEmpty(), "no kick yet");
        kick.signal();
        assertEquals(List.of(work), queued);
    }

    @Test
    void startingOnAnAlreadySignalledKickQueuesAtOnce() {
        Notifier kick = new Notifier();
        kick.signal();
        poll.start(kick);
        assertEquals(List.of(work), queued);
    }

    @Test
    void aStoppedPollNoLongerListens() {
        Notifier kick = new Notifier();
        poll.start(kick);
        poll.stop();
        kick.signal();
        assertTrue(queued.isEmpty());
        assertNull(poll.notifier());
    }

    @Test
    void queueingWithoutAWorkerReportsFalse() {
        VhostPoll orphan = new VhostPoll(work, new WorkerSlot());
        assertFalse(orphan.queue());
    }
}
