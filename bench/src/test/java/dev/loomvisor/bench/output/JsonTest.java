package dev.loomvisor.bench.output;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class JsonTest {

    @Test
    void roundTripsNestedValues() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("model", "user-worker");
        m.put("mpps", 1.25);
        m.put("frames", 123456789012L);
        m.put("ok", true);
        m.put("none", null);
        m.put("text", "quote \" backslash \\ newline \n tab \t ctl \u0001");
        m.put("list", new ArrayList<>(Arrays.asList(1L, 2.5, "x", new LinkedHashMap<>(), new ArrayList<>())));
        assertEquals(m, Json.parse(Json.write(m)));
        assertEquals(m, Json.parse(Json.pretty(m)));
    }

    @Test
    void prettyFormIsTheOneTheToolHasAlwaysWritten() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("a", 1);
        m.put("b", List.of(1.5, "x"));
        m.put("e", Map.of());
        m.put("l", List.of());
        m.put("p", java.nio.file.Path.of("/tmp/x"));
        assertEquals("{\n  \"a\": 1,\n  \"b\": [\n    1.5,\n    \"x\"\n  ],\n  \"e\": {},\n  \"l\": [],\n  \"p\": \"/tmp/x\"\n}\n",
                Json.pretty(m));
        assertEquals("{\"a\":1,\"b\":[1.5,\"x\"],\"e\":{},\"l\":[],\"p\":\"/tmp/x\"}", Json.write(m));
    }

    @Test
    void nonFiniteDoublesBecomeNull() {
        assertEquals(Arrays.asList(null, null), Json.parse(Json.write(List.of(Double.NaN, Double.POSITIVE_INFINITY))));
    }

    @Test
    void malformedInputSaysWhere() {
        var e = assertThrows(IllegalArgumentException.class, () -> Json.parse("{\"a\": 1,}"));
        assertTrue(e.getMessage().startsWith("JSON: ") && e.getMessage().endsWith(" at offset 8"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> Json.parse("[1 2]"));
        assertThrows(IllegalArgumentException.class, () -> Json.parse("\"open"));
        assertThrows(IllegalArgumentException.class, () -> Json.parse("{} x"));
    }
}
