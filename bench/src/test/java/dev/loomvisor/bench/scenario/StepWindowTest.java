package dev.loomvisor.bench.scenario;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import org.junit.jupiter.api.Test;

class StepWindowTest {

    private static final Duration WARMUP = Duration.ofMillis(300);
    private static final Duration MIN = Duration.ofSeconds(1);
    private static final Duration MAX = Duration.ofSeconds(30);

    @Test
    void aFewSlowFlowsMeasureLongEnoughForTheSamplesAsked() {
        // 2 VMs at 10 frames/s: 20 samples a second; 1,000 samples take 50 s, more than the cap.
        StepWindow w = StepWindow.plan(2, 10, WARMUP, MIN, MAX, 1000, 5);
        assertEquals(MAX, w.duration());
        assertEquals(600, w.expectedSamples());
        assertTrue(w.capped(), "fewer samples than asked: reported as capped");
        // 5 send intervals of 100 ms, more than the 300 ms asked.
        assertEquals(Duration.ofMillis(500), w.warmup());
    }

    @Test
    void aWindowJustLongEnoughIsNotCapped() {
        // 40 VMs at 10 frames/s: 400 a second; 1,000 samples in 2.5 s.
        StepWindow w = StepWindow.plan(40, 10, WARMUP, MIN, MAX, 1000, 5);
        assertEquals(Duration.ofMillis(2500), w.duration());
        assertEquals(1000, w.expectedSamples());
        assertFalse(w.capped());
    }

    @Test
    void aFleetKeepsTheDurationAskedFor() {
        StepWindow w = StepWindow.plan(10_000, 10, WARMUP, MIN, MAX, 1000, 2);
        assertEquals(MIN, w.duration());
        assertEquals(100_000, w.expectedSamples());
        assertFalse(w.capped());
        assertEquals(WARMUP, w.warmup(), "2 intervals of 100 ms are within the 300 ms asked");
    }

    @Test
    void theWarmUpIsCappedToo() {
        // One frame every 100 s: 5 intervals would be 500 s.
        StepWindow w = StepWindow.plan(2, 0.01, WARMUP, MIN, MAX, 1000, 5);
        assertEquals(MAX, w.warmup());
        assertEquals(MAX, w.duration());
        assertEquals(0, w.expectedSamples());
        assertTrue(w.capped());
    }

    @Test
    void aCapBelowTheDurationAskedIsRaisedToIt() {
        StepWindow w = StepWindow.plan(2, 10, WARMUP, Duration.ofSeconds(60), MAX, 1000, 0);
        assertEquals(Duration.ofSeconds(60), w.duration());
        assertEquals(1200, w.expectedSamples());
        assertFalse(w.capped());
    }

    @Test
    void noSamplesAskedMeansTheDurationAsked() {
        StepWindow w = StepWindow.plan(2, 10, WARMUP, MIN, MAX, 0, 0);
        assertEquals(MIN, w.duration());
        assertEquals(WARMUP, w.warmup());
    }

    @Test
    void nonsenseIsRefused() {
        assertThrows(IllegalArgumentException.class, () -> StepWindow.plan(0, 10, WARMUP, MIN, MAX, 1, 1));
        assertThrows(IllegalArgumentException.class, () -> StepWindow.plan(2, 0, WARMUP, MIN, MAX, 1, 1));
        assertThrows(IllegalArgumentException.class, () -> StepWindow.plan(2, 10, WARMUP, MIN, MAX, -1, 1));
    }
}
