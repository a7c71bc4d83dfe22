package dev.loomvisor.vmm.net;

/**
 * Whatever serves a virtio-net device's data path, as vhost-net serves QEMU's: when the driver sets
 * DRIVER_OK the device hands its queues to the backend, and takes them back on reset. (Not vhost's
 * {@code NetBackend}, the socket a vhost-net ring sends into and receives from.)
 *
 * <p>The backend reads the device's {@link VirtioNetDevice#queue(int)} rings, listens on
 * {@link VirtioNetDevice#kick(int)} and signals {@link VirtioNetDevice#call(int)}; it must not replace the
 * call notifiers' listeners (that is the interrupt routing to the guest).
 */
public interface DeviceBackend {

    /** The driver set DRIVER_OK: start serving the queues. Called on the driver's (vCPU) thread. */
    void activate(VirtioNetDevice device);

    /** The device is being reset: stop touching its queues before returning. */
    void deactivate(VirtioNetDevice device);

    /**
     * The driver enabled {@code pairs} queue pairs (VQ_PAIRS_SET, virtio 1.2 §5.1.6.5.5): serve pairs
     * 0..pairs-1 only (no frame may be placed on a receive queue beyond them). Before the first call only
     * pair 0 is active. Called with the device's control lock held. A backend that serves every pair
     * regardless may ignore it.
     */
    default void queuePairsChanged(VirtioNetDevice device, int pairs) {
    }
}
