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
