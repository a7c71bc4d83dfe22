package dev.loomvisor.vhost.testing;

import dev.loomvisor.core.Credentials;
import dev.loomvisor.core.ErrnoException;
import dev.loomvisor.core.Kernel;
import dev.loomvisor.core.KernelCloneArgs;
import dev.loomvisor.core.Process;
import dev.loomvisor.core.Rlimits;
import dev.loomvisor.core.Task;
import java.time.Duration;
import java.util.function.BooleanSupplier;

/** Emulated VMM processes for tests, and bounded waits. */
public final class Owners {

    private Owners() {
    }

    /** An unprivileged process of {@code uid} in the root cgroup with RLIMIT_NPROC {@code nproc}. */
    public static Process vmm(Kernel kernel, String comm, int uid, long nproc) {
        try {
            return kernel.spawn(comm, Credentials.user(uid, uid), Rlimits.nproc(nproc), kernel.rootCgroup());
        } catch (ErrnoException e) {
            throw new IllegalStateException(e);
        }
    }

    public static Process vmm(Kernel kernel) {
        return vmm(kernel, "qemu", 1000, Rlimits.INFINITY);
    }

    /** A pthread of {@code p} (same mm), not started: it stands for another thread of the VMM. */
    public static Task thread(Process p) throws ErrnoException {
        return p.kernel().copyProcess(p.mainTask(),
                new KernelCloneArgs().flags(KernelCloneArgs.PTHREAD_FLAGS).exitSignal(null).name("vcpu"));
    }

    /** Waits until {@code condition} holds; false after {@code timeout}. No fixed sleeps. */
    public static boolean await(Duration timeout, BooleanSupplier condition) {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() - deadline > 0) {
                return false;
            }
            Thread.onSpinWait();
            Thread.yield();
        }
        return true;
    }
}
