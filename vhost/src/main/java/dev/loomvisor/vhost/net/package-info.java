/**
 * vhost-net (drivers/vhost/net.c): {@link dev.loomvisor.vhost.net.VhostNet}
 * (the two-ring device and SET_BACKEND), {@link dev.loomvisor.vhost.net.TxHandler} and
 * {@link dev.loomvisor.vhost.net.RxHandler} (weights, batching, MRG_RXBUF, interrupts, busy-poll), and
 * {@link dev.loomvisor.vhost.net.VmmBackend}, which hands a vmm virtio-net device's rings to vhost-net.
 */
package dev.loomvisor.vhost.net;
