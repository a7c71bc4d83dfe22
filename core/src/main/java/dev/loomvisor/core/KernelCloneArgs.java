package dev.loomvisor.core;


/**
 * struct kernel_clone_args: what {@link Kernel#copyProcess} is asked to make. A mutable argument block
 * filled with the fluent setters, as kernel code fills the struct with designated initialisers.
 *
 * <p>Besides the kernel's fields it names the Java {@link Carrier} of the task's thread, the one axis the
 * kernel does not have.
 */
public final class KernelCloneArgs {

    /** int (*fn)(void *): the body of a kernel-created task; its return value is the exit code. */
    @FunctionalInterface
    public interface Fn {
        int run(Object arg);
    }

    // Clone flags (include/uapi/linux/sched.h).
    public static final long CLONE_VM = 0x00000100L;
    public static final long CLONE_FS = 0x00000200L;
    public static final long CLONE_FILES = 0x00000400L;
    public static final long CLONE_SIGHAND = 0x00000800L;
    public static final long CLONE_PARENT = 0x00008000L;
    public static final long CLONE_THREAD = 0x00010000L;
    public static final long CLONE_SYSVSEM = 0x00040000L;
    public static final long CLONE_UNTRACED = 0x00800000L;
    public static final long CLONE_IO = 0x80000000L;

    /** vhost_task_create's flags (kernel/vhost_task.c; reference section 1, last paragraph). */
    public static final long VHOST_TASK_FLAGS = CLONE_FS | CLONE_UNTRACED | CLONE_VM | CLONE_THREAD | CLONE_SIGHAND;
    /** create_io_thread's flags. */
    public static final long IO_THREAD_FLAGS =
            CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_IO | CLONE_VM | CLONE_UNTRACED;
    /** kernel_thread's flags as kthreadd uses them. */
    public static final long KTHREAD_FLAGS = CLONE_VM | CLONE_UNTRACED;
    /** What pthread_create passes (glibc), for emulating an ordinary thread of the owner. */
    public static final long PTHREAD_FLAGS =
            CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM;

    private long flags;
    private Signal exitSignal;
    private String name;
    private Fn fn;
    private Object fnArg;
    private boolean kthread;
    private boolean ioThread;
    private boolean userWorker;
    private boolean noFiles;
    private boolean ignoreSignals;
    private Carrier carrier = Carrier.VIRTUAL;

    public KernelCloneArgs flags(long f) {
        this.flags = f;
        return this;
    }

    /** The signal the parent gets when the child exits; null for none (exit_signal = 0). */
    public KernelCloneArgs exitSignal(Signal s) {
        this.exitSignal = s;
        return this;
    }

    /** The comm of the child; null keeps the caller's. Truncated to 15 characters. */
    public KernelCloneArgs name(String n) {
        this.name = n;
        return this;
    }

    /** The body run on the child's thread when it is started; null for a task without a thread of its own. */
    public KernelCloneArgs fn(Fn f, Object arg) {
        this.fn = f;
        this.fnArg = arg;
        return this;
    }

    public KernelCloneArgs kthread(boolean b) {
        this.kthread = b;
        return this;
    }

    public KernelCloneArgs ioThread(boolean b) {
        this.ioThread = b;
        return this;
    }

    public KernelCloneArgs userWorker(boolean b) {
        this.userWorker = b;
        return this;
    }

    public KernelCloneArgs noFiles(boolean b) {
        this.noFiles = b;
        return this;
    }

    /** The 6.4-rc1 bit: the child ignores every signal (kept to model that era). */
    public KernelCloneArgs ignoreSignals(boolean b) {
        this.ignoreSignals = b;
        return this;
    }

    public KernelCloneArgs carrier(Carrier c) {
        this.carrier = java.util.Objects.requireNonNull(c);
        return this;
    }

    public long flags() {
        return flags;
    }

    public boolean hasFlag(long f) {
        return (flags & f) != 0;
    }

    public Signal exitSignal() {
        return exitSignal;
    }

    public String name() {
        return name;
    }

    public Fn fn() {
        return fn;
    }

    public Object fnArg() {
        return fnArg;
    }

    public boolean kthread() {
        return kthread;
    }

    public boolean ioThread() {
        return ioThread;
    }

    public boolean userWorker() {
        return userWorker;
    }

    public boolean noFiles() {
        return noFiles;
    }

    public boolean ignoreSignals() {
        return ignoreSignals;
    }

    public Carrier carrier() {
        return carrier;
    }
}
