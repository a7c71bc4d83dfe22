package dev.loomvisor.bench.cli;

import picocli.CommandLine;

/** Reads a rate in frames per second: "10000", "10k", "1.5m". */
public final class Rates implements CommandLine.ITypeConverter<Long> {

    @Override
    public Long convert(String value) {
        String v = value.trim().toLowerCase(java.util.Locale.ROOT);
        double scale = 1;
        if (v.endsWith("k")) {
            scale = 1e3;
            v = v.substring(0, v.length() - 1);
        } else if (v.endsWith("m")) {
            scale = 1e6;
            v = v.substring(0, v.length() - 1);
        }
        try {
            return Math.round(Double.parseDouble(v) * scale);
        } catch (NumberFormatException e) {
            throw new CommandLine.TypeConversionException(
                    "'" + value + "' is not a rate; use frames per second, e.g. 10000, 10k, 1.5m");
        }
    }
}
