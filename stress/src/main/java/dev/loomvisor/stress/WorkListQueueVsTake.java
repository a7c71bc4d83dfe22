package dev.loomvisor.stress;

import dev.loomvisor.vhost.work.VhostWork;
import dev.loomvisor.vhost.work.WorkList;
import org.openjdk.jcstress.annotations.Actor;
import org.openjdk.jcstress.annotations.Arbiter;
import org.openjdk.jcstress.annotations.Description;
import org.openjdk.jcstress.annotations.Expect;
import org.openjdk.jcstress.annotations.JCStressTest;
import org.openjdk.jcstress.annotations.Outcome;
import org.openjdk.jcstress.annotations.State;
import org.openjdk.jcstress.infra.results.III_Result;

/**
 * llist_add against llist_del_all with work already pending: B is queued before the race, then a producer
 * queues A while the consumer takes the list once; the arbiter drains the rest. r1: whether the producer
 * was told to wake the consumer (it found the list empty); r2: works the consumer's take ran; r3: runs of
 * A * 10 + runs of B.
 *
 * <p>The lost wake-up this guards against: A pushed onto the non-empty list (no wake owed) yet missing
 * from the consumer's take, which would leave it queued with the consumer asleep ("0, 1, 11").
 */
@JCStressTest
@Description("WorkList: queue vs take with work pending; exactly once, no lost wake-up")
@Outcome(id = "0, 2, 11", expect = Expect.ACCEPTABLE, desc = "A pushed before the take: taken together, no wake needed")
@Outcome(id = "1, 1, 11", expect = Expect.ACCEPTABLE, desc = "A pushed after the take onto the empty list: wake")
@Outcome(expect = Expect.FORBIDDEN, desc = "a work lost or run twice, or a wake-up lost")
@State
public class WorkListQueueVsTake {

    private final WorkList list = new WorkList();
    private int runsA;
    private int runsB;
    private final VhostWork a = new VhostWork(w -> runsA++);
    private int consumerRan;

    public WorkListQueueVsTake() {
        list.queue(new VhostWork(w -> runsB++));
    }

    @Actor
    public void producer(III_Result r) {
        r.r1 = list.queue(a) ? 1 : 0;
    }

    @Actor
    public void consumer() {
        list.runAll(); // only the consumer and, after it, the arbiter run callbacks
        consumerRan = runsA + runsB;
    }

    @Arbiter
    public void arbiter(III_Result r) {
        list.runAll();
        r.r2 = consumerRan;
        r.r3 = runsA * 10 + runsB;
    }
}
