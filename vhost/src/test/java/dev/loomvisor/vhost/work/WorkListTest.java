package dev.loomvisor.vhost.work;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLongArray;
import java.util.concurrent.locks.LockSupport;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.Test;

/** The work-list rules of user-workers.md section 4, each on its own, driven from the test thread. */
class WorkListTest {

    private final WorkList list = new WorkList();
    private final List<String> ran = new ArrayList<>();

    private VhostWork named(String name) {
        return new VhostWork(w -> ran.add(name));
    }

    @Test
    void queueingAQueuedWorkIsANoOp() {
        VhostWork a = named("a");
        assertTrue(list.queue(a), "first queue on an empty list asks for a wake-up");
        assertTrue(a.isQueued());
        assertFalse(list.queue(a), "already queued: nothing added, no wake-up");
        assertTrue(list.runAll());
        assertEquals(List.of("a"), ran, "runs once");
        assertFalse(a.isQueued());
        assertFalse(list.runAll(), "nothing left");
    }

    @Test
    void onlyTheFirstProducerOnAnEmptyListWakes() {
        assertTrue(list.queue(named("a")));
        assertFalse(list.queue(named("b")), "list not empty: the consumer's wake-up is already owed");
        list.runAll();
        assertTrue(list.queue(named("c")), "emptied by the consumer: wake again");
    }

    @Test
    void batchRunsInFifoOrder() {
        for (String s : List.of("a", "b", "c", "d", "e")) {
            list.queue(named(s));
        }
        list.runAll();
        assertEquals(List.of("a", "b", "c", "d", "e"), ran);
    }

    @Test
    void queuedIsClearedJustBeforeTheCallback() {
        boolean[] seen = new boolean[1];
        VhostWork[] self = new VhostWork[1];
        self[0] = new VhostWork(w -> seen[0] = self[0].isQueued());
        list.queue(self[0]);
        list.runAll();
        assertFalse(seen[0], "inside its callback the work is no longer queued");
    }

    @Test
    void selfRequeueRunsInTheNextBatchAfterTheOthers() {
        int[] runs = new int[1];
        VhostWork[] self = new VhostWork[1];
        self[0] = new VhostWork(w -> {
            ran.add("self" + runs[0]);
            if (runs[0]++ == 0) {
                assertTrue(list.queue(w), "requeue during a batch lands on the (empty) fresh list");
            }
        });
        list.queue(self[0]);
        list.queue(named("other"));
        assertTrue(list.runAll());
        assertEquals(List.of("self0", "other"), ran, "the requeued work did not run again in this batch");
        assertTrue(list.runAll());
        assertEquals(List.of("self0", "other", "self1"), ran);
        assertFalse(list.runAll());
    }

    @Test
    void aThrowingCallbackDoesNotStrandTheBatch() {
        RuntimeException boom = new IllegalStateException("boom");
        list.queue(named("a"));
        list.queue(new VhostWork(w -> {
            throw boom;
        }));
        VhostWork c = named("c");
        list.queue(c);
        list.runAll();
        assertEquals(List.of("a", "c"), ran);
        assertEquals(1, list.failures());
        assertSame(boom, list.firstFailure());
        assertFalse(c.isQueued());
    }

    /**
     * Many producers publish a new value, then queue; one consumer records what each callback sees. After
     * the producers stop and the list drains, every work's callback must have seen its last value: a
     * queue that found QUEUED set relied on the pending run seeing its write.
     */
    @RepeatedTest(5)
    void noUpdateIsLostUnderContention() throws Exception {
        int works = 8;
        int producers = 3;
        int rounds = 20_000;
        AtomicLongArray published = new AtomicLongArray(works);
        long[] seen = new long[works];
        VhostWork[] w = new VhostWork[works];
        for (int i = 0; i < works; i++) {
            int k = i;
            w[i] = new VhostWork(x -> seen[k] = published.get(k));
        }
        AtomicBoolean done = new AtomicBoolean();
        Thread consumer = Thread.ofPlatform().start(() -> {
            while (!done.get()) {
                if (!list.runAll()) {
                    LockSupport.parkNanos(1000);
                }
            }
            list.runAll();
        });
        CountDownLatch finished = new CountDownLatch(producers);
        for (int p = 0; p < producers; p++) {
            int id = p;
            Thread.ofPlatform().start(() -> {
                for (int r = 0; r < rounds; r++) {
                    int k = (r + id) % works;
                    published.incrementAndGet(k);
                    list.queue(w[k]);
                }
                finished.countDown();
            });
        }
        assertTrue(finished.await(20, TimeUnit.SECONDS));
        done.set(true);
        consumer.join(TimeUnit.SECONDS.toMillis(20));
        assertFalse(consumer.isAlive());
        for (int k = 0; k < works; k++) {
            assertEquals(published.get(k), seen[k], "work " + k + " saw its last publication");
            assertFalse(w[k].isQueued());
        }
    }
}
