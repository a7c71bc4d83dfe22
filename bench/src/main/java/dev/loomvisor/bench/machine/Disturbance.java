package dev.loomvisor.bench.machine;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;

/**
 * Says which results of a run were disturbed, so that nobody reads a figure measured beside a package
 * install as the model's own. Two signs, per result row (model and frame size):
 * <ul>
 *   <li>other processes took a noticeable share of the machine while one of the row's measurements ran
 *       (the /proc/stat busy time less this JVM's, over wall time times CPUs, the reading
 *       {@link MachineState} takes for the whole run), above {@link #OTHER_CPU_SHARE};</li>
 *   <li>a ceiling repeat measured far below the other repeats of its frame size (below
 *       {@link #CEILING_OUTLIER} of their median), which makes the "x ceiling" ratio of that repeat
 *       meaningless.</li>
 * </ul>
 * A disturbed row carries {@code "disturbed": true} and its reasons in the JSON; the table marks it.
 */
public final class Disturbance {

    /** Other processes' CPU, as a share of all CPUs over the measurement, that marks it disturbed. */
    public static final double OTHER_CPU_SHARE = 0.25;
    /** A ceiling repeat below this fraction of the median of the others is an outlier. */
    public static final double CEILING_OUTLIER = 1.0 / 3;
    /** What the table adds to a disturbed row's first cell. */
    public static final String MARK = " !";

    private final int cpus = Runtime.getRuntime().availableProcessors();
    private final Map<String, Double> worstShare = new HashMap<>();
    private long startNanos;
    private long startBusy;
    private long startOwn;

    /** Call right before a measurement. */
    public void begin() {
        startNanos = System.nanoTime();
        startBusy = MachineState.busyTicks();
        startOwn = MachineState.ownTicks();
    }

    /** Call right after it: the share other processes took counts against result {@code key}. */
    public void end(String key) {
        double wall = (System.nanoTime() - startNanos) / 1e9;
        long other = Math.max(0, (MachineState.busyTicks() - startBusy) - (MachineState.ownTicks() - startOwn));
        double share = wall <= 0 ? 0 : other / 100.0 / (wall * cpus);
        worstShare.merge(key, share, Math::max);
    }

    /**
     * Adds {@code otherCpuShare}, {@code disturbed} and {@code disturbance} (the reasons) to result row
     * {@code row} (its {@code "key"} as given to {@link #end}); {@code ceilings} are its frame size's
     * ceiling repeats in frames per second, or null when the row has no ceiling ratio.
     */
    public void flag(Map<String, Object> row, double[] ceilings) {
        List<Object> reasons = new ArrayList<>();
        double share = worstShare.getOrDefault((String) row.get("key"), 0.0);
        if (share > OTHER_CPU_SHARE) {
            reasons.add(String.format(Locale.ROOT, "other processes took %.0f%% of the CPUs during a repeat", share * 100));
        }
        if (ceilings != null) {
            int outliers = ceilingOutliers(ceilings);
            if (outliers > 0) {
                reasons.add(outliers + " ceiling repeat" + (outliers == 1 ? "" : "s")
                        + " far below the others (x ceiling unreliable)");
            }
        }
        row.put("otherCpuShare", share);
        row.put("disturbed", !reasons.isEmpty());
        row.put("disturbance", reasons);
    }

    /** How many of {@code repeats} lie below {@link #CEILING_OUTLIER} of the median of the others. */
    public static int ceilingOutliers(double[] repeats) {
        if (repeats.length < 2) {
            return 0;
        }
        int n = 0;
        for (int i = 0; i < repeats.length; i++) {
            double[] others = new double[repeats.length - 1];
            for (int j = 0, k = 0; j < repeats.length; j++) {
                if (j != i) {
                    others[k++] = repeats[j];
                }
            }
            Arrays.sort(others);
            int m = others.length;
            double median = m % 2 == 1 ? others[m / 2] : (others[m / 2 - 1] + others[m / 2]) / 2;
            if (repeats[i] < median * CEILING_OUTLIER) {
                n++;
            }
        }
        return n;
    }

    /** The row's first table cell: the model, marked when disturbed. */
    public static String mark(Map<String, Object> row) {
        return row.get("model") + (Boolean.TRUE.equals(row.get("disturbed")) ? MARK : "");
    }

    /** The line under the tables that explains the mark, when a row has it. */
    public static Optional<String> footnote(List<Map<String, Object>> rows) {
        List<String> marked = new ArrayList<>();
        for (var r : rows) {
            if (Boolean.TRUE.equals(r.get("disturbed"))) {
                marked.add(r.get("key") + ": " + String.join("; ", ((List<?>) r.get("disturbance")).stream()
                        .map(String::valueOf).toList()));
            }
        }
        return marked.isEmpty() ? Optional.empty()
                : Optional.of("!" + " disturbed run, read with care (rerun on a quiet machine): " + String.join(" | ", marked));
    }
}
