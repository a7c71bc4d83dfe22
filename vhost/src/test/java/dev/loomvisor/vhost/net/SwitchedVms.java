package dev.loomvisor.vhost.net;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.loomvisor.core.Credentials;
import dev.loomvisor.core.ErrnoException;
import dev.loomvisor.core.Kernel;
import dev.loomvisor.core.Process;
import dev.loomvisor.core.Rlimits;
import dev.loomvisor.core.worker.WorkerFactory;
import dev.loomvisor.core.worker.WorkerModel;
import dev.loomvisor.vhost.backend.L2Switch;
import dev.loomvisor.vmm.VM;
import dev.loomvisor.vmm.driver.PairStats;
import dev.loomvisor.vmm.net.DeviceError;

/**
 * Two emulated VMs of one VMM process, each NIC served by vhost-net on workers of one model and the two joined
 * by an L2 switch, both booted (DRIVER_OK, rings with vhost). Closing closes the VMs, the factory and the VMM.
 */
final class SwitchedVms implements AutoCloseable {

    static final byte[] MAC_A = {2, 0, 0, 0, 0, 1};
    static final byte[] MAC_B = {2, 0, 0, 0, 0, 2};

    final Process qemu;
    final VmmBackend backendA;
    final VmmBackend backendB;
    final VM a;
    final VM b;
    private final WorkerFactory factory;

    SwitchedVms(WorkerModel model) throws ErrnoException {
        this(model, 0);
    }

    /** As {@link #SwitchedVms(WorkerModel)}, both rings of both devices busy-polling for {@code busyPollMicros}. */
    SwitchedVms(WorkerModel model, long busyPollMicros) throws ErrnoException {
        Kernel kernel = new Kernel();
        qemu = kernel.spawn("qemu", Credentials.user(1000, 1000), Rlimits.unlimited(), kernel.rootCgroup());
        factory = model.factory(kernel);
        L2Switch sw = new L2Switch();
        backendA = new VmmBackend(qemu.mainTask(), factory, sw.addPort("a"), busyPollMicros, null);
        backendB = new VmmBackend(qemu.mainTask(), factory, sw.addPort("b"), busyPollMicros, null);
        a = VM.builder("a", qemu).memory(16L << 20).net(VM.NetSpec.of(MAC_A, backendA)).build();
        b = VM.builder("b", qemu).memory(16L << 20).net(VM.NetSpec.of(MAC_B, backendB)).build();
        assertEquals(DeviceError.OK, a.start());
        assertEquals(DeviceError.OK, b.start());
    }

    /** Waits (bounded) until {@code rx} counts {@code frames} received, and asserts it does. */
    static void awaitFrames(PairStats rx, long frames) throws InterruptedException {
        long end = System.nanoTime() + 60_000_000_000L;
        while (rx.rxFrames() < frames && System.nanoTime() - end < 0) {
            Thread.sleep(1);
        }
        assertEquals(frames, rx.rxFrames(), "the frames arrived");
    }

    @Override
    public void close() {
        try (factory) {
            try (VM x = a; VM y = b) {
                // closed in reverse: b, then a
            }
        } finally {
            qemu.exit();
        }
    }
}
