package dev.loomvisor.bench.cli;

import picocli.CommandLine;

/** Reads a rate in frames per second: "10000", "10k", "1.5m", or a fraction for mostly idle flows, "0.5". */
public final class Rates implements CommandLine.ITypeConverter<Double> {

    @Override
    public Double convert(String value) {
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
            double r = Double.parseDouble(v) * scale;
            if (Double.isFinite(r)) {
                return r;
            }
        } catch (NumberFormatException e) {
            // the message below
        }
        throw new CommandLine.TypeConversionException(
                "'" + value + "' is not a rate; use frames per second, e.g. 10000, 10k, 1.5m, 0.5");
    }

    /** A rate as a person writes it: "1k", "10", "0.5". */
    public static String format(double rate) {
        if (rate >= 1e6 && rate % 1e6 == 0) {
            return (long) (rate / 1e6) + "m";
        }
        if (rate >= 1e3 && rate % 1e3 == 0) {
            return (long) (rate / 1e3) + "k";
        }
        return rate == Math.rint(rate) ? String.valueOf((long) rate) : String.valueOf(rate);
    }
}
