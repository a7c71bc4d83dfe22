package dev.loomvisor.core;

/**
 * kthreadd (pid 2) and kernel/kthread.c: forks every kernel thread, stops them, and lends them an address
 * space. A kthread is kthreadd's child, so it runs as root in the root cgroup and never meets its
 * requester's RLIMIT_NPROC or pids.max (reference section 2: the pre-6.4 vhost worker).
 */
public final class Kthreadd {

    private final Kernel kernel;
    private final Process process;

    Kthreadd(Kernel kernel, Process process) {
        this.kernel = kernel;
        this.process = process;
    }

    /** The kthreadd process: pid 2, root, every signal ignored, never frozen, the root cgroup. */
    public Process process() {
        return process;
    }

    /**
     * kthread_create: a kernel thread forked by kthreadd (CLONE_VM | CLONE_UNTRACED + kthread), not started.
     *
     * @throws ErrnoException the clone's failure (threads-max)
     */
    public Task create(KernelCloneArgs.Fn fn, Object arg, String name, Carrier carrier) throws ErrnoException {
        KernelCloneArgs args = new KernelCloneArgs().flags(KernelCloneArgs.KTHREAD_FLAGS).kthread(true)
                .name(name).fn(fn, arg).carrier(carrier);
        return kernel.copyProcess(process.mainTask(), args);
    }

    /**
     * kthread_stop: sets KTHREAD_SHOULD_STOP, wakes the kthread and waits until its body returned; returns its
     * exit code. A kthread never started is started first so that it can see the request and leave.
     */
    public int stop(Task k) {
        kthread(k).shouldStop = true;
        k.wakeUpProcess();
        if (!k.isStarted()) {
            k.start();
        }
        k.awaitExit();
        return k.exitCode();
    }

    /** kthread_should_stop() of the kthread {@code k} (the kernel reads current's; a loop passes itself). */
    public static boolean shouldStop(Task k) {
        return kthread(k).shouldStop;
    }

    /**
     * kthread_use_mm: the kthread {@code k} adopts a user address space, which {@link Task#mm()} then reports;
     * the mm's users are not counted (the pre-6.4 vhost worker borrowed its owner's mm this way).
     */
    public static void useMm(Task k, Mm mm) {
        Kthread kt = kthread(k);
        if (kt.borrowedMm != null) {
            throw new IllegalStateException(k + " already uses " + kt.borrowedMm);
        }
        kt.borrowedMm = mm;
        k.setMm(mm);
    }

    /** kthread_unuse_mm: gives the borrowed mm back; the kthread is again without one. */
    public static void unuseMm(Task k) {
        Kthread kt = kthread(k);
        kt.borrowedMm = null;
        k.setMm(null);
    }

    private static Kthread kthread(Task k) {
        Kthread kt = k.kthread();
        if (kt == null) {
            throw new IllegalArgumentException(k + " is not a kthread");
        }
        return kt;
    }
}
