package dev.loomvisor.vmm.virtio;

import static org.junit.jupiter.api.Assertions.*;

import dev.loomvisor.vmm.memory.GuestMemory;
import dev.loomvisor.vmm.testing.TestRings;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** Notification suppression both ways, with and without EVENT_IDX (virtio 1.2 §2.7.7, §2.7.10). */
class NotificationTest {

    static final int N = 16;
    GuestMemory memory;
    TestRings rings;

    @BeforeEach
    void setUp() {
        memory = GuestMemory.anonymous(0x10000, 1 << 20);
        rings = new TestRings(memory, N);
    }

    @AfterEach
    void tearDown() {
        memory.close();
    }

    /** event in [old, new) modulo 2^16, computed the slow way. */
    static boolean reference(int event, int newIdx, int old) {
        for (int i = old; (i & 0xffff) != (newIdx & 0xffff); i++) {
            if ((i & 0xffff) == event) {
                return true;
            }
        }
        return false;
    }

    @Test
    void needEventMatchesIntervalDefinitionAcrossTheWrap() {
        int[] olds = {0, 1, 100, 32767, 32768, 65000, 65530, 65534, 65535};
        for (int old : olds) {
            for (int delta = 0; delta <= 20; delta++) {
                int now = (old + delta) & 0xffff;
                for (int e = -3; e <= 23; e++) {
                    int event = (old + e) & 0xffff;
                    assertEquals(reference(event, now, old), SplitRing.needEvent(event, now, old),
                            "event " + event + " new " + now + " old " + old);
                }
            }
        }
        assertTrue(SplitRing.needEvent(65535, 0, 65535));
        assertFalse(SplitRing.needEvent(65535, 65535, 65534));
        assertTrue(SplitRing.needEvent(0, 1, 65535));
        assertFalse(SplitRing.needEvent(1, 1, 65535));
    }

    @Test
    void interruptDecisionWithEventIdxAcrossTheWrap() {
        rings.usedIdx(65533);
        DeviceQueue q = rings.device(true, false);
        assertTrue(q.needsInterrupt(), "the first decision always interrupts");
        rings.usedEvent(65535); // interrupt once used.idx moves past 65535
        q.addUsed(0, 0);        // 65534
        assertFalse(q.needsInterrupt());
        q.addUsed(0, 0);        // 65535
        assertFalse(q.needsInterrupt());
        q.addUsed(0, 0);        // 0: passed 65535
        assertTrue(q.needsInterrupt());
        q.addUsed(0, 0);        // 1
        assertFalse(q.needsInterrupt(), "used_event not moved: no second interrupt");
        rings.usedEvent(1);
        q.addUsed(0, 0);
        q.addUsed(0, 0);        // 3: passed 1 in a batch of two
        assertTrue(q.needsInterrupt());
    }

    @Test
    void interruptDecisionWithoutEventIdxFollowsAvailFlags() {
        DeviceQueue q = rings.device(false, false);
        q.addUsed(0, 0);
        assertTrue(q.needsInterrupt());
        rings.availFlags(SplitRing.AVAIL_F_NO_INTERRUPT);
        q.addUsed(0, 0);
        assertFalse(q.needsInterrupt());
        DriverQueue d = rings.driver(false);
        d.enableInterrupts();
        assertTrue(q.needsInterrupt());
    }

    @Test
    void kickDecisionWithEventIdxAcrossTheWrap() {
        rings.availIdx(65534);
        DriverQueue d = rings.driver(true);
        DeviceQueue q = rings.device(true, false);
        q.setLastAvail(65534);
        long buf = rings.dataAddr();
        DescriptorChain c = q.newChain();
        assertFalse(q.enableNotifications()); // avail_event = 65534
        assertEquals(65534, d.availEvent());
        d.add(buf, 1, false, 0);
        assertTrue(d.publishAndCheckKick(), "65534 -> 65535 passes avail_event 65534");
        d.add(buf, 1, false, 0);
        assertFalse(d.publishAndCheckKick(), "device did not re-arm");
        assertTrue(q.nextAvail(c));
        assertTrue(q.nextAvail(c));
        assertFalse(q.enableNotifications()); // avail_event = 0
        assertEquals(0, d.availEvent());
        d.add(buf, 1, false, 0);
        d.add(buf, 1, false, 0);
        assertTrue(d.publishAndCheckKick(), "0 -> 2 in one publication passes 0");
    }

