package dev.loomvisor.bench.output;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.HdrHistogram.Histogram;
import org.HdrHistogram.HistogramIterationValue;
import org.HdrHistogram.HistogramLogWriter;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.XYSeries;
import org.knowm.xchart.style.markers.SeriesMarkers;

/**
 * The latency files of a run in {@code --out DIR}: a {@code .hgrm} percentile distribution per model (the
 * format HdrHistogram's plotter reads), an interval log per model written with {@link HistogramLogWriter}
 * (readable by {@code HistogramLogProcessor}), and one PNG chart of latency by percentile with a line per
 * model. Histograms hold nanoseconds; the files show microseconds, as wrk2 and the plotter do.
 */
public final class LatencyFiles {

    /** Nanoseconds recorded, microseconds shown. */
    public static final double OUTPUT_SCALE = 1000.0;

    private LatencyFiles() {}

    public static Path writeHgrm(Path dir, String model, Histogram h) throws IOException {
        Files.createDirectories(dir);
        Path file = dir.resolve(model + ".hgrm");
        try (var out = new PrintStream(Files.newOutputStream(file), false, java.nio.charset.StandardCharsets.UTF_8)) {
            h.outputPercentileDistribution(out, 5, OUTPUT_SCALE);
        }
        return file;
    }

    public static Path writeIntervalLog(Path dir, String model, long startMillis, List<Histogram> intervals)
            throws IOException {
        Files.createDirectories(dir);
        Path file = dir.resolve(model + ".hlog");
        try (var out = new PrintStream(Files.newOutputStream(file), false, java.nio.charset.StandardCharsets.UTF_8)) {
            var w = new HistogramLogWriter(out);
            w.outputComment("loomvisor interval log, model " + model + ", values in nanoseconds");
            w.outputLogFormatVersion();
            w.outputStartTime(startMillis);
            w.setBaseTime(startMillis);
            w.outputLegend();
            for (Histogram h : intervals) {
                h.setTag(model);
                w.outputIntervalHistogram(h);
            }
        }
        return file;
    }

    /**
     * Latency by percentile, one line per model, x on the usual "number of nines" log scale
     * (1 / (1 - percentile)), as HdrHistogram's plotter draws it.
     */
    public static Path writeChart(Path dir, String title, Map<String, Histogram> byModel) throws IOException {
        Files.createDirectories(dir);
        System.setProperty("java.awt.headless", "true");
        XYChart chart = new XYChartBuilder().width(1000).height(600).title(title)
                .xAxisTitle("percentile (x = 1 / (1 - p): 10 = p90, 100 = p99, 1000 = p99.9)")
                .yAxisTitle("latency (us)").build();
        chart.getStyler().setXAxisLogarithmic(true);
        // Latencies span decades (a p50 of microseconds, a max of milliseconds): a log axis shows both.
        chart.getStyler().setYAxisLogarithmic(true);
        chart.getStyler().setYAxisDecimalPattern("#,##0.#");
        chart.getStyler().setDefaultSeriesRenderStyle(XYSeries.XYSeriesRenderStyle.Line);
        for (var e : byModel.entrySet()) {
            var xs = new ArrayList<Double>();
            var ys = new ArrayList<Double>();
            Histogram h = e.getValue();
            if (h.getTotalCount() == 0) {
                continue;
            }
            for (HistogramIterationValue v : h.percentiles(5)) {
                double p = v.getPercentileLevelIteratedTo() / 100.0;
                if (p >= 1.0) {
                    break;
                }
                xs.add(1.0 / (1.0 - p));
                ys.add(v.getValueIteratedTo() / OUTPUT_SCALE);
            }
            if (!xs.isEmpty()) {
                chart.addSeries(e.getKey(), xs, ys).setMarker(SeriesMarkers.NONE);
            }
        }
        Path file = dir.resolve("latency.png");
        try (var out = Files.newOutputStream(file)) {
            BitmapEncoder.saveBitmap(chart, out, BitmapEncoder.BitmapFormat.PNG);
        }
        return file;
    }
}
