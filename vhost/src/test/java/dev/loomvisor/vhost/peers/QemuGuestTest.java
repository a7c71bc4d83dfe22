package dev.loomvisor.vhost.peers;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The guest's module list and kernel choice, without QEMU. */
class QemuGuestTest {

    @TempDir
    Path dir;

    @Test
    void modulesLoadAfterWhatTheyNeedAndBuiltInsAreSkipped() throws Exception {
        // The shape of Debian 6.1's modules.dep for the virtio NIC (dependencies in modprobe's order: the
        // one loaded first last).
        Files.writeString(dir.resolve("modules.dep"), """
                kernel/drivers/virtio/virtio_ring.ko:
                kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko
                kernel/drivers/virtio/virtio_pci_modern_dev.ko:
                kernel/drivers/virtio/virtio_pci_legacy_dev.ko:
                kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_pci_legacy_dev.ko kernel/drivers/virtio/virtio_pci_modern_dev.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
                kernel/net/core/failover.ko:
                kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko
                kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
                """);
        List<String> order = QemuGuest.loadOrder(dir, List.of("virtio_pci", "virtio_net", "af_packet")).stream()
                .map(p -> p.getFileName().toString()).toList();
        assertEquals(8, order.size(), order.toString());
        for (String[] before : new String[][] {{"virtio_ring.ko", "virtio.ko"}, {"virtio.ko", "virtio_pci.ko"},
                {"virtio_pci_modern_dev.ko", "virtio_pci.ko"}, {"failover.ko", "net_failover.ko"},
                {"net_failover.ko", "virtio_net.ko"}, {"virtio.ko", "virtio_net.ko"}}) {
            assertTrue(order.indexOf(before[0]) < order.indexOf(before[1]), before[0] + " before " + before[1] + ": " + order);
        }
    }

    @Test
    void versionsCompareNumerically() {
        assertTrue(QemuGuest.compareVersions("6.1.0-56-amd64", "6.1.0-100-amd64") < 0);
        assertTrue(QemuGuest.compareVersions("6.10.0-1-amd64", "6.9.0-1-amd64") > 0);
        assertEquals(0, QemuGuest.compareVersions("6.1.0-56-amd64", "6.1.0-56-amd64"));
    }
}
