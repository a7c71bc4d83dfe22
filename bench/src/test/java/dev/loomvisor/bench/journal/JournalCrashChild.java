package dev.loomvisor.bench.journal;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The child JVM of {@link JournalCrashTest}: writes one complete run, then starts a second and appends
 * results to it until it is killed, printing a line per record so the parent knows how far it got.
 */
public final class JournalCrashChild {

    public static void main(String[] args) {
        try (var j = Journal.open(Path.of(args[0]))) {
            String done = j.startRun("compare", Map.of("child", true), Map.of());
            j.result(done, Map.of("model", "user-worker", "mpps", 1.0));
            j.endRun(done, Map.of());
            System.out.println("complete " + done);
            String open = j.startRun("compare", Map.of("child", true), Map.of());
            System.out.println("started " + open);
            System.out.flush();
            for (long i = 0; ; i++) {
                var r = new LinkedHashMap<String, Object>();
                r.put("model", "kthread");
                r.put("i", i);
                r.put("padding", "x".repeat((int) (i % 500)));
                j.result(open, r);
                if (i % 100 == 0) {
                    System.out.println("result " + i);
                    System.out.flush();
                }
            }
        }
    }
}