    @Test
    void kickDecisionWithoutEventIdxFollowsUsedFlags() {
        DriverQueue d = rings.driver(false);
        DeviceQueue q = rings.device(false, false);
        long buf = rings.dataAddr();
        d.add(buf, 1, false, 0);
        assertTrue(d.publishAndCheckKick());
        q.disableNotifications();
        assertEquals(SplitRing.USED_F_NO_NOTIFY, rings.usedFlags());
        d.add(buf, 1, false, 0);
        assertFalse(d.publishAndCheckKick());
        assertTrue(q.enableNotifications(), "two chains are pending");
        assertEquals(0, rings.usedFlags());
    }

    @ParameterizedTest
    @ValueSource(booleans = {false, true})
    void enableReturnsMoreWorkWhenTheDriverAddedDuringTheDrain(boolean eventIdx) {
        DriverQueue d = rings.driver(eventIdx);
        DeviceQueue q = rings.device(eventIdx, false);
        DescriptorChain c = q.newChain();
        long buf = rings.dataAddr();
        assertFalse(q.enableNotifications());
        d.add(buf, 1, false, 0);
        assertTrue(d.publishAndCheckKick());

        // Device loop: disable, drain ...
        q.disableNotifications();
        assertTrue(q.nextAvail(c));
        assertFalse(q.nextAvail(c));
        // ... the driver adds meanwhile; it sees no request for a kick ...
        d.add(buf, 1, false, 0);
        assertFalse(d.publishAndCheckKick());
        // ... so the re-enable must report the work, or the worker would sleep with it pending.
        assertTrue(q.enableNotifications());
        assertTrue(q.nextAvail(c));
        assertFalse(q.enableNotifications());
        d.add(buf, 1, false, 0);
        assertTrue(d.publishAndCheckKick(), "re-enabled: the next addition kicks");
    }

    @ParameterizedTest
    @ValueSource(booleans = {false, true})
    void driverEnableInterruptsReportsPendingUsed(boolean eventIdx) {
        DriverQueue d = rings.driver(eventIdx);
        DeviceQueue q = rings.device(eventIdx, false);
        DescriptorChain c = q.newChain();
        UsedElement u = new UsedElement();
        d.add(rings.dataAddr(), 1, true, 7);
        d.publish();
        d.disableInterrupts();
        assertTrue(q.nextAvail(c));
        q.addUsed(c.head(), 1);
        assertTrue(d.enableInterrupts());
        assertTrue(d.reap(u));
        assertEquals(7, u.cookie());
        assertFalse(d.enableInterrupts());
    }

    /**
     * A guest that bumps avail.idx, lets the device's re-check in enableNotifications see it, then moves it back
     * used to make the device pop nothing and loop again (the re-check did not keep the index it read). The index
     * the device saw is now the one it pops from.
     */
    @ParameterizedTest
    @ValueSource(booleans = {false, true})
    void availIdxFlippedBackAfterTheReCheckStillPopsWhatTheReCheckSaw(boolean eventIdx) {
        DeviceQueue q = rings.device(eventIdx, false);
        DescriptorChain c = q.newChain();
        rings.desc(0, rings.dataAddr(), 64, 0, 0);
        rings.availRing(0, 0);
        q.disableNotifications();
        assertFalse(q.nextAvail(c));
        rings.availIdx(1);
        assertTrue(q.enableNotifications(), "the re-check sees the bump");
        rings.availIdx(0); // ... and the guest takes it back
        q.disableNotifications();
        assertTrue(q.nextAvail(c), "the device pops the chain it was shown");
        assertEquals(0, c.head());
        assertFalse(q.isBroken());
    }

    @Test
    void availIdxTooFarAheadAtTheReCheckBreaksTheRing() {
        DeviceQueue q = rings.device(true, false);
        rings.availIdx(N + 1);
        assertFalse(q.enableNotifications());
        assertTrue(q.isBroken());
    }
}
