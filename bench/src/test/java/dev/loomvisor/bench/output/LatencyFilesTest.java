package dev.loomvisor.bench.output;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.FileNotFoundException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import org.HdrHistogram.EncodableHistogram;
import org.HdrHistogram.Histogram;
import org.HdrHistogram.HistogramLogReader;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class LatencyFilesTest {

    @TempDir
    Path dir;

    private static Histogram ramp(long scale) {
        var h = new Histogram(3);
        for (int i = 1; i <= 10_000; i++) {
            h.recordValue(i * scale);
        }
        return h;
    }

    @Test
    void hgrmHoldsThePercentileTableInMicroseconds() throws Exception {
        Path f = LatencyFiles.writeHgrm(dir, "user-worker", ramp(100));
        String text = Files.readString(f);
        assertTrue(text.contains("Percentile TotalCount 1/(1-Percentile)"), text);
        assertTrue(text.contains("#[Max     =     1000.447, Total count    =        10000]"), text);
    }

    @Test
    void intervalLogReadsBackWithHdrHistogramsOwnReader() throws Exception {
        var intervals = new ArrayList<Histogram>();
        long base = 1_700_000_000_000L;
        for (int i = 0; i < 3; i++) {
            Histogram h = ramp(10 + i);
            h.setStartTimeStamp(base + i * 1000L);
            h.setEndTimeStamp(base + (i + 1) * 1000L);
            intervals.add(h);
        }
        Path f = LatencyFiles.writeIntervalLog(dir, "kthread", base, intervals);
        var reader = new HistogramLogReader(f.toFile());
        List<EncodableHistogram> back = new ArrayList<>();
        EncodableHistogram h;
        while ((h = reader.nextIntervalHistogram()) != null) {
            back.add(h);
        }
        assertEquals(3, back.size());
        assertEquals(intervals.get(2).getMaxValue(), ((Histogram) back.get(2)).getMaxValue());
        assertEquals("kthread", back.get(0).getTag());
    }

    @Test
    void chartIsAPng() throws Exception {
        var m = new LinkedHashMap<String, Histogram>();
        m.put("user-worker", ramp(100));
        m.put("kthread", ramp(150));
        Path f = LatencyFiles.writeChart(dir, "test", m);
        byte[] b = Files.readAllBytes(f);
        assertTrue(b.length > 1000);
        assertEquals((byte) 0x89, b[0]);
        assertEquals('P', b[1]);
        assertEquals('N', b[2]);
        assertEquals('G', b[3]);
    }
}
