/** Counters readable while traffic runs, cheap for their single writer. */
package dev.loomvisor.vhost.stats;
