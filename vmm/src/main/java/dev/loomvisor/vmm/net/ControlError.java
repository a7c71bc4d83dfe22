package dev.loomvisor.vmm.net;

/** Why the device answered a control command VIRTIO_NET_ERR (or could not answer); {@link #OK} when it did not. */
public enum ControlError {
    OK("done"),
    NO_ACK_BUFFER("the command has no device-writable byte for the ack: returned unanswered"),
    SHORT_HEADER("fewer than 2 device-readable bytes: no class and command"),
    UNKNOWN_CLASS("a command class this device does not serve (only VIRTIO_NET_CTRL_MQ)"),
    UNKNOWN_COMMAND("a command of VIRTIO_NET_CTRL_MQ other than VQ_PAIRS_SET"),
    MQ_NOT_NEGOTIATED("VQ_PAIRS_SET without VIRTIO_NET_F_MQ negotiated"),
    BAD_DATA_LENGTH("VQ_PAIRS_SET data is not exactly one le16"),
    PAIRS_OUT_OF_RANGE("virtqueue_pairs outside 1..max_virtqueue_pairs (virtio 1.2 §5.1.6.5.5)");

    private final String rule;

    ControlError(String rule) {
        this.rule = rule;
    }

    public String rule() {
        return rule;
    }
}
