package dev.loomvisor.core;

/**
 * A failed kernel call: the {@link Errno} is the result, the optional detail only helps a human reading a
 * trace. Callers branch on {@link #errno()}, never on the message.
 */
public final class ErrnoException extends Exception {

    private final Errno errno;

    public ErrnoException(Errno errno) {
        this(errno, null);
    }

    public ErrnoException(Errno errno, String detail) {
        super(errno.name() + " (" + errno.number() + ", " + errno.description() + ")"
                + (detail == null ? "" : ": " + detail));
        this.errno = errno;
    }

    public Errno errno() {
        return errno;
    }
}
