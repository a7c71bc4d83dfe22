package dev.loomvisor.core;

import dev.loomvisor.core.worker.VhostTask;
import static dev.loomvisor.core.KernelFixture.IDLE;
import static dev.loomvisor.core.KernelFixture.NO_SIGKILL;
import static dev.loomvisor.core.KernelFixture.UID;
import static dev.loomvisor.core.KernelFixture.owner;
import static dev.loomvisor.core.KernelFixture.plainThread;

import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.constraints.IntRange;

/** Reference section 1 steps 6 and 8 as properties: the number of user workers an owner gets is exact. */
class LimitsPropertiesTest {

    @Property(tries = 200)
    boolean userWorkersFillExactlyTheTighterOfRlimitAndPidsMax(
            @ForAll @IntRange(min = 1, max = 12) int nproc,
            @ForAll @IntRange(min = 1, max = 12) int pidsMax,
            @ForAll @IntRange(min = 0, max = 4) int otherThreads) throws Exception {
        Kernel k = new Kernel();
        Cgroup vm = k.rootCgroup().mkdir("vm");
        vm.setPidsMax(pidsMax);
        Process p;
        try {
            p = owner(k, nproc, vm);
        } catch (ErrnoException e) {
            return false; // nproc and pidsMax are at least 1: the owner always fits
        }
        int threads = 0;
        for (int i = 0; i < otherThreads; i++) {
            try {
                plainThread(p);
                threads++;
            } catch (ErrnoException e) {
                break;
            }
        }
        int workers = 0;
        for (int i = 0; i < 30; i++) {
            try {
                VhostTask.create(p.mainTask(), IDLE, NO_SIGKILL, null);
                workers++;
            } catch (ErrnoException e) {
                if (e.errno() != Errno.EAGAIN) {
                    return false;
                }
            }
        }
        int expectedTotal = Math.min(nproc, pidsMax);
        boolean exact = 1 + threads + workers == expectedTotal
                && k.ucounts().count(UID) == expectedTotal
                && vm.pidsCurrent() == expectedTotal;
        p.exit();
        return exact && k.ucounts().count(UID) == 0 && vm.pidsCurrent() == 0 && k.nrThreads() == 2;
    }
}
