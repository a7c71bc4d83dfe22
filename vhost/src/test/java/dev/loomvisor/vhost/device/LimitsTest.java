package dev.loomvisor.vhost.device;

import static dev.loomvisor.vhost.testing.Errnos.assertErrno;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.loomvisor.core.Errno;
import dev.loomvisor.core.ErrnoException;
import dev.loomvisor.core.Kernel;
import dev.loomvisor.core.Process;
import dev.loomvisor.core.worker.WorkerFactory;
import dev.loomvisor.core.worker.WorkerModel;
import dev.loomvisor.vhost.net.VhostNet;
import dev.loomvisor.vhost.testing.Owners;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * RLIMIT_NPROC and vhost workers (user-workers.md sections 2 and 5): user workers are the owner's threads
 * and hit its limit; kthreads are kthreadd's children and never do: the excess Linux 6.4 removed.
 */
class LimitsTest {

    static final int UID = 2000;

    @ParameterizedTest
    @ValueSource(ints = {1, 2, 5, 9})
    void userWorkersFailExactlyAtTheLimitWithEnomemAndLeaveNothingBehind(int nproc) throws Exception {
        Kernel kernel = new Kernel();
        Process vmm = Owners.vmm(kernel, "qemu", UID, nproc);
        List<VhostNet> devices = new ArrayList<>();
        try (WorkerFactory f = WorkerModel.USER_WORKER.factory(kernel)) {
            long before = kernel.ucounts().count(UID);
            assertEquals(1, before, "the owner's own task counts");
            VhostNet failed = null;
            while (failed == null) {
                VhostNet n = VhostNet.open(vmm.mainTask(), f);
                try {
                    n.device().setOwner(vmm.mainTask());
                    devices.add(n);
                    assertTrue(devices.size() <= nproc, "more workers than RLIMIT_NPROC allows");
                } catch (ErrnoException e) {
                    assertEquals(Errno.ENOMEM, e.errno(), "any creation failure is ENOMEM: " + e.getMessage());
                    failed = n;
                }
            }
            assertEquals(nproc - 1, devices.size(), "the failure comes exactly at the limit");
            assertEquals(nproc, kernel.ucounts().count(UID));
            assertEquals(nproc, vmm.tasks().size(), "owner plus one worker per device");
            assertFalse(failed.device().hasOwner(), "no partial device");
            assertTrue(failed.device().workers().isEmpty());
            failed.close();
            if (!devices.isEmpty()) {
                // NEW_WORKER is counted the same way.
                VhostNet d = devices.get(0);
                assertErrno(Errno.ENOMEM, () -> d.device().newWorker(vmm.mainTask()));
                // Freeing a device gives its worker's count back, and a new device fits again.
                d.close();
                devices.remove(0);
                assertTrue(Owners.await(java.time.Duration.ofSeconds(10),
                        () -> kernel.ucounts().count(UID) == nproc - 1));
                VhostNet again = VhostNet.open(vmm.mainTask(), f);
                again.device().setOwner(vmm.mainTask());
                devices.add(again);
            }
            devices.forEach(VhostNet::close);
        } finally {
            devices.forEach(VhostNet::close);
            vmm.exit();
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"kthread", "kthread-virtual", "kthread-pool"})
    void kthreadWorkersNeverFailAndTheOwnersCountNeverMoves(String model) throws Exception {
        Kernel kernel = new Kernel();
        int nproc = 2;
        Process vmm = Owners.vmm(kernel, "qemu", UID, nproc);
        List<VhostNet> devices = new ArrayList<>();
        try (WorkerFactory f = WorkerModel.byName(model).factory(kernel, 2)) {
            for (int i = 0; i < 5 * nproc; i++) {
                VhostNet n = VhostNet.open(vmm.mainTask(), f);
                n.device().setOwner(vmm.mainTask());
                devices.add(n);
                assertEquals(1, kernel.ucounts().count(UID), "kthreads are not the owner's tasks");
                assertEquals(1, vmm.tasks().size());
            }
            assertEquals(5 * nproc, devices.size(), "more workers than the owner's RLIMIT_NPROC: the old excess");
            devices.forEach(VhostNet::close); // before the factory closes (a pool's threads go with it)
        } finally {
            devices.forEach(VhostNet::close);
            vmm.exit();
        }
    }
}
