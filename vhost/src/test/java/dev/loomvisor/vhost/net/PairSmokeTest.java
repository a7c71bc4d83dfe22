package dev.loomvisor.vhost.net;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.loomvisor.core.Kernel;
import dev.loomvisor.core.Process;
import dev.loomvisor.core.worker.WorkerFactory;
import dev.loomvisor.core.worker.WorkerModel;
import dev.loomvisor.vhost.testing.NetPair;
import dev.loomvisor.vhost.testing.Owners;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

class PairSmokeTest {

    @Test
    void framesCrossTheSwitchBothWays() throws Exception {
        Kernel kernel = new Kernel();
        Process vmm = Owners.vmm(kernel);
        try (WorkerFactory f = WorkerModel.USER_WORKER.factory(kernel);
             NetPair pair = NetPair.open(vmm.mainTask(), f, NetPair.Options.defaults())) {
            NetPair.Result r = pair.run(64, 20_000, 20, TimeUnit.SECONDS);
            System.out.println(r);
            System.out.println(NetPair.describe(pair.net(0).tx()) + "\n" + NetPair.describe(pair.net(1).rx()));
            assertTrue(r.complete(), r.toString());
            assertEquals(0, r.badChecksums());
            assertEquals(0, r.reordered());
            assertEquals(r.sentAb(), r.receivedAb() + r.droppedAb());
        } finally {
            vmm.exit();
        }
    }
}
