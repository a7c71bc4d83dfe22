/**
 * The VMM: guest memory, split virtqueues on Agrona buffers, the virtio-net device with its MMIO transport,
 * and the guest driver. vhost serves the rings through memory and virtio; the bench builds VMs and drives them.
 */
module dev.loomvisor.vmm {
    requires transitive dev.loomvisor.core;
    requires transitive org.agrona;
    requires jdk.jfr;

    exports dev.loomvisor.vmm;
    exports dev.loomvisor.vmm.driver;
    exports dev.loomvisor.vmm.jfr;
    exports dev.loomvisor.vmm.memory;
    exports dev.loomvisor.vmm.net;
    exports dev.loomvisor.vmm.virtio;
}
