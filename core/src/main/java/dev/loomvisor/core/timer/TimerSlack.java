package dev.loomvisor.core.timer;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;

/**
 * prctl(PR_SET_TIMERSLACK) for the calling thread. Linux lets a timed sleep of a normal thread end up to
 * its timer slack late (50 us by default) so that wake-ups coalesce; the clock thread, whose sleeps are the
 * deadlines of every sender, asks for 1 ns. Where prctl is not there (not Linux) nothing changes.
 */
final class TimerSlack {

    private static final int PR_SET_TIMERSLACK = 29;

    private TimerSlack() {}

    /** True if the slack was set. */
    static boolean setMinimal() {
        try {
            Linker linker = Linker.nativeLinker();
            var prctl = linker.defaultLookup().find("prctl");
            if (prctl.isEmpty()) {
                return false;
            }
            MethodHandle h = linker.downcallHandle(prctl.get(),
                    FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG),
                    Linker.Option.firstVariadicArg(1));
            return (int) h.invokeExact(PR_SET_TIMERSLACK, 1L) == 0;
        } catch (Throwable t) {
            return false; // no native access granted, or no such call: the default slack stays
        }
    }
}
