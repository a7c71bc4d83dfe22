package dev.loomvisor.vmm.virtio;

import dev.loomvisor.vmm.memory.GuestMemory;

/**
 * The device side of one virtqueue, whichever layout the driver negotiated: split ({@link DeviceQueue},
 * virtio 1.2 §2.7) or packed ({@link PackedDeviceQueue}, §2.8, with VIRTIO_F_RING_PACKED). Device models and
 * vhost handlers pop chains, use them and decide notifications through this; sealed to the two layouts, so a
 * call site sees at most two receiver classes.
 *
 * <p>Both implementations share the contract: one thread drives a queue, nothing allocates after configuration,
 * guest input never throws; a broken rule breaks the queue, after which every call is a no-op until
 * {@link #reset()}.
 */
public sealed interface DeviceVirtqueue permits DeviceQueue, PackedDeviceQueue {

    int index();

    /** Marks a queue that the device only reads (TX): a device-writable descriptor on it is a violation. */
    void setDeviceWritableAllowed(boolean allowed);

    /** A chain to reuse for every pop, sized for the usual worst chain (it grows once for a longer indirect table). */
    DescriptorChain newChain();

    boolean isReady();

    int size();

    boolean eventIdx();

    GuestMemory memory();

    /** Whether a rule was broken; safe from any thread. */
    boolean isBroken();

    /** The violation that broke the queue, or {@link RingError#NONE}. */
    RingError error();

    long errorCount(RingError e);

    long errorCount();

    /** Pops the next available chain; false when none, or when the queue is (or just became) broken. */
    boolean nextAvail(DescriptorChain chain);

    /**
     * A software prefetch: reads one byte, {@code offset} bytes into the buffer, of each of the {@code count} chains
     * that start {@code from} places after the next one to pop (0: the next), as far as the device has already
     * seen them made available and their first descriptors point inside guest memory. Validates and pops
     * nothing, so the bytes mean nothing: the caller only keeps their sum where the JIT cannot drop the loads.
     * Touching a burst of buffers a few chains before the device gets to them has their cache lines come from
     * the driver's CPU all at once, while it works on the ones before (DPDK's vhost prefetches a burst the same
     * way), instead of one line per chain, in series.
     */
    int touchAhead(int from, int count, int offset);

    /** Gives the {@code n} newest popped chains back unused: the next pops return them again. */
    void discard(int n);

    /** Uses the chain whose {@link DescriptorChain#head()} is {@code head} and publishes it. */
    boolean addUsed(int head, int len);

    /** Uses a chain without publishing: {@link #publishUsed()} shows a batch at once. */
    boolean stageUsed(int head, int len);

    /** Uses {@code n} chains with one publish. */
    boolean addUsedN(int[] heads, int[] lens, int n);

    void publishUsed();

    boolean hasStagedUsed();

    /** Whether the driver wants an interrupt for what was published since the last decision. */
    boolean needsInterrupt();

    /** Asks the driver not to kick. */
    void disableNotifications();

    /** Asks the driver to kick again; true if more was made available meanwhile (drain again). */
    boolean enableNotifications();

    boolean hasAvail();

    /**
     * True if the driver made buffers available beyond every one the device has already seen, popped or not, given
     * back with {@link #discard} or not: the refill a device out of buffers waits for (what the re-check of
     * {@link #enableNotifications()} looks at, without enabling anything). A read of the ring, no side effects.
     */
    boolean hasNewAvail();

    /** The vring base a GET_VRING_BASE returns (for packed, bit 15 carries the avail wrap counter). */
    int lastAvail();

    /** SET_VRING_BASE: where popping resumes. */
    void setLastAvail(int base);

    int lastUsed();

    /** Back to the unconfigured state with no error (device reset). */
    void reset();

    /** Breaks the queue for a rule of its device type the ring cannot check itself. */
    RingError fail(RingError e);
}
