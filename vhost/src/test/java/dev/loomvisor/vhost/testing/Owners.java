package dev.loomvisor.vhost.testing;

import dev.loomvisor.core.Credentials;
import dev.loomvisor.core.ErrnoException;
import dev.loomvisor.core.Kernel;
import dev.loomvisor.core.Process;
import dev.loomvisor.core.Rlimits;

/** Emulated VMM processes for tests: an unprivileged user's process in the root cgroup. */
public final class Owners {

    private Owners() {
    }

    public static Process vmm(Kernel kernel, String comm, int uid, long nproc) {
        try {
            return kernel.spawn(comm, Credentials.user(uid, uid), nproc == Long.MAX_VALUE ? Rlimits.unlimited()
                    : Rlimits.nproc(nproc), kernel.rootCgroup());
        } catch (ErrnoException e) {
            throw new IllegalStateException(e);
        }
    }

    public static Process vmm(Kernel kernel) {
        return vmm(kernel, "qemu", 1000, Long.MAX_VALUE);
    }
}
