package dev.loomvisor.bench.scenario;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

class FloorTest {

    @ParameterizedTest
    @EnumSource(DataPathRun.Traffic.class)
    void pacedFramesArriveAndAreRecorded(DataPathRun.Traffic traffic) throws Exception {
        var m = Floor.run(4, 2000, traffic, Duration.ofMillis(100), Duration.ofMillis(300));
        assertTrue(m.frames() > 0, "no frame arrived");
        assertEquals(0, m.dropped());
        assertTrue(m.latency().getMinValue() >= 0);
    }
}
