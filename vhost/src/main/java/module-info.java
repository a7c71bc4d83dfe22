/**
 * The vhost layer: devices and their workers, the work queue, vhost-net's handlers, the backends, and the
 * vhost-user server. The bench runs devices, backends and the server; the jcstress checks drive the work queue.
 */
module dev.loomvisor.vhost {
    requires transitive dev.loomvisor.vmm;
    requires transitive dev.loomvisor.core;
    requires transitive org.agrona;
    requires jdk.jfr;

    exports dev.loomvisor.vhost;
    exports dev.loomvisor.vhost.backend;
    exports dev.loomvisor.vhost.jfr;
    exports dev.loomvisor.vhost.net;
    exports dev.loomvisor.vhost.stats;
    exports dev.loomvisor.vhost.user;
    exports dev.loomvisor.vhost.work;
    // The TAP mode of the CLI opens /dev/net/tun itself (its errors are the one line the CLI prints).
    exports dev.loomvisor.vhost.sys to dev.loomvisor.bench;
}
