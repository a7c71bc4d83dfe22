package dev.loomvisor.core;

import java.util.List;

/**
 * What a coredump of a thread group recorded (fs/coredump.c): the process, the signal, and the threads whose
 * state went into the core (one NT_PRSTATUS note each): the dumping task first, then every thread the dump
 * waited for. User workers are not among them: "The vhost_worker does not participate in coredumps".
 */
public record CoreDump(int pid, String comm, Signal signal, List<Integer> threads) {

    public CoreDump {
        threads = List.copyOf(threads);
    }
}
