package dev.loomvisor.bench.journal;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SplittableRandom;
import org.HdrHistogram.Histogram;

/**
 * The child JVM of {@link JournalCrashTest}: appends runs to the journal at {@code args[0]} until it is
 * killed. Each run has a random number of interval and result records whose content follows from the run
 * id and the record's number ({@link #result}), and an end record naming how many results it had and a
 * digest of them, so the parent can check every record of a run it reads back. On standard output: one
 * line once the journal is open ({@code open}), then one per record appended ({@code start ID},
 * {@code record ID N}, {@code complete ID N}), each printed after the append returned, so the parent knows
 * at least how far the child got, and how long the first append after a crash waited.
 */
public final class JournalCrashChild {

    public static void main(String[] args) {
        var rnd = new SplittableRandom(Long.parseLong(args[1]));
        var h = new Histogram(3);
        try (var j = Journal.open(Path.of(args[0]))) {
            System.out.println("open");
            while (true) {
                String run = j.startRun("crash", Map.of("child", args[1]), Map.of());
                System.out.println("start " + run);
                int n = rnd.nextInt(1, 40);
                long digest = 0;
                for (int i = 0; i < n; i++) {
                    h.reset();
                    h.setStartTimeStamp(i);
                    h.setEndTimeStamp(i + 1);
                    h.recordValue(1 + i);
                    j.interval(run, "model", h);
                    var r = result(run, i);
                    j.result(run, r);
                    digest = digest(digest, r);
                    System.out.println("record " + run + " " + i);
                }
                j.endRun(run, Map.of("results", (long) n, "digest", digest));
                System.out.println("complete " + run + " " + n);
            }
        }
    }

    /** Result {@code i} of {@code run}: what the parent expects to read back, field by field. */
    static Map<String, Object> result(String run, int i) {
        var r = new LinkedHashMap<String, Object>();
        r.put("model", "model-" + i);
        r.put("i", (long) i);
        r.put("run", run);
        // Records of varying size, so kills land at different offsets within documents.
        r.put("padding", "x".repeat((run.hashCode() & 0xff) + 37 * i % 700));
        return r;
    }

    /** A digest over a run's results in order (order-sensitive, so a missing or moved record shows). */
    static long digest(long d, Map<String, Object> result) {
        return d * 31 + result.toString().hashCode();
    }
}
