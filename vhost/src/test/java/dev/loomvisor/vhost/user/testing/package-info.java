/** A vhost-user front-end for tests: memfd guest memory, driver-side rings, raw messages. */
package dev.loomvisor.vhost.user.testing;
