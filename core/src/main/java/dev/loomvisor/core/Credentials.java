package dev.loomvisor.core;

/**
 * A task's credentials (struct cred), immutable as the kernel's are once published: with CLONE_THREAD the
 * child shares the very same object (reference section 1, step 5).
 *
 * @param uid real uid, the user whose ucounts the task is charged to
 * @param gid real gid
 * @param capEffective effective capability set, a bit per {@link Capability#bit()}
 */
public record Credentials(int uid, int gid, long capEffective) {

    public static final int ROOT_UID = 0;

    /** Root with every capability (init's and kthreadd's credentials). */
    public static Credentials root() {
        return new Credentials(ROOT_UID, 0, -1L);
    }

    /** An unprivileged user without capabilities. */
    public static Credentials user(int uid, int gid) {
        return new Credentials(uid, gid, 0L);
    }

    public Credentials withCapability(Capability cap) {
        return new Credentials(uid, gid, capEffective | cap.mask());
    }

    public boolean capable(Capability cap) {
        return (capEffective & cap.mask()) != 0;
    }

    /** The user is INIT_USER (global root), which copy_process exempts from RLIMIT_NPROC. */
    public boolean isRoot() {
        return uid == ROOT_UID;
    }
}
