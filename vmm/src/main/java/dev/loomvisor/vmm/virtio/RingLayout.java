package dev.loomvisor.vmm.virtio;

import java.util.Arrays;
import java.util.List;
import java.util.Locale;

/**
 * The two virtqueue layouts: split (virtio 1.2 §2.7, the default) and packed (§2.8), which a driver picks by
 * negotiating VIRTIO_F_RING_PACKED (§6).
 */
public enum RingLayout {
    SPLIT(0),
    PACKED(1L << 34);

    private final long feature;

    RingLayout(long feature) {
        this.feature = feature;
    }

    /** The feature bit that selects the layout (0 for split, which needs none). */
    public long feature() {
        return feature;
    }

    /** The layout's name on command lines and in reports: "split" or "packed". */
    public String layoutName() {
        return name().toLowerCase(Locale.ROOT);
    }

    /** The layout the features select. */
    public static RingLayout of(long features) {
        return (features & PACKED.feature) != 0 ? PACKED : SPLIT;
    }

    /** The layout named {@code name} ("split" or "packed"), or null. */
    public static RingLayout byName(String name) {
        for (RingLayout l : values()) {
            if (l.layoutName().equals(name)) {
                return l;
            }
        }
        return null;
    }

    public static List<String> names() {
        return Arrays.stream(values()).map(RingLayout::layoutName).toList();
    }
}
