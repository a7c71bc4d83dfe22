package dev.loomvisor.bench.cli;

import dev.loomvisor.bench.journal.Journal;
import dev.loomvisor.bench.journal.RunRecord;
import dev.loomvisor.bench.output.Json;
import dev.loomvisor.bench.output.Table;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** {@code report}: reads the run journal back: list the runs, show one, diff two. */
@Command(name = "report", mixinStandardHelpOptions = true,
        description = "Reads the run journal: with no run, lists the runs; with one, shows it; with two, compares them.")
public final class ReportCommand implements java.util.concurrent.Callable<Integer> {

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Option(names = "--journal", paramLabel = "DIR", description = "Journal directory (default: ${DEFAULT-VALUE}).",
            defaultValue = "loomvisor-runs")
    Path journal;

    @Option(names = "--json", description = "Print JSON instead of tables.")
    boolean json;

    @Parameters(arity = "0..2", paramLabel = "RUN", description = "Run ids (or unique prefixes; 'last' for the newest).")
    List<String> runs = new ArrayList<>();

    @Override
    public Integer call() {
        PrintWriter out = spec.commandLine().getOut();
        if (!Files.isDirectory(journal)) {
            throw new CommandLine.ParameterException(spec.commandLine(),
                    "no journal at " + journal + "; run a benchmark first or name one with --journal DIR");
        }
        List<RunRecord> all;
        try (var j = Journal.open(journal)) {
            all = j.runs();
        }
        switch (runs.size()) {
            case 0 -> list(out, all);
            case 1 -> show(out, find(all, runs.get(0)));
            default -> diff(out, find(all, runs.get(0)), find(all, runs.get(1)));
        }
        out.flush();
        return 0;
    }

    private RunRecord find(List<RunRecord> all, String id) {
        if (id.equals("last") && !all.isEmpty()) {
            return all.getLast();
        }
        List<RunRecord> hits = all.stream().filter(r -> r.id().startsWith(id)).toList();
        if (hits.size() != 1) {
            throw new CommandLine.ParameterException(spec.commandLine(), hits.isEmpty()
                    ? "no run '" + id + "' in " + journal + "; 'report' lists the runs"
                    : "'" + id + "' matches " + hits.size() + " runs; give more of the id");
        }
        return hits.getFirst();
    }

    private void list(PrintWriter out, List<RunRecord> all) {
        if (json) {
            var l = new ArrayList<Object>();
            for (var r : all) {
                var m = new LinkedHashMap<String, Object>();
                m.put("run", r.id());
                m.put("started", r.started());
                m.put("command", r.command());
                m.put("complete", r.complete());
                m.put("results", (long) r.results().size());
                l.add(m);
            }
            out.print(Json.pretty(l));
            return;
        }
        var t = new Table(List.of("run", "started", "command", "status", "models"));
        for (var r : all) {
            t.row(List.of(r.id(), r.started(), r.command(), r.complete() ? "complete" : "incomplete",
                    String.valueOf(r.results().size())));
        }
        out.print(t.render());
    }

    private void show(PrintWriter out, RunRecord r) {
        if (json) {
            var m = new LinkedHashMap<String, Object>();
            m.put("run", r.id());
            m.put("complete", r.complete());
            m.put("start", r.start());
            m.put("results", r.results());
            m.put("end", r.end());
            out.print(Json.pretty(m));
            return;
        }
        out.println("run " + r.id() + " (" + r.command() + ", " + (r.complete() ? "complete" : "INCOMPLETE") + ")");
        out.println("config:  " + Json.write(r.start().get("config")));
        out.println("machine: " + Json.write(r.start().get("machine")));
        if (r.end() != null) {
            out.println("end:     " + Json.write(r.end()));
        }
        out.print(resultTable(r.results()));
    }

    /** Every field that any result has, in first-seen order, one row per result. */
    static String resultTable(List<Map<String, Object>> results) {
        var keys = new LinkedHashSet<String>();
        results.forEach(m -> keys.addAll(m.keySet()));
        var t = new Table(List.copyOf(keys));
        for (var m : results) {
            var row = new ArrayList<String>();
            for (String k : keys) {
                row.add(format(m.get(k)));
            }
            t.row(row);
        }
        return t.render();
    }

    static String format(Object v) {
        return switch (v) {
            case null -> "-";
            case Double d -> String.format(Locale.ROOT, Math.abs(d) >= 100 ? "%.1f" : "%.4g", d);
            default -> String.valueOf(v);
        };
    }

    private void diff(PrintWriter out, RunRecord a, RunRecord b) {
        var rows = new ArrayList<Map<String, Object>>();
        for (var ra : a.results()) {
            Object key = ra.get("key") != null ? ra.get("key") : ra.get("model");
            for (var rb : b.results()) {
                Object kb = rb.get("key") != null ? rb.get("key") : rb.get("model");
                if (key == null || !key.equals(kb)) {
                    continue;
                }
                for (var e : ra.entrySet()) {
                    if (e.getValue() instanceof Number na && rb.get(e.getKey()) instanceof Number nb) {
                        var m = new LinkedHashMap<String, Object>();
                        m.put("key", key);
                        m.put("field", e.getKey());
                        m.put(a.id(), na.doubleValue());
                        m.put(b.id(), nb.doubleValue());
                        m.put("ratio", na.doubleValue() == 0 ? Double.NaN : nb.doubleValue() / na.doubleValue());
                        rows.add(m);
                    }
                }
            }
        }
        if (json) {
            out.print(Json.pretty(rows));
            return;
        }
        if (!a.complete() || !b.complete()) {
            out.println("note: " + (a.complete() ? b.id() : a.id()) + " is incomplete");
        }
        out.print(resultTable(rows));
    }
}
