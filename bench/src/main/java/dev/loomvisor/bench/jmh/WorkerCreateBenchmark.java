package dev.loomvisor.bench.jmh;

import dev.loomvisor.core.Credentials;
import dev.loomvisor.core.ErrnoException;
import dev.loomvisor.core.Kernel;
import dev.loomvisor.core.Process;
import dev.loomvisor.core.Rlimits;
import dev.loomvisor.core.Task;
import dev.loomvisor.core.worker.Worker;
import dev.loomvisor.core.worker.WorkerFactory;
import dev.loomvisor.core.worker.WorkerFn;
import dev.loomvisor.core.worker.WorkerModel;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * The cost of a worker's life: create + start + stop, for the two worlds of Linux 6.4 side by side in one
 * run, next to the floor of a bare virtual thread (create + start + join) and, for the kthread's carrier, a
 * bare platform thread.
 *
 * <ul>
 *   <li>{@code userWorkerVirtual}: VhostTask cloned from the owner (RLIMIT_NPROC, pids, ucounts charged) on a
 *       virtual thread; the default model.
 *   <li>{@code kthreadPlatform}: a kthread forked by kthreadd on a platform thread; the pre-6.4 model.
 *   <li>{@code bareVirtualThread}, {@code barePlatformThread}: the Java thread alone.
 * </ul>
 *
 * <p>Sample time mode, so the report has the median (p0.50) and percentiles besides the mean and its error.
 * Issue targets: user worker within 5x of the bare virtual thread; kthread / user worker at least 50x.
 *
 * <p>Run: {@code java @scripts/jvm.options -cp "bench/target/loomvisor.jar:bench/target/lib/*"
 * org.openjdk.jmh.Main WorkerCreateBenchmark}
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.SampleTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(1)
public class WorkerCreateBenchmark {

    private static final WorkerFn IDLE = () -> false;
    private static final Runnable NO_SIGKILL = () -> { };
    private static final Runnable NOOP = () -> { };

    private Kernel kernel;
    private Process owner;
    private Task caller;
    private WorkerFactory userWorker;
    private WorkerFactory kthread;

    @Setup
    public void setUp() throws ErrnoException {
        kernel = new Kernel();
        owner = kernel.spawn("bench-vmm", Credentials.user(1000, 1000), Rlimits.unlimited(), kernel.rootCgroup());
        caller = owner.mainTask();
        userWorker = WorkerModel.USER_WORKER.factory(kernel);
        kthread = WorkerModel.KTHREAD.factory(kernel);
    }

    @TearDown
    public void tearDown() {
        userWorker.close();
        kthread.close();
        owner.exit();
        if (kernel.ucounts().count(1000) != 0 || kernel.nrThreads() != 2) {
            throw new IllegalStateException("a benchmark leaked tasks: ucounts " + kernel.ucounts().count(1000)
                    + ", nr_threads " + kernel.nrThreads());
        }
    }

    private static Worker lifecycle(WorkerFactory f, Task caller) throws ErrnoException {
        Worker w = f.create(caller, IDLE, NO_SIGKILL, null);
        w.start();
        w.stop();
        return w;
    }

    @Benchmark
    public Worker userWorkerVirtual() throws ErrnoException {
        return lifecycle(userWorker, caller);
    }

    @Benchmark
    public Worker kthreadPlatform() throws ErrnoException {
        return lifecycle(kthread, caller);
    }

    @Benchmark
    public Thread bareVirtualThread() throws InterruptedException {
        Thread t = Thread.ofVirtual().start(NOOP);
        t.join();
        return t;
    }

    @Benchmark
    public Thread barePlatformThread() throws InterruptedException {
        Thread t = Thread.ofPlatform().start(NOOP);
        t.join();
        return t;
    }
}
