/**
 * JDK Flight Recorder events of the vhost layer (category "Loomvisor"): device owners and workers,
 * vhost-user sessions, switch drops as periodic counters. Free unless a recording enables them.
 */
package dev.loomvisor.vhost.jfr;
