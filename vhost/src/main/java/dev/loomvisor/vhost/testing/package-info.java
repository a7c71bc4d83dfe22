/**
 * Scenario pieces for vhost's tests and for the bench module: a minimal guest virtio-net driver on vmm's
 * driver queue ({@link dev.loomvisor.vhost.testing.NetGuest}), two VMs through a switch
 * ({@link dev.loomvisor.vhost.testing.NetPair}) and any number of them ({@link dev.loomvisor.vhost.testing.NetLab}).
 */
package dev.loomvisor.vhost.testing;
