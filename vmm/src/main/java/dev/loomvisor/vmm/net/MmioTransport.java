package dev.loomvisor.vmm.net;

/**
 * The virtio-mmio (version 2) register window in front of a {@link VirtioNetDevice}: how the emulated guest
 * driver discovers and sets up the device, one 32-bit register access at a time. Offsets and semantics follow
 * virtio 1.2 §4.2.2. A refused access is recorded in {@link #lastError()} (the hardware would ignore
 * it), never thrown.
 */
public final class MmioTransport {

    public static final int MAGIC_VALUE = 0x000;
    public static final int VERSION = 0x004;
    public static final int DEVICE_ID = 0x008;
    public static final int VENDOR_ID = 0x00c;
    public static final int DEVICE_FEATURES = 0x010;
    public static final int DEVICE_FEATURES_SEL = 0x014;
    public static final int DRIVER_FEATURES = 0x020;
    public static final int DRIVER_FEATURES_SEL = 0x024;
    public static final int QUEUE_SEL = 0x030;
    public static final int QUEUE_NUM_MAX = 0x034;
    public static final int QUEUE_NUM = 0x038;
    public static final int QUEUE_READY = 0x044;
    public static final int QUEUE_NOTIFY = 0x050;
    public static final int INTERRUPT_STATUS = 0x060;
    public static final int INTERRUPT_ACK = 0x064;
    public static final int STATUS = 0x070;
    public static final int QUEUE_DESC_LOW = 0x080;
    public static final int QUEUE_DESC_HIGH = 0x084;
    public static final int QUEUE_DRIVER_LOW = 0x090;
    public static final int QUEUE_DRIVER_HIGH = 0x094;
    public static final int QUEUE_DEVICE_LOW = 0x0a0;
    public static final int QUEUE_DEVICE_HIGH = 0x0a4;
    public static final int CONFIG_GENERATION = 0x0fc;
    public static final int CONFIG = 0x100;

    /** "virt" little-endian. */
    public static final int MAGIC = 0x74726976;
    public static final int MMIO_VERSION = 2;
    public static final int NET_DEVICE_ID = 1;
    public static final int VENDOR = 0x4c4f4f4d; // "LOOM"

    private final VirtioNetDevice device;
    /**
     * Unsigned 32-bit selectors: each selects bits 32*sel..32*sel+31, so 0xffffffff is a selector far above
     * 1 that selects no feature bits, not -1 (virtio 1.2 §4.2.2).
     */
    private int deviceFeaturesSel;
    private int driverFeaturesSel;
    private int queueSel;
    private long driverFeatures;
    private volatile DeviceError lastError = DeviceError.OK;

    public MmioTransport(VirtioNetDevice device) {
        this.device = device;
    }

    public VirtioNetDevice device() {
        return device;
    }

    /** The outcome of the last register write. */
    public DeviceError lastError() {
        return lastError;
    }

    public int read(int offset) {
        if (offset >= CONFIG) {
            return device.readConfig(offset - CONFIG, 4);
        }
        return switch (offset) {
            case MAGIC_VALUE -> MAGIC;
            case VERSION -> MMIO_VERSION;
            case DEVICE_ID -> NET_DEVICE_ID;
            case VENDOR_ID -> VENDOR;
            case DEVICE_FEATURES -> Integer.compareUnsigned(deviceFeaturesSel, 1) > 0 ? 0
                    : (int) (device.offeredFeatures() >>> (32 * deviceFeaturesSel));
            case QUEUE_NUM_MAX -> queueExists() ? device.queueMax() : 0;
            case QUEUE_NUM -> queueExists() ? device.queueSize(queueSel) : 0;
            case QUEUE_READY -> queueExists() && device.queueReady(queueSel) ? 1 : 0;
            case INTERRUPT_STATUS -> device.interruptStatus();
            case STATUS -> device.status();
            case QUEUE_DESC_LOW -> (int) queueAddr(0);
            case QUEUE_DESC_HIGH -> (int) (queueAddr(0) >>> 32);
            case QUEUE_DRIVER_LOW -> (int) queueAddr(1);
            case QUEUE_DRIVER_HIGH -> (int) (queueAddr(1) >>> 32);
            case QUEUE_DEVICE_LOW -> (int) queueAddr(2);
            case QUEUE_DEVICE_HIGH -> (int) (queueAddr(2) >>> 32);
            case CONFIG_GENERATION -> device.configGeneration();
            default -> 0;
        };
    }

    /** QueueSel is unsigned too: 0xffffffff names no queue, and QueueNumMax reads 0 for it (§4.2.2). */
    private boolean queueExists() {
        return Integer.compareUnsigned(queueSel, device.queueCount()) < 0;
    }

    private long queueAddr(int which) {
        if (!queueExists()) {
            return 0;
        }
        return switch (which) {
            case 0 -> device.queueDesc(queueSel);
            case 1 -> device.queueAvail(queueSel);
            default -> device.queueUsed(queueSel);
        };
    }

    public void write(int offset, int value) {
        DeviceError e = DeviceError.OK;
        switch (offset) {
            case DEVICE_FEATURES_SEL -> deviceFeaturesSel = value;
            case DRIVER_FEATURES_SEL -> driverFeaturesSel = value;
            case DRIVER_FEATURES -> {
                if (Integer.compareUnsigned(driverFeaturesSel, 1) <= 0) {
                    int shift = 32 * driverFeaturesSel;
                    driverFeatures = (driverFeatures & ~(0xffffffffL << shift)) | ((value & 0xffffffffL) << shift);
                    e = device.setDriverFeatures(driverFeatures);
                }
            }
            case QUEUE_SEL -> queueSel = value;
            case QUEUE_NUM -> e = device.setQueueSize(queueSel, value);
            case QUEUE_READY -> e = device.setQueueReady(queueSel, value == 1);
            case QUEUE_NOTIFY -> device.notifyQueue(value);
            case INTERRUPT_ACK -> device.ackInterrupt(value);
            case STATUS -> {
                if (value == 0) {
                    driverFeatures = 0;
                }
                e = device.setStatus(value);
            }
            case QUEUE_DESC_LOW -> e = device.setQueueDesc(queueSel, low(device.queueDesc(queueSel), value));
            case QUEUE_DESC_HIGH -> e = device.setQueueDesc(queueSel, high(device.queueDesc(queueSel), value));
            case QUEUE_DRIVER_LOW -> e = device.setQueueAvail(queueSel, low(device.queueAvail(queueSel), value));
            case QUEUE_DRIVER_HIGH -> e = device.setQueueAvail(queueSel, high(device.queueAvail(queueSel), value));
            case QUEUE_DEVICE_LOW -> e = device.setQueueUsed(queueSel, low(device.queueUsed(queueSel), value));
            case QUEUE_DEVICE_HIGH -> e = device.setQueueUsed(queueSel, high(device.queueUsed(queueSel), value));
            default -> {
                // Read-only or unknown registers: writes are ignored, as on hardware.
            }
        }
        lastError = e;
    }

    private static long low(long old, int v) {
        return (old & 0xffffffff00000000L) | (v & 0xffffffffL);
    }

    private static long high(long old, int v) {
        return (old & 0xffffffffL) | ((long) v << 32);
    }
}
