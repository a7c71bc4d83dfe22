package dev.loomvisor.vmm.memory;

/**
 * Why a guest-physical range could not be translated. {@link #NONE} is success, so a translation can
 * report its outcome without allocating.
 */
public enum MemoryError {
    NONE("translated"),
    NEGATIVE_LENGTH("length is negative"),
    ADDRESS_OVERFLOW("address + length wraps past 2^64"),
    UNMAPPED("the range starts outside every region"),
    CROSSES_REGION_END("the range starts in a region but does not end inside it");

    private final String rule;

    MemoryError(String rule) {
        this.rule = rule;
    }

    /** The rule, in words, that the range broke. */
    public String rule() {
        return rule;
    }
}
