package dev.loomvisor.vhost.peers;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;
import org.opentest4j.AssertionFailedError;
import org.opentest4j.TestAbortedException;

/** A missing peer fails the test; only the explicit opt-out skips. */
class PeersTest {

    @Test
    void aMissingPeerFailsNamingItsPackages() {
        String before = System.getProperty(Peers.OPT_OUT);
        System.clearProperty(Peers.OPT_OUT);
        try {
            AssertionFailedError e = assertThrows(AssertionFailedError.class,
                    () -> Peers.require("loomvisor-no-such-peer", "no-such-package"));
            assertTrue(e.getMessage().contains("loomvisor-no-such-peer not found")
                    && e.getMessage().contains("no-such-package") && e.getMessage().contains("-Dloomvisor.peers=off"),
                    e.getMessage());
        } finally {
            restore(before);
        }
    }

    @Test
    void theOptOutSkipsEvenWhenThePeerIsThere() {
        String before = System.getProperty(Peers.OPT_OUT);
        System.setProperty(Peers.OPT_OUT, "off");
        try {
            assertThrows(TestAbortedException.class, () -> Peers.require("loomvisor-no-such-peer", "x"));
            assertThrows(TestAbortedException.class, () -> Peers.require("sh", "x"));
        } finally {
            restore(before);
        }
    }

    private static void restore(String value) {
        if (value == null) {
            System.clearProperty(Peers.OPT_OUT);
        } else {
            System.setProperty(Peers.OPT_OUT, value);
        }
    }
}
