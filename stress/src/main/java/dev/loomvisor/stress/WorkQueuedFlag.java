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
 * The QUEUED bit against the consumer clearing it: W is queued before the race; a producer queues W again
 * while the consumer runs the list once; the arbiter drains. r1: whether the producer was told to wake;
 * r2: runs of W; r3: W still marked queued at the end.
 *
 * <p>Before the consumer clears QUEUED the second queueing coalesces into the pending run (no push, no
 * wake); after it, W is pushed again onto the list the consumer emptied (a wake) and runs again. Never a
 * push without its run, a run without its push, or a stale QUEUED bit.
 */
@JCStressTest
@Description("VhostWork QUEUED bit vs the consumer's clear: coalesce or requeue, never lose")
@Outcome(id = "0, 1, 0", expect = Expect.ACCEPTABLE, desc = "coalesced into the pending run")
@Outcome(id = "1, 2, 0", expect = Expect.ACCEPTABLE, desc = "queued again after the clear: runs again")
@Outcome(expect = Expect.FORBIDDEN, desc = "lost, duplicated, or left marked queued")
@State
public class WorkQueuedFlag {

    private final WorkList list = new WorkList();
    private int runs;
    private final VhostWork w = new VhostWork(x -> runs++);

    public WorkQueuedFlag() {
        list.queue(w);
    }

    @Actor
    public void producer(III_Result r) {
        r.r1 = list.queue(w) ? 1 : 0;
    }

    @Actor
    public void consumer() {
        list.runAll();
    }

    @Arbiter
    public void arbiter(III_Result r) {
        list.runAll();
        r.r2 = runs;
        r.r3 = w.isQueued() ? 1 : 0;
    }
}
