package dev.loomvisor.vhost.testing;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

import dev.loomvisor.core.Errno;
import dev.loomvisor.core.ErrnoException;

/** Asserting a control call's errno. */
public final class Errnos {

    @FunctionalInterface
    public interface Call {
        void run() throws ErrnoException;
    }

    private Errnos() {
    }

    public static void assertErrno(Errno expected, Call call) {
        try {
            call.run();
        } catch (ErrnoException e) {
            assertEquals(expected, e.errno(), e.getMessage());
            return;
        }
        fail("expected " + expected + ", the call succeeded");
    }
}
