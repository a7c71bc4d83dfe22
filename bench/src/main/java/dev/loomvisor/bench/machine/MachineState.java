package dev.loomvisor.bench.machine;

import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * What the machine was doing around a run: the JDK, CPU count, kernel, the core-to-core round trip at
 * the start and the end, and the CPU time that other processes used meanwhile (from /proc/stat minus this
 * process's own time). Recorded with every run so that runs on a noisy shared VM can be judged.
 */
public final class MachineState {

    private static final Path PROC_STAT = Path.of("/proc/stat");
    private static final Path PROC_SELF_STAT = Path.of("/proc/self/stat");
    private static final Path PROC_SELF_STATUS = Path.of("/proc/self/status");
    /** USER_HZ: /proc reports CPU time in these ticks on every Linux ABI the JDK runs on. */
    private static final double TICKS_PER_SECOND = 100.0;

    private final long startNanos;
    private final long startBusyTicks;
    private final long startOwnTicks;
    private final CoreToCore.Result c2cStart;

    private MachineState(long startNanos, long startBusyTicks, long startOwnTicks, CoreToCore.Result c2cStart) {
        this.startNanos = startNanos;
        this.startBusyTicks = startBusyTicks;
        this.startOwnTicks = startOwnTicks;
        this.c2cStart = c2cStart;
    }

    /** Takes the start readings, including a brief (~tens of ms) core-to-core measurement. */
    public static MachineState begin() {
        CoreToCore.Result c2c = CoreToCore.measure(9, 20_000);
        return new MachineState(System.nanoTime(), busyTicks(), ownTicks(), c2c);
    }

    /** Static facts and the start readings, for the run's start record. */
    public Map<String, Object> startRecord() {
        var m = new LinkedHashMap<String, Object>();
        m.put("jdk", Runtime.version().toString());
        m.put("vm", System.getProperty("java.vm.name") + " " + System.getProperty("java.vm.version"));
        m.put("gc", gcName());
        m.put("cpus", (long) Runtime.getRuntime().availableProcessors());
        m.put("os", System.getProperty("os.name") + " " + readFirstLine(Path.of("/proc/sys/kernel/osrelease")));
        m.put("coreToCoreNanosStart", c2cStart.medianNanos());
        m.put("coreToCoreNanosStartMin", c2cStart.minNanos());
        m.put("coreToCoreNanosStartMax", c2cStart.maxNanos());
        return m;
    }

    /** The end readings: core-to-core again, and the CPU seconds of other processes during the run. */
    public Map<String, Object> endRecord() {
        long busy = busyTicks() - startBusyTicks;
        long own = ownTicks() - startOwnTicks;
        double wall = (System.nanoTime() - startNanos) / 1e9;
        CoreToCore.Result c2c = CoreToCore.measure(9, 20_000);
        var m = new LinkedHashMap<String, Object>();
        m.put("wallSeconds", wall);
        m.put("ownCpuSeconds", own / TICKS_PER_SECOND);
        m.put("otherCpuSeconds", Math.max(0, busy - own) / TICKS_PER_SECOND);
        m.put("coreToCoreNanosEnd", c2c.medianNanos());
        m.put("coreToCoreNanosEndMin", c2c.minNanos());
        m.put("coreToCoreNanosEndMax", c2c.maxNanos());
        return m;
    }

    /**
     * The garbage collector this JVM runs (its collectors' names, e.g. "ZGC Minor Cycles, ZGC Major Cycles"): a
     * stop-the-world collector's pauses land in every latency figure, so a run says which one it had.
     */
    public static String gcName() {
        var names = new java.util.ArrayList<String>();
        for (var gc : ManagementFactory.getGarbageCollectorMXBeans()) {
            names.add(gc.getName());
        }
        return String.join(", ", names);
    }

    /** CPU seconds this JVM used so far (all threads, user + system). */
    public static double processCpuSeconds() {
        var os = ManagementFactory.getOperatingSystemMXBean();
        if (os instanceof com.sun.management.OperatingSystemMXBean sun) {
            return sun.getProcessCpuTime() / 1e9;
        }
        return ownTicks() / TICKS_PER_SECOND;
    }

    /** Resident set size of this JVM in bytes (VmRSS), or -1 where /proc is not there. */
    public static long rssBytes() {
        try {
            for (String line : Files.readAllLines(PROC_SELF_STATUS)) {
                if (line.startsWith("VmRSS:")) {
                    String[] f = line.trim().split("\\s+");
                    return Long.parseLong(f[1]) * 1024;
                }
            }
        } catch (IOException | RuntimeException e) {
            return -1;
        }
        return -1;
    }

    /** Busy ticks of all CPUs: the first line of /proc/stat less idle and iowait. */
    static long busyTicks() {
        String line = readFirstLine(PROC_STAT);
        if (!line.startsWith("cpu ")) {
            return 0;
        }
        return parseBusyTicks(line);
    }

    static long parseBusyTicks(String cpuLine) {
        String[] f = cpuLine.trim().split("\\s+");
        long total = 0;
        // cpu user nice system idle iowait irq softirq steal [guest guest_nice: already in user/nice]
        for (int i = 1; i < Math.min(f.length, 9); i++) {
            if (i == 4 || i == 5) {
                continue;
            }
            total += Long.parseLong(f[i]);
        }
        return total;
    }

    /** utime + stime of this process from /proc/self/stat (fields 14 and 15, after the comm). */
    static long ownTicks() {
        String s = readFirstLine(PROC_SELF_STAT);
        return parseOwnTicks(s);
    }

    static long parseOwnTicks(String stat) {
        int close = stat.lastIndexOf(')');
        if (close < 0) {
            return 0;
        }
        String[] f = stat.substring(close + 2).trim().split("\\s+");
        // f[0] is field 3 (state); utime is field 14, stime field 15.
        return Long.parseLong(f[11]) + Long.parseLong(f[12]);
    }

    private static String readFirstLine(Path p) {
        try {
            List<String> lines = Files.readAllLines(p);
            return lines.isEmpty() ? "" : lines.get(0);
        } catch (IOException e) {
            return "";
        }
    }
}
