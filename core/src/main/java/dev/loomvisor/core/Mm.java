package dev.loomvisor.core;

import java.util.concurrent.atomic.AtomicInteger;

/**
 * An address space handle (struct mm_struct): identity plus the number of tasks using it (mm_users).
 * CLONE_VM shares it; a kthread has none and may borrow one (kthread_use_mm).
 */
public final class Mm {

    private static final AtomicInteger IDS = new AtomicInteger();

    private final int id = IDS.incrementAndGet();
    private final AtomicInteger users = new AtomicInteger();

    public int id() {
        return id;
    }

    /** mm_users: the tasks that have this mm as their own (borrowers are not counted). */
    public int users() {
        return users.get();
    }

    void get() {
        users.incrementAndGet();
    }

    void put() {
        users.decrementAndGet();
    }

    @Override
    public String toString() {
        return "mm#" + id;
    }
}
