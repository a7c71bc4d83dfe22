package dev.loomvisor.bench.scenario;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import org.junit.jupiter.api.Test;

class CeilingsTest {

    @Test
    void agronaRingMovesFramesAndReportsARate() throws Exception {
        var r = Ceilings.agronaRing(64, Duration.ofMillis(50));
        assertTrue(r.frames() > 0, r.toString());
        assertEquals(64, r.frameSize());
        assertTrue(r.framesPerSecond() > 0 && r.gbitPerSecond() > 0);
    }

    @Test
    void copyLoopMovesEveryFrameItSent() throws Exception {
        var r = Ceilings.copyLoop(1500, Duration.ofMillis(50));
        assertTrue(r.frames() > 0, r.toString());
        assertEquals(r.framesPerSecond() * 1500 * 8 / 1e9, r.gbitPerSecond(), 1e-9);
    }
}
