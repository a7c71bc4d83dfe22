/**
 * A vhost-user backend (QEMU docs/interop/vhost-user.rst): {@link dev.loomvisor.vhost.user.VhostUserServer}
 * accepts front-ends (QEMU, DPDK's virtio-user) on a UNIX socket; each connection is a
 * {@link dev.loomvisor.vhost.user.VhostUserSession}, an emulated process owning one vhost-net per queue
 * pair, whose rings live in the front-end's shared memory and run on workers of the configured model.
 * Sessions end with one typed {@link dev.loomvisor.vhost.user.CloseReason}.
 */
package dev.loomvisor.vhost.user;
