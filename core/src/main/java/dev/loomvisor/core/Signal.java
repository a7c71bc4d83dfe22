package dev.loomvisor.core;

/** The signals the emulation delivers, with their x86-64 Linux numbers (arch/x86/include/uapi/asm/signal.h). */
public enum Signal {
    SIGHUP(1), SIGINT(2), SIGQUIT(3), SIGILL(4), SIGTRAP(5), SIGABRT(6), SIGBUS(7), SIGFPE(8),
    SIGKILL(9), SIGUSR1(10), SIGSEGV(11), SIGUSR2(12), SIGPIPE(13), SIGALRM(14), SIGTERM(15),
    SIGCHLD(17), SIGCONT(18), SIGSTOP(19), SIGTSTP(20), SIGTTIN(21), SIGTTOU(22);

    private final int number;

    Signal(int number) {
        this.number = number;
    }

    public int number() {
        return number;
    }

    /** The bit of this signal in a sigset (sigmask(sig) = 1 << (sig - 1)). */
    public long mask() {
        return 1L << (number - 1);
    }

    /** SIGKILL and SIGSTOP can be neither blocked nor ignored (sigmask(SIGKILL) | sigmask(SIGSTOP)). */
    public static final long UNBLOCKABLE = SIGKILL.mask() | SIGSTOP.mask();

    /** A sigset with every signal. */
    public static final long ALL = -1L;

    /** The lowest-numbered signal in the set, or null if it is empty (dequeue order for standard signals). */
    public static Signal first(long set) {
        if (set == 0) {
            return null;
        }
        int number = Long.numberOfTrailingZeros(set) + 1;
        for (Signal s : values()) {
            if (s.number == number) {
                return s;
            }
        }
        return null;
    }
}
