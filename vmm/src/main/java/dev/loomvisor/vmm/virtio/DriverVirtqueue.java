package dev.loomvisor.vmm.virtio;

/**
 * The driver side of one virtqueue, whichever layout was negotiated: split ({@link DriverQueue}, virtio 1.2
 * §2.7) or packed ({@link PackedDriverQueue}, §2.8, with VIRTIO_F_RING_PACKED). The guest driver adds buffers,
 * publishes, decides kicks, reaps and suppresses interrupts through this, as virtio_ring.c's virtqueue_* calls
 * dispatch to their _split and _packed forms; sealed to the two layouts, so a call site sees at most two
 * receiver classes and the per-frame path stays allocation-free on both.
 */
public sealed interface DriverVirtqueue permits DriverQueue, PackedDriverQueue {

    int size();

    /** Free descriptors: what {@link #add} may still take. */
    int freeCount();

    /** One buffer as a chain of one descriptor; returns its head (split) or buffer id (packed), -1 if full. */
    int add(long addr, int len, boolean deviceWritable, long cookie);

    /**
     * A chain of {@code readable} device-readable then {@code writable} device-writable buffers from
     * {@code addrs}/{@code lens}; returns its head (split) or buffer id (packed), -1 if not enough are free.
     */
    int add(long[] addrs, int[] lens, int readable, int writable, long cookie);

    /** Makes every chain added so far visible to the device. */
    void publish();

    /** Whether the device wants a kick for what was published since the last decision. */
    boolean kickNeeded();

    /** {@link #publish()} then {@link #kickNeeded()}. */
    boolean publishAndCheckKick();

    /** True if the device has used buffers not yet reaped. */
    boolean hasUsed();

    /** Takes the next used buffer into {@code out} and frees its descriptors; false if there is none. */
    boolean reap(UsedElement out);

    /** Stops interrupts (virtqueue_disable_cb). */
    void disableInterrupts();

    /** Asks for interrupts again (virtqueue_enable_cb); true if used buffers are already pending. */
    boolean enableInterrupts();

    /**
     * Asks for an interrupt once most of the buffers in flight are used (virtqueue_enable_cb_delayed: virtio-net's
     * transmit path when its queue fills); true if that many are used already. By default (the packed layout, whose
     * delayed form through its descriptor event is not done here) the same as {@link #enableInterrupts()}.
     */
    default boolean enableInterruptsDelayed() {
        return enableInterrupts();
    }
}
