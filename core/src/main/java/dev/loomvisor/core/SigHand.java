package dev.loomvisor.core;

/**
 * Signal dispositions (struct sighand_struct). The emulation knows two: default actions, or every signal
 * ignored (kthreadd's, inherited by every kthread it forks; reference section 2). CLONE_SIGHAND shares the
 * object, otherwise the child gets a copy.
 */
public final class SigHand {

    private final boolean ignoreAll;

    public SigHand(boolean ignoreAll) {
        this.ignoreAll = ignoreAll;
    }

    /** True if every catchable signal, and for kernel threads also SIGKILL and SIGSTOP, is ignored. */
    public boolean ignoresAll() {
        return ignoreAll;
    }

    SigHand copy() {
        return new SigHand(ignoreAll);
    }
}
