package dev.loomvisor.core;

/** The capabilities copy_process looks at, with their bit numbers (include/uapi/linux/capability.h). */
public enum Capability {
    CAP_CHOWN(0), CAP_KILL(5), CAP_SETUID(7), CAP_NET_ADMIN(12), CAP_SYS_ADMIN(21), CAP_SYS_RESOURCE(24);

    private final int bit;

    Capability(int bit) {
        this.bit = bit;
    }

    public int bit() {
        return bit;
    }

    public long mask() {
        return 1L << bit;
    }
}
