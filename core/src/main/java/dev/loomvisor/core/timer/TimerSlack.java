package dev.loomvisor.core.timer;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;

/**
 * prctl(PR_SET_TIMERSLACK) for the calling thread. Linux lets a timed sleep of a normal thread end up to
 * its timer slack late (50 us by default) so that wake-ups coalesce; the clock thread, whose sleeps are the
 * deadlines of every sender, asks for 1 ns. Where prctl is not there (not Linux) nothing changes.
 *
 * <p>The downcall is linked when the class initialises, on the thread that builds the first base: linking
 * spins classes and takes milliseconds (much longer on a loaded machine), which must not delay the clock
 * thread's first expiries.
 */
final class TimerSlack {

    private static final int PR_SET_TIMERSLACK = 29;
    private static final MethodHandle PRCTL = link();

    private TimerSlack() {}

    private static MethodHandle link() {
        try {
            Linker linker = Linker.nativeLinker();
            var prctl = linker.defaultLookup().find("prctl");
            if (prctl.isEmpty() || !System.getProperty("os.name", "").startsWith("Linux")) {
                return null;
            }
            return linker.downcallHandle(prctl.get(),
                    FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG),
                    Linker.Option.firstVariadicArg(1));
        } catch (RuntimeException | Error e) {
            return null; // no native access granted: the default slack stays
        }
    }

    /** True if the call can be made here; initialises (links) the class. */
    static boolean available() {
        return PRCTL != null;
    }

    /** Sets the calling thread's slack to 1 ns; true if it was set. */
    static boolean setMinimal() {
        if (PRCTL == null) {
            return false;
        }
        try {
            return (int) PRCTL.invokeExact(PR_SET_TIMERSLACK, 1L) == 0;
        } catch (Throwable t) {
            return false;
        }
    }
}
