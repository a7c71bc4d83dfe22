package dev.loomvisor.bench.machine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

class DisturbanceTest {

    private static Map<String, Object> row(String key) {
        var r = new LinkedHashMap<String, Object>();
        r.put("key", key);
        r.put("model", key.substring(0, key.indexOf('/')));
        return r;
    }

    private static double[] rates(double... framesPerSecond) {
        return framesPerSecond;
    }

    @Test
    void aCeilingRepeatFarBelowTheOthersIsAnOutlier() {
        assertEquals(1, Disturbance.ceilingOutliers(new double[] {11.0e6, 0.41e6, 10.6e6}), "27x below, as seen on main");
        assertEquals(0, Disturbance.ceilingOutliers(new double[] {11.0e6, 8.0e6, 10.6e6}));
        assertEquals(0, Disturbance.ceilingOutliers(new double[] {5.0e6}), "one repeat has nothing to compare with");
        var d = new Disturbance();
        var r = row("kthread/64B");
        d.flag(r, rates(11_000_000, 400_000, 10_600_000));
        assertEquals(true, r.get("disturbed"));
        assertTrue(((List<?>) r.get("disturbance")).getFirst().toString().startsWith("1 ceiling repeat far below"), r.toString());
        assertEquals("kthread !", Disturbance.mark(r));
        var quiet = row("kthread/1500B");
        d.flag(quiet, rates(4_000_000, 4_100_000, 3_900_000));
        assertEquals("kthread", Disturbance.mark(quiet), quiet.toString());
        var note = Disturbance.footnote(List.of(r, quiet)).orElseThrow();
        assertTrue(note.startsWith("! disturbed run") && note.contains("kthread/64B: 1 ceiling repeat")
                && !note.contains("1500B"), note);
        assertTrue(Disturbance.footnote(List.of(quiet)).isEmpty());
    }

    @Test
    void otherProcessesBusyDuringAMeasurementMarkIt() throws Exception {
        var d = new Disturbance();
        int cpus = Runtime.getRuntime().availableProcessors();
        List<Process> hogs = new ArrayList<>();
        d.begin();
        try {
            for (int i = 0; i < cpus; i++) {
                hogs.add(new ProcessBuilder("sh", "-c", "while :; do :; done").start());
            }
            Thread.sleep(1_000);
        } finally {
            hogs.forEach(Process::destroyForcibly);
            for (Process p : hogs) {
                p.waitFor(10, TimeUnit.SECONDS);
            }
        }
        d.end("user-worker/64B");
        var r = row("user-worker/64B");
        d.flag(r, null);
        assertTrue((double) r.get("otherCpuShare") > Disturbance.OTHER_CPU_SHARE, r.toString());
        assertEquals(true, r.get("disturbed"));
        assertTrue(((List<?>) r.get("disturbance")).getFirst().toString().startsWith("other processes took"), r.toString());
        var never = row("kthread/64B");
        d.flag(never, null);
        assertFalse((boolean) never.get("disturbed"), "a row that was not measured has no share");
    }
}
