package dev.loomvisor.vhost.robust;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.loomvisor.core.Kernel;
import dev.loomvisor.core.Process;
import dev.loomvisor.core.Task;
import dev.loomvisor.core.worker.WorkerFactory;
import dev.loomvisor.core.worker.WorkerModel;
import dev.loomvisor.vhost.net.TxHandler;
import dev.loomvisor.vhost.net.VhostNet;
import dev.loomvisor.vhost.net.VirtioNet;
import dev.loomvisor.vhost.testing.Owners;
import org.junit.jupiter.api.Test;

/** Faults the churn and wake-up checks found, one test each, named after the fault. */
class ChurnRegressionTest {

    /**
     * The TX handler gathered frames into a 64 KiB direct ByteBuffer, freed only when a GC ran its cleaner:
     * 10,000 device cycles held about 260 MB of native memory (NMT "Other") after every device was released.
     */
    @Test
    void txGatherBufferHeldUntilGcAfterRelease() throws Exception {
        Kernel kernel = new Kernel();
        Process vmm = Owners.vmm(kernel);
        Task owner = vmm.mainTask();
        long before = TxHandler.liveScratchBytes();
        try (WorkerFactory f = WorkerModel.USER_WORKER.factory(kernel)) {
            VhostNet n = VhostNet.open(owner, f);
            n.device().setOwner(owner);
            assertEquals(before + VirtioNet.MAX_FRAME, TxHandler.liveScratchBytes(), "an open device holds one");
            n.close();
            assertEquals(before, TxHandler.liveScratchBytes(), "release freed it, no GC needed");
            n.close();
            assertEquals(before, TxHandler.liveScratchBytes(), "a second release frees nothing twice");
        }
    }
}
