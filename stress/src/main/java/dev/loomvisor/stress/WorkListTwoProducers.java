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
 * Two producers push distinct works onto an empty list at once; the arbiter, as the consumer, runs it.
 * r1, r2: whether each was told to wake the consumer; r3: runs of A * 10 + runs of B. Exactly one push found
 * the list empty (one wake, never none, never two), both works run once, in arrival order.
 */
@JCStressTest
@Description("WorkList: concurrent llist_add; one wake, both run once")
@Outcome(id = {"1, 0, 11", "0, 1, 11"}, expect = Expect.ACCEPTABLE, desc = "the first push wakes")
@Outcome(expect = Expect.FORBIDDEN, desc = "no wake, two wakes, or a work lost or duplicated")
@State
public class WorkListTwoProducers {

    private final WorkList list = new WorkList();
    private int runsA;
    private int runsB;
    private final VhostWork a = new VhostWork(w -> runsA++);
    private final VhostWork b = new VhostWork(w -> runsB++);

    @Actor
    public void producerA(III_Result r) {
        r.r1 = list.queue(a) ? 1 : 0;
    }

    @Actor
    public void producerB(III_Result r) {
        r.r2 = list.queue(b) ? 1 : 0;
    }

    @Arbiter
    public void arbiter(III_Result r) {
        list.runAll();
        r.r3 = runsA * 10 + runsB;
    }
}
