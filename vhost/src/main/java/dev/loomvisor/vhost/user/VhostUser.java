package dev.loomvisor.vhost.user;

import dev.loomvisor.vmm.net.NetFeatures;

/** vhost-user wire constants (QEMU docs/interop/vhost-user.rst; reference vhost-user.md). Little-endian. */
public final class VhostUser {

    // Header: u32 request; u32 flags; u32 size.
    public static final int HEADER_SIZE = 12;
    public static final int HDR_REQUEST = 0;
    public static final int HDR_FLAGS = 4;
    public static final int HDR_SIZE = 8;
    /** Largest payload a message may carry. */
    public static final int MAX_PAYLOAD = 0x1000;
    /** Most fds one message may carry. */
    public static final int MAX_FDS = 32;

    // Header flags: bits 0-1 version, bit 2 REPLY, bit 3 NEED_REPLY.
    public static final int VERSION = 0x1;
    public static final int VERSION_MASK = 0x3;
    public static final int FLAG_REPLY = 0x4;
    public static final int FLAG_NEED_REPLY = 0x8;

    // Vring state {u32 index; u32 num} and the u64 of SET_VRING_KICK/CALL/ERR.
    public static final int STATE_INDEX = 0;
    public static final int STATE_NUM = 4;
    public static final long VRING_IDX_MASK = 0xff;
    /** VHOST_USER_VRING_NOFD_MASK: no fd comes with the message (the ring is polled). */
    public static final long VRING_NOFD = 1L << 8;

    // struct vhost_vring_addr: u32 index; u32 flags; u64 desc, used, avail, log.
    public static final int ADDR_INDEX = 0;
    public static final int ADDR_FLAGS = 4;
    public static final int ADDR_DESC = 8;
    public static final int ADDR_USED = 16;
    public static final int ADDR_AVAIL = 24;
    public static final int ADDR_LOG = 32;
    /** VHOST_VRING_F_LOG: log used-ring writes (needs LOG_ALL; not offered). */
    public static final int VRING_F_LOG = 0x1;

    // Memory table: u32 nregions; u32 padding; regions of {u64 guest_phys, size, userspace_addr, mmap_offset}.
    public static final int MEM_NREGIONS = 0;
    public static final int MEM_REGIONS = 8;
    public static final int REGION_SIZE = 32;
    public static final int REGION_GPA = 0;
    public static final int REGION_LEN = 8;
    public static final int REGION_UVA = 16;
    public static final int REGION_MMAP_OFFSET = 24;

    // Config: u32 offset; u32 size; u32 flags; u8 payload[size].
    public static final int CONFIG_HEADER = 12;
    public static final int CONFIG_OFFSET = 0;
    public static final int CONFIG_SIZE = 4;
    public static final int CONFIG_FLAGS = 8;

    /** VHOST_USER_F_PROTOCOL_FEATURES (bit 30): GET/SET_PROTOCOL_FEATURES work, rings start disabled. */
    public static final long F_PROTOCOL_FEATURES = 1L << 30;

    /** GET_FEATURES: what the backend offers. */
    public static final long FEATURES = NetFeatures.VERSION_1 | NetFeatures.MRG_RXBUF | NetFeatures.EVENT_IDX
            | NetFeatures.INDIRECT_DESC | NetFeatures.MQ | NetFeatures.MAC | NetFeatures.STATUS | NetFeatures.MTU
            | NetFeatures.RING_PACKED | NetFeatures.IN_ORDER | F_PROTOCOL_FEATURES;

    // Protocol feature bits (vhost-user.rst "Protocol features"), as masks.
    public static final long PF_MQ = 1L << 0;
    public static final long PF_RARP = 1L << 2;
    public static final long PF_REPLY_ACK = 1L << 3;
    public static final long PF_MTU = 1L << 4;
    public static final long PF_CONFIG = 1L << 9;

    /** GET_PROTOCOL_FEATURES: what the backend offers. */
    public static final long PROTOCOL_FEATURES = PF_MQ | PF_RARP | PF_REPLY_ACK | PF_MTU | PF_CONFIG;

    private VhostUser() {
    }
}
