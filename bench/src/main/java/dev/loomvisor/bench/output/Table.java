package dev.loomvisor.bench.output;

import java.util.ArrayList;
import java.util.List;

/** A plain-text table: a header row, then rows; text columns left-aligned, numbers right-aligned. */
public final class Table {

    private final List<String> header;
    private final List<List<String>> rows = new ArrayList<>();

    public Table(List<String> header) {
        this.header = List.copyOf(header);
    }

    public Table row(List<String> cells) {
        if (cells.size() != header.size()) {
            throw new IllegalArgumentException("row has " + cells.size() + " cells, header " + header.size());
        }
        rows.add(List.copyOf(cells));
        return this;
    }

    public String render() {
        int n = header.size();
        int[] width = new int[n];
        boolean[] numeric = new boolean[n];
        for (int c = 0; c < n; c++) {
            width[c] = header.get(c).length();
            numeric[c] = !rows.isEmpty();
            for (var r : rows) {
                width[c] = Math.max(width[c], r.get(c).length());
                numeric[c] &= looksNumeric(r.get(c));
            }
        }
        var sb = new StringBuilder();
        line(sb, header, width, numeric);
        for (int c = 0; c < n; c++) {
            sb.append(c == 0 ? "" : "  ").repeat('-', width[c]);
        }
        sb.append('\n');
        for (var r : rows) {
            line(sb, r, width, numeric);
        }
        return sb.toString();
    }

    private static void line(StringBuilder sb, List<String> cells, int[] width, boolean[] numeric) {
        for (int c = 0; c < cells.size(); c++) {
            String v = cells.get(c);
            int pad = width[c] - v.length();
            if (c > 0) {
                sb.append("  ");
            }
            if (numeric[c]) {
                sb.repeat(' ', pad).append(v);
            } else {
                sb.append(v);
                if (c < cells.size() - 1) {
                    sb.repeat(' ', pad);
                }
            }
        }
        sb.append('\n');
    }

    private static boolean looksNumeric(String s) {
        if (s.isEmpty() || s.equals("-")) {
            return true;
        }
        char c = s.charAt(0);
        return (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.';
    }
}
