/**
 * The emulated kernel: processes, tasks, rlimits, ucounts, the pids cgroup, copy_process, kthreadd, and the
 * worker factory with its models. The VMM and vhost build on the kernel and on the worker SPI. The
 * fault-injection points are called from vhost's work queue and worker slot and hooked by the test fixtures,
 * which run on the class path: a qualified export would hide them from those.
 */
module dev.loomvisor.core {
    requires org.agrona;
    requires jdk.jfr;

    exports dev.loomvisor.core;
    exports dev.loomvisor.core.worker;
    exports dev.loomvisor.core.inject;
    exports dev.loomvisor.core.jfr;
    exports dev.loomvisor.core.timer;
}
