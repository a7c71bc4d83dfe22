package dev.loomvisor.bench.output;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.XYSeries;
import org.knowm.xchart.style.lines.SeriesLines;
import org.knowm.xchart.style.markers.SeriesMarkers;

/** The sweep's picture: p99 latency against VMs, one line per model, with the SLO as a dashed line. */
public final class SweepChart {

    /** One measured point of a model's line. */
    public record Point(int vms, double p99Us) {}

    private SweepChart() {}

    /** Writes {@code sweep.png} in {@code dir}; points of each model are drawn in VM order. */
    public static Path write(Path dir, String title, Map<String, List<Point>> byModel, double sloUs) throws IOException {
        Files.createDirectories(dir);
        System.setProperty("java.awt.headless", "true");
        XYChart chart = new XYChartBuilder().width(1000).height(600).title(title)
                .xAxisTitle("VMs").yAxisTitle("p99 latency (us)").build();
        // Doubling steps and latencies over decades: both axes on a log scale.
        chart.getStyler().setXAxisLogarithmic(true);
        chart.getStyler().setYAxisLogarithmic(true);
        chart.getStyler().setYAxisDecimalPattern("#,##0.#");
        chart.getStyler().setDefaultSeriesRenderStyle(XYSeries.XYSeriesRenderStyle.Line);
        double minX = Double.MAX_VALUE;
        double maxX = 0;
        for (var e : byModel.entrySet()) {
            var pts = new ArrayList<>(e.getValue().stream()
                    .filter(p -> Double.isFinite(p.p99Us()) && p.p99Us() > 0).toList());
            if (pts.isEmpty()) {
                continue;
            }
            pts.sort((a, b) -> Integer.compare(a.vms(), b.vms()));
            var xs = pts.stream().map(p -> (double) p.vms()).toList();
            var ys = pts.stream().map(Point::p99Us).toList();
            minX = Math.min(minX, xs.getFirst());
            maxX = Math.max(maxX, xs.getLast());
            chart.addSeries(e.getKey(), xs, ys).setMarker(SeriesMarkers.CIRCLE);
        }
        if (maxX > 0) {
            var slo = chart.addSeries("SLO", List.of(minX, Math.max(maxX, minX * 2)), List.of(sloUs, sloUs));
            slo.setMarker(SeriesMarkers.NONE);
            slo.setLineStyle(SeriesLines.DASH_DASH);
        }
        Path file = dir.resolve("sweep.png");
        try (var out = Files.newOutputStream(file)) {
            BitmapEncoder.saveBitmap(chart, out, BitmapEncoder.BitmapFormat.PNG);
        }
        return file;
    }
}
