package dev.loomvisor.vhost.accounting;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import dev.loomvisor.vhost.backend.Frames;
import dev.loomvisor.vhost.backend.L2Switch;
import dev.loomvisor.vhost.backend.L2Switch.PortCounter;
import java.nio.ByteOrder;
import org.agrona.concurrent.UnsafeBuffer;
import org.junit.jupiter.api.Test;

/**
 * Found while listing the drop reasons for the accounting check: a frame to be flooded (broadcast, or an
 * unknown unicast destination) on a switch where the sender's port is the only one had nowhere to go; the
 * switch refused it (the TX ring counted "backend refused") but no port counter said why, so the sender's
 * books did not balance by reason. Now counted as {@code TX_DROP_NO_PORT}.
 */
class UnroutableFrameTest {

    @Test
    void aFrameWithNoOtherPortToGoToIsDroppedWithAReason() {
        L2Switch sw = new L2Switch(1 << 16, 64);
        L2Switch.Port alone = sw.addPort("alone");
        var frame = new UnsafeBuffer(new byte[64]);
        Frames.writeMac(frame, Frames.SRC_OFFSET, Frames.localMac(1));
        frame.putShort(Frames.ETHERTYPE_OFFSET, (short) Frames.ETHERTYPE_EXPERIMENTAL, ByteOrder.BIG_ENDIAN);

        Frames.writeMac(frame, Frames.DST_OFFSET, Frames.localMac(2)); // unknown unicast
        assertFalse(alone.transmit(frame, 0, 64));
        Frames.writeMac(frame, Frames.DST_OFFSET, Frames.BROADCAST);
        assertFalse(alone.transmit(frame, 0, 64));
        alone.flushTransmit();

        long byReason = 0;
        for (PortCounter c : PortCounter.values()) {
            if (c.name().startsWith("TX_DROP_")) {
                byReason += alone.counters().get(c);
            }
        }
        assertEquals(2, byReason, "drops with a reason: " + alone.counters());
        assertEquals(2, alone.counters().get(PortCounter.TX_FRAMES));
        assertEquals(0, alone.counters().get(PortCounter.TX_DELIVERED));
    }

    @Test
    void withASecondPortTheSameFramesAreFloodedNotDropped() {
        L2Switch sw = new L2Switch(1 << 16, 64);
        L2Switch.Port a = sw.addPort("a");
        sw.addPort("b");
        var frame = new UnsafeBuffer(new byte[64]);
        Frames.writeMac(frame, Frames.SRC_OFFSET, Frames.localMac(1));
        Frames.writeMac(frame, Frames.DST_OFFSET, Frames.BROADCAST);
        assertEquals(true, a.transmit(frame, 0, 64));
        a.flushTransmit();
        assertEquals(1, a.counters().get(PortCounter.TX_DELIVERED));
        assertEquals(1, a.counters().get(PortCounter.TX_FLOODED));
    }
}
