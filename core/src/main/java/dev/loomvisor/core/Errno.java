package dev.loomvisor.core;

/**
 * The error numbers the emulated kernel returns, with their Linux values (include/uapi/asm-generic/errno-base.h,
 * errno.h and include/linux/errno.h for the kernel-internal ERESTART* codes that never reach user space).
 */
public enum Errno {
    EPERM(1, "Operation not permitted"),
    ENOENT(2, "No such file or directory"),
    ESRCH(3, "No such process"),
    EINTR(4, "Interrupted system call"),
    EIO(5, "I/O error"),
    E2BIG(7, "Argument list too long"),
    EBADF(9, "Bad file number"),
    ECHILD(10, "No child processes"),
    EAGAIN(11, "Try again"),
    ENOMEM(12, "Out of memory"),
    EACCES(13, "Permission denied"),
    EFAULT(14, "Bad address"),
    EBUSY(16, "Device or resource busy"),
    EEXIST(17, "File exists"),
    ENODEV(19, "No such device"),
    EINVAL(22, "Invalid argument"),
    ENOTTY(25, "Not a typewriter"),
    ENOSPC(28, "No space left on device"),
    ENOSYS(38, "Function not implemented"),
    EOPNOTSUPP(95, "Operation not supported"),
    ENOBUFS(105, "No buffer space available"),
    ECANCELED(125, "Operation Canceled"),
    /** Kernel-internal: the syscall is restarted after the signal is handled, whatever SA_RESTART says. */
    ERESTARTNOINTR(513, "Restart system call (no interrupt)");

    private final int number;
    private final String description;

    Errno(int number, String description) {
        this.number = number;
        this.description = description;
    }

    /** The positive Linux value; a syscall returns its negation. */
    public int number() {
        return number;
    }

    public String description() {
        return description;
    }

    /** The errno with this Linux number, or null if the emulation has none. */
    public static Errno of(int number) {
        for (Errno e : values()) {
            if (e.number == number) {
                return e;
            }
        }
        return null;
    }
}
