package dev.loomvisor.bench.machine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class MachineStateTest {

    @Test
    void parsesProcStatBusyTicksWithoutIdleAndIowait() {
        // user nice system idle iowait irq softirq steal guest guest_nice
        assertEquals(1 + 2 + 3 + 6 + 7 + 8, MachineState.parseBusyTicks("cpu  1 2 3 4 5 6 7 8 9 10"));
    }

    @Test
    void parsesOwnTicksEvenWithSpacesAndParensInTheComm() {
        String stat = "4242 (java (x) y) S 1 4242 4242 0 -1 4194560 100 0 0 0 17 5 0 0 20 0 30 0 123 456 789";
        assertEquals(22, MachineState.parseOwnTicks(stat));
    }

    @Test
    void coreToCoreRoundTripIsMeasuredAndOrdered() {
        var r = CoreToCore.measure(3, 1000);
        assertTrue(r.minNanos() > 0, "a round trip takes time: " + r);
        assertTrue(r.minNanos() <= r.medianNanos() && r.medianNanos() <= r.maxNanos(), r.toString());
        assertThrows(IllegalArgumentException.class, () -> CoreToCore.measure(0, 1));
    }

    @Test
    void startAndEndRecordsCarryTheFieldsAReportNeeds() {
        var m = MachineState.begin();
        var start = m.startRecord();
        var end = m.endRecord();
        assertTrue(start.containsKey("jdk") && start.containsKey("cpus") && start.containsKey("coreToCoreNanosStart"));
        assertTrue(end.containsKey("otherCpuSeconds") && end.containsKey("coreToCoreNanosEnd"));
        assertTrue((double) end.get("otherCpuSeconds") >= 0);
        assertTrue(MachineState.rssBytes() > 0);
        assertTrue(MachineState.processCpuSeconds() > 0);
    }
}
