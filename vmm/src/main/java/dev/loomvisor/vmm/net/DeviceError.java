package dev.loomvisor.vmm.net;

/** The outcome of a driver's request to the device model: errno-like, {@link #OK} for success. */
public enum DeviceError {
    OK("done"),
    STATUS_CLEARS_BITS("a status write may only add bits (write 0 to reset)"),
    STATUS_OUT_OF_ORDER("status bits must come in order ACKNOWLEDGE, DRIVER, FEATURES_OK, DRIVER_OK"),
    FEATURES_LOCKED("features written after FEATURES_OK or before DRIVER"),
    FEATURES_REJECTED("the driver's features are not a subset the device can honour (VERSION_1 is required)"),
    DEVICE_FAILED("the device is FAILED or NEEDS_RESET: reset it first"),
    QUEUE_INDEX("no such queue"),
    QUEUE_LOCKED("queue set-up changed while the queue is ready, or outside FEATURES_OK..DRIVER_OK"),
    QUEUE_REJECTED("the queue's configuration breaks a ring rule"),
    NOT_RUNNING("the device is not DRIVER_OK"),
    CONTROL_REFUSED("the device answered a control command VIRTIO_NET_ERR"),
    CONTROL_NO_ANSWER("a control command was not returned used");

    private final String rule;

    DeviceError(String rule) {
        this.rule = rule;
    }

    public String rule() {
        return rule;
    }
}
