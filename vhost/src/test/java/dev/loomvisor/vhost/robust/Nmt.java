package dev.loomvisor.vhost.robust;

import java.lang.management.ManagementFactory;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.management.ObjectName;

/**
 * Native Memory Tracking through the DiagnosticCommand MBean ({@code jcmd <pid> VM.native_memory}), when the
 * JVM runs with {@code -XX:NativeMemoryTracking=summary}; otherwise every call answers "off" / -1.
 */
final class Nmt {

    private static final Pattern TOTAL = Pattern.compile("Total: reserved=(\\d+)KB, committed=(\\d+)KB");
    private static final Pattern CATEGORY_DIFF = Pattern.compile(
            "-\\s+([A-Za-z ]+?) \\(reserved=\\d+KB(?: [+-]\\d+KB)?, committed=(\\d+)KB(?: ([+-]\\d+)KB)?\\)");

    private Nmt() {
    }

    static String command(String arg) {
        try {
            Object r = ManagementFactory.getPlatformMBeanServer().invoke(
                    new ObjectName("com.sun.management:type=DiagnosticCommand"), "vmNativeMemory",
                    new Object[] {new String[] {arg}}, new String[] {String[].class.getName()});
            return String.valueOf(r);
        } catch (Exception e) {
            return "error: " + e;
        }
    }

    static boolean enabled() {
        return !command("summary").contains("not enabled");
    }

    /** Takes an NMT baseline (no-op when NMT is off). */
    static void baseline() {
        if (enabled()) {
            command("baseline");
        }
    }

    /** Committed native memory of the whole JVM in KiB, or -1 with NMT off. */
    static long committedKib() {
        Matcher m = TOTAL.matcher(command("summary"));
        return m.find() ? Long.parseLong(m.group(2)) : -1;
    }

    /**
     * The change since {@link #baseline()} of one category's committed memory in KiB (e.g. "Other", where
     * Unsafe and FFM allocations go), 0 if it did not move, or {@link Long#MIN_VALUE} with NMT off.
     */
    static long categoryDeltaKib(String category) {
        if (!enabled()) {
            return Long.MIN_VALUE;
        }
        Matcher m = CATEGORY_DIFF.matcher(command("summary.diff"));
        while (m.find()) {
            if (m.group(1).trim().equals(category)) {
                return m.group(3) == null ? 0 : Long.parseLong(m.group(3));
            }
        }
        return 0;
    }

    /**
     * Collects garbage (a direct buffer's memory goes back only after a GC ran its cleaner) until NMT's
     * "Other" delta is under {@code kib} or {@code timeout} passed; returns the last delta (MIN_VALUE with
     * NMT off). What stays above the bound is reachable: a leak.
     */
    static long awaitOtherBelow(long kib, java.time.Duration timeout) {
        long deadline = System.nanoTime() + timeout.toNanos();
        long d;
        do {
            System.gc();
            d = categoryDeltaKib("Other");
            if (d < kib) {
                return d;
            }
            java.util.concurrent.locks.LockSupport.parkNanos(50_000_000);
        } while (System.nanoTime() - deadline < 0);
        return d;
    }

    /** The categories whose committed memory moved since {@link #baseline()}, e.g. "Thread=+12 Other=-4". */
    static String diff() {
        if (!enabled()) {
            return "nmt=off";
        }
        String d = command("summary.diff");
        StringBuilder sb = new StringBuilder();
        Matcher t = Pattern.compile("Total: reserved=\\d+KB(?: [+-]\\d+KB)?, committed=\\d+KB ([+-]\\d+)KB").matcher(d);
        sb.append("nmt-committed-delta-kib=").append(t.find() ? t.group(1) : "0");
        Matcher m = CATEGORY_DIFF.matcher(d);
        while (m.find()) {
            if (m.group(3) != null) {
                sb.append(" nmt.").append(m.group(1).trim().replace(' ', '-')).append('=').append(m.group(3));
            }
        }
        return sb.toString();
    }
}
