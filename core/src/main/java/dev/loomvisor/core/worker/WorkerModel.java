package dev.loomvisor.core.worker;

import dev.loomvisor.core.Carrier;
import dev.loomvisor.core.ErrnoException;
import dev.loomvisor.core.Kernel;

/** The worker models by the names the CLI lists; each gives its {@link WorkerFactory}. */
public enum WorkerModel {
    /** The default: vhost_task from the owner on a virtual thread. */
    USER_WORKER("user-worker", Accounting.USER_WORKER, Carrier.VIRTUAL),
    USER_WORKER_PLATFORM("user-worker-platform", Accounting.USER_WORKER, Carrier.PLATFORM),
    /** The pre-6.4 worker: kthread from kthreadd on a platform thread. */
    KTHREAD("kthread", Accounting.KTHREAD, Carrier.PLATFORM),
    KTHREAD_VIRTUAL("kthread-virtual", Accounting.KTHREAD, Carrier.VIRTUAL),
    /** A fixed set of platform kthreads shared by every device's workers. */
    KTHREAD_POOL("kthread-pool", Accounting.KTHREAD, Carrier.PLATFORM);

    private final String modelName;
    private final Accounting accounting;
    private final Carrier carrier;

    WorkerModel(String modelName, Accounting accounting, Carrier carrier) {
        this.modelName = modelName;
        this.accounting = accounting;
        this.carrier = carrier;
    }

    public String modelName() {
        return modelName;
    }

    public Accounting accounting() {
        return accounting;
    }

    public Carrier carrier() {
        return carrier;
    }

    public static final WorkerModel DEFAULT = USER_WORKER;

    /** The model with this CLI name. */
    public static WorkerModel byName(String name) {
        for (WorkerModel m : values()) {
            if (m.modelName.equals(name)) {
                return m;
            }
        }
        throw new IllegalArgumentException("unknown worker model '" + name + "'; known: " + names());
    }

    public static java.util.List<String> names() {
        return java.util.Arrays.stream(values()).map(WorkerModel::modelName).toList();
    }

    /**
     * The factory of this model; for the pool, {@code Runtime.availableProcessors()} threads. Close it when
     * done (only the pool owns threads).
     */
    public WorkerFactory factory(Kernel kernel) throws ErrnoException {
        return factory(kernel, Runtime.getRuntime().availableProcessors());
    }

    /** The factory of this model; {@code poolThreads} sizes the pool and is ignored by the other models. */
    public WorkerFactory factory(Kernel kernel, int poolThreads) throws ErrnoException {
        return switch (this) {
            case KTHREAD_POOL -> new KthreadPool(kernel, poolThreads);
            default -> WorkerFactories.of(accounting, carrier);
        };
    }
}
