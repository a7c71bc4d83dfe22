package dev.loomvisor.bench.output;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.List;
import org.junit.jupiter.api.Test;

class TableTest {

    @Test
    void alignsTextLeftAndNumbersRight() {
        String t = new Table(List.of("model", "Mpps"))
                .row(List.of("user-worker", "1.25"))
                .row(List.of("kthread", "10.5"))
                .render();
        assertEquals("""
                model        Mpps
                -----------  ----
                user-worker  1.25
                kthread      10.5
                """, t);
    }

    @Test
    void rowWidthMustMatchTheHeader() {
        assertThrows(IllegalArgumentException.class, () -> new Table(List.of("a", "b")).row(List.of("x")));
    }
}
