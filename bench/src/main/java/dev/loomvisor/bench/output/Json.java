package dev.loomvisor.bench.output;

import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.core.util.DefaultIndenter;
import com.fasterxml.jackson.core.util.DefaultPrettyPrinter;
import com.fasterxml.jackson.core.util.Separators;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.ObjectWriter;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.json.JsonMapper;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The JSON that {@code --json}, {@code summary.json} and the journal carry: objects as insertion-ordered
 * maps, arrays as lists, numbers as {@code Long} or {@code Double}, plus strings, booleans and null.
 * Jackson reads and writes it; this class keeps the shapes the tool has always written: any other value
 * is written as its {@code toString()}, non-finite doubles as null (JSON has no NaN), and the pretty form
 * indents by two spaces with {@code "key": value}.
 */
public final class Json {

    private static final ObjectMapper MAPPER = JsonMapper.builder()
            .enable(DeserializationFeature.USE_LONG_FOR_INTS)
            .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
            .disable(SerializationFeature.FAIL_ON_EMPTY_BEANS)
            .build();

    private static final ObjectWriter COMPACT = MAPPER.writer();

    private static final ObjectWriter PRETTY = MAPPER.writer(new DefaultPrettyPrinter(Separators.createDefaultInstance()
                    .withObjectFieldValueSpacing(Separators.Spacing.AFTER)
                    .withObjectEmptySeparator("")
                    .withArrayEmptySeparator(""))
            .withObjectIndenter(new DefaultIndenter("  ", "\n"))
            .withArrayIndenter(new DefaultIndenter("  ", "\n")));

    private Json() {}

    public static String write(Object value) {
        try {
            return COMPACT.writeValueAsString(plain(value));
        } catch (JacksonException e) {
            throw new IllegalStateException("JSON: cannot write: " + e.getOriginalMessage(), e);
        }
    }

    public static String pretty(Object value) {
        try {
            return PRETTY.writeValueAsString(plain(value)) + "\n";
        } catch (JacksonException e) {
            throw new IllegalStateException("JSON: cannot write: " + e.getOriginalMessage(), e);
        }
    }

    /**
     * Parses one JSON value. Malformed text (including anything after the value) throws an
     * IllegalArgumentException saying what was expected and the character offset.
     */
    public static Object parse(String text) {
        try {
            return MAPPER.readValue(text, Object.class);
        } catch (JacksonException e) {
            long offset = e.getLocation() == null ? -1 : e.getLocation().getCharOffset();
            String what = e.getOriginalMessage();
            int nl = what.indexOf('\n');
            throw new IllegalArgumentException("JSON: " + (nl < 0 ? what : what.substring(0, nl))
                    + (offset >= 0 ? " at offset " + offset : ""), e);
        }
    }

    /** The value as maps, lists, strings, Long/Double, booleans and nulls only. */
    private static Object plain(Object v) {
        return switch (v) {
            case null -> null;
            case String s -> s;
            case Boolean b -> b;
            case Double d -> Double.isFinite(d) ? d : null;
            case Float f -> Float.isFinite(f) ? f : null;
            case Long l -> l;
            case Number n -> n.longValue();
            case Map<?, ?> m -> {
                var out = new LinkedHashMap<String, Object>(Math.max(4, m.size() * 2));
                for (var e : m.entrySet()) {
                    out.put(String.valueOf(e.getKey()), plain(e.getValue()));
                }
                yield out;
            }
            case List<?> l -> {
                var out = new ArrayList<Object>(l.size());
                for (Object o : l) {
                    out.add(plain(o));
                }
                yield out;
            }
            default -> v.toString();
        };
    }
}
