package dev.loomvisor.stress;

import dev.loomvisor.core.Notifier;
import java.util.concurrent.atomic.AtomicLong;
import org.openjdk.jcstress.annotations.Actor;
import org.openjdk.jcstress.annotations.Arbiter;
import org.openjdk.jcstress.annotations.Description;
import org.openjdk.jcstress.annotations.Expect;
import org.openjdk.jcstress.annotations.JCStressTest;
import org.openjdk.jcstress.annotations.Outcome;
import org.openjdk.jcstress.annotations.State;
import org.openjdk.jcstress.infra.results.JJJ_Result;

/**
 * The eventfd counter: one count already pending (signalled before the listener was installed), then a
 * signal races a read; the arbiter reads the rest. r1: the racing read, r2: the final read, r3: listener
 * calls. Every signal is counted exactly once across the reads; the racing one is heard exactly once.
 */
@JCStressTest
@Description("Notifier: signal/consume counter and listener, exactly once")
@Outcome(id = {"1, 1, 1", "2, 0, 1"}, expect = Expect.ACCEPTABLE, desc = "each signal read once, heard once")
@Outcome(expect = Expect.FORBIDDEN, desc = "a signal lost, read twice or not heard")
@State
public class NotifierSignalConsume {

    private final Notifier n = new Notifier();
    private final AtomicLong heard = new AtomicLong();

    public NotifierSignalConsume() {
        n.signal();
        n.setListener(x -> heard.incrementAndGet());
    }

    @Actor
    public void signal() {
        n.signal();
    }

    @Actor
    public void read(JJJ_Result r) {
        r.r1 = n.poll();
    }

    @Arbiter
    public void arbiter(JJJ_Result r) {
        r.r2 = n.poll();
        r.r3 = heard.get();
    }
}
