package dev.loomvisor.bench.journal;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * One run as read back from the journal. {@code end} is null for an incomplete run (killed, or still
 * being written by another process).
 */
public record RunRecord(String id, Map<String, Object> start, List<Map<String, Object>> intervals,
                        List<Map<String, Object>> results, Map<String, Object> end) {

    public boolean complete() {
        return end != null;
    }

    public String command() {
        return String.valueOf(start.get("command"));
    }

    public String started() {
        return String.valueOf(start.get("started"));
    }

    static final class Builder {
        final String id;
        Map<String, Object> start;
        Map<String, Object> end;
        final List<Map<String, Object>> intervals = new ArrayList<>();
        final List<Map<String, Object>> results = new ArrayList<>();

        Builder(String id) {
            this.id = id;
        }

        RunRecord build() {
            return new RunRecord(id, start, List.copyOf(intervals), List.copyOf(results), end);
        }
    }
}
