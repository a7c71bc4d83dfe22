package dev.loomvisor.vmm.virtio;

/** A reaped used element, reused from reap to reap by {@link DriverQueue#reap}. */
public final class UsedElement {
    int head;
    int len;
    long cookie;

    /** The chain's head index (the id the device returned). */
    public int head() {
        return head;
    }

    /** Bytes the device wrote into the chain's writable part. */
    public int len() {
        return len;
    }

    /** What the driver attached to the chain when it added it. */
    public long cookie() {
        return cookie;
    }
}
