package dev.loomvisor.bench.scenario;

import dev.loomvisor.core.Credentials;
import dev.loomvisor.core.ErrnoException;
import dev.loomvisor.core.Kernel;
import dev.loomvisor.core.Process;
import dev.loomvisor.core.Rlimits;
import dev.loomvisor.core.worker.Worker;
import dev.loomvisor.core.worker.WorkerFactory;
import dev.loomvisor.core.worker.WorkerModel;
import java.util.Arrays;

/**
 * How long a model takes to give a device its worker: create + start + stop through the model's factory,
 * the median of {@code n} in a row (the JMH WorkerCreateBenchmark measures the same with more rigour).
 */
public final class WorkerCreateTime {

    private WorkerCreateTime() {}

    public static double medianMicros(WorkerModel model, int n) throws ErrnoException {
        Kernel kernel = new Kernel();
        Process vmm = kernel.spawn("qemu", Credentials.user(1000, 1000), Rlimits.unlimited(), kernel.rootCgroup());
        long[] t = new long[n];
        try (WorkerFactory factory = model.factory(kernel)) {
            for (int i = 0; i < n; i++) {
                long t0 = System.nanoTime();
                Worker w = factory.create(vmm.mainTask(), () -> false, () -> { }, null);
                w.start();
                w.stop();
                t[i] = System.nanoTime() - t0;
            }
        } finally {
            vmm.exit();
        }
        Arrays.sort(t);
        return (n % 2 == 1 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2.0) / 1e3;
    }
}
